package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/ceiling"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/report"
)

// Phases of the fairness scenario, in the order they run.
const (
	phaseQuietAlone     = "quiet hub alone"
	phaseBurstAlone     = "burst alone"
	phaseBurstQuiet     = "burst + quiet hub"
	phaseManyQuietAlone = "many quiet hubs alone"
	phaseBurstManyQuiet = "burst + many quiet hubs"
	burstPhases         = 3 // phases with a burst, each of a hub of its own
)

// maxBurstCPUPerDelivery is the goal for hubd + Redis CPU per delivery in
// a burst, in µs: one core delivers 10,000 webhooks/s.
const maxBurstCPUPerDelivery = 100

// fairness runs the tenant-fairness scenario against one system: a quiet
// hub alone, a burst alone (one hub publishing -burst-events at once to
// -burst-urls URLs), both together, many quiet hubs alone, and the burst
// beside them; then it judges each quiet p99 against its p99 alone, the
// burst's throughput against the burst alone, and the burst's CPU per
// delivery.
func (b *bench) fairness(ctx context.Context) error {
	c, f, res := b.c, b.c.fair, b.result
	burstURLs, err := b.listen(f.burstURLs)
	if err != nil {
		return err
	}
	var again func(context.Context) (ceiling.Result, error)
	if !c.skipCeilings {
		var stopCeiling func()
		if again, stopCeiling, err = b.ceilings(ctx, burstURLs); err != nil {
			return err
		}
		defer stopCeiling()
	}
	// After the ceilings, which measure this machine's own POSTs.
	if err := b.rx.SetAnswerDelay(burstURLs, f.burstDelay); err != nil {
		return err
	}
	s, err := b.startSystem(ctx, c.cpuProfile != "")
	if err != nil {
		return err
	}
	defer func() { _ = s.stop(ctx) }()
	// A bursting hub per burst phase, on the same receivers: each burst
	// starts with an empty event log. One hub for all three would be at the
	// log's entries bound (100,000 per hub) from the second burst on, and
	// pay for trimming 100,000 entries there that the burst alone did not.
	burstHubs, err := s.configureHubs(ctx, hubSpec{n: burstPhases, urls: f.burstURLs}, slices.Repeat(burstURLs, burstPhases))
	if err != nil {
		return err
	}
	quietHub, err := s.addHubs(ctx, hubSpec{n: 1, urls: 1})
	if err != nil {
		return err
	}
	manyHubs, err := s.addHubs(ctx, hubSpec{n: f.quietHubs, urls: 1})
	if err != nil {
		return err
	}
	b.logf("configured a bursting hub (%d URLs), a quiet hub and %d quiet hubs; warming up", f.burstURLs, f.quietHubs)
	if err := s.warmUp(ctx, append(append(burstHubs, quietHub...), manyHubs...)); err != nil {
		return err
	}
	manyName := fmt.Sprintf("%d quiet hubs", f.quietHubs)
	burst := func(class string, phase int) load {
		return load{name: "burst", class: class, hubs: burstHubs[phase : phase+1], burst: f.burstEvents}
	}
	quiet := func(class string) load {
		return load{name: "quiet hub", class: class, hubs: quietHub, rate: f.quietRate}
	}
	many := func(class string) load {
		return load{name: manyName, class: class, hubs: manyHubs, rate: f.quietHubsRate}
	}
	quietAlone := s.runPhase(ctx, phaseQuietAlone, f.quietFor, quiet("q1"))
	// -cpuprofile profiles the burst alone (its first 20 s at most).
	profDone := s.startHubdProfile(ctx, c.cpuProfile, 20*time.Second)
	burstAlone := s.runPhase(ctx, phaseBurstAlone, 0, burst("b2", 0))
	if profDone != nil {
		s.finishHubdProfile(ctx, profDone, c.cpuProfile)
	}
	res.Phases = []report.Phase{
		quietAlone,
		burstAlone,
		s.runPhase(ctx, phaseBurstQuiet, 0, burst("b3", 1), quiet("q3")),
		s.runPhase(ctx, phaseManyQuietAlone, f.quietFor, many("m4")),
		s.runPhase(ctx, phaseBurstManyQuiet, 0, burst("b5", 2), many("m5")),
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	byDest := func(class string) map[string]float64 {
		out := map[string]float64{}
		for d, sum := range b.rx.Class(class).LatencyByDestination() {
			out[d] = sum.P99Ms
		}
		return out
	}
	res.Verdicts = fairnessVerdicts(res.Phases, "quiet hub", manyName, byDest("m4"), byDest("m5"))
	s.readCounters(ctx, s.metricsURLs())
	if err := s.stop(ctx); err != nil {
		res.Notes = append(res.Notes, err.Error())
	}
	if err := b.rx.SetAnswerDelay(nil, 0); err != nil {
		return err
	}
	b.ceilingAfter(ctx, again)
	res.Notes = append(res.Notes, fmt.Sprintf("burst: %d events x %d URLs at once (at most %d awaiting their ack); quiet hub %.0f events/s; %s %.0f events/s in all; one URL each",
		f.burstEvents, f.burstURLs, f.burstWindow, f.quietRate, manyName, f.quietHubsRate))
	if f.burstDelay > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("the bursting hub's receivers answer %s after a webhook arrives", f.burstDelay))
	}
	return nil
}

// fairnessVerdicts judges the phases (in the order fairness runs them):
// each quiet traffic's p99 beside the burst against its p99 alone (within
// 2x or +25 ms), every one of the many hubs against its own p99 alone, the
// burst's throughput beside quiet hubs against the burst alone (within
// 10 %), and hubd + Redis CPU per delivery of the burst alone.
func fairnessVerdicts(phases []report.Phase, quietName, manyName string, manyAlone, manyBurst map[string]float64) []report.Verdict {
	get := func(phase, traffic string) *report.Traffic {
		for i := range phases {
			if phases[i].Name == phase {
				return phases[i].Find(traffic)
			}
		}
		return nil
	}
	var out []report.Verdict
	for _, q := range []struct{ alone, burst, traffic string }{
		{phaseQuietAlone, phaseBurstQuiet, quietName},
		{phaseManyQuietAlone, phaseBurstManyQuiet, manyName},
	} {
		a, d := get(q.alone, q.traffic), get(q.burst, q.traffic)
		if a == nil || d == nil {
			continue
		}
		out = append(out, report.NewVerdict(q.traffic+" p99 beside the burst", d.Latency.P99Ms, report.LatencyLimit(a.Latency.P99Ms), "ms",
			fmt.Sprintf("alone %.1f ms; limit max(2x, +25 ms)", a.Latency.P99Ms)))
	}
	if len(manyAlone) > 0 && len(manyBurst) > 0 {
		over, worst, worstDest := 0, 0.0, ""
		for dest, during := range manyBurst {
			excess := during - report.LatencyLimit(manyAlone[dest])
			if excess > 0 {
				over++
			}
			if worstDest == "" || excess > worst {
				worst, worstDest = excess, dest
			}
		}
		out = append(out, report.NewVerdict("hubs whose own p99 beside the burst exceeds their own limit", float64(over), 0, "hubs",
			fmt.Sprintf("of %d; closest to or furthest over its limit: %s at %+.1f ms (few samples per hub: p99 is near the max)", len(manyBurst), worstDest, worst)))
	}
	alone := get(phaseBurstAlone, "burst")
	for _, ph := range []string{phaseBurstQuiet, phaseBurstManyQuiet} {
		d := get(ph, "burst")
		if alone == nil || d == nil || alone.PerSecond <= 0 {
			continue
		}
		drop := 100 * (1 - d.PerSecond/alone.PerSecond)
		out = append(out, report.NewVerdict("burst throughput lost in "+ph, drop, 10, "%",
			fmt.Sprintf("%.0f/s vs %.0f/s alone", d.PerSecond, alone.PerSecond)))
	}
	for _, ph := range phases {
		if ph.Name != phaseBurstAlone {
			continue
		}
		var us float64
		for _, pr := range ph.Processes {
			if pr.Name == "hubd" || pr.Name == "redis-server" {
				us += pr.CPUPerDeliveryUs
			}
		}
		if us > 0 {
			out = append(out, report.NewVerdict("hubd + Redis CPU per delivery in the burst", us, maxBurstCPUPerDelivery, "µs", "the burst alone"))
		}
	}
	return out
}
