package main

import (
	"context"
	"fmt"

	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/ceiling"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/report"
)

// noisyShape is where the never-answering URL is in a noisy phase.
type noisyShape int

const (
	noisyNone     noisyShape = iota // the healthy URL alone: the baseline
	noisySameHub                    // a second URL of the healthy URL's hub
	noisyOtherHub                   // the only URL of another hub, with as many events
)

func (n noisyShape) String() string {
	switch n {
	case noisySameHub:
		return "dead URL, same hub"
	case noisyOtherHub:
		return "dead URL, other hub"
	}
	return "healthy alone"
}

// noisy runs the noisy-URL scenario: a healthy URL alone, beside a URL of
// the same hub that never answers, and beside another hub's URL that never
// answers, each at -noisy-rate events/s and at the highest rate (closed
// loop), each phase on a fresh hubd (the dead URL's retries would spill
// into the next phase); then it judges the healthy URL's p99 beside the
// dead URL against its baseline (within 2x).
func (b *bench) noisy(ctx context.Context) error {
	c, res := b.c, b.result
	var again func(context.Context) (ceiling.Result, error)
	if !c.skipCeilings {
		urls, err := b.listen(1)
		if err != nil {
			return err
		}
		var stopCeiling func()
		if again, stopCeiling, err = b.ceilings(ctx, urls); err != nil {
			return err
		}
		defer stopCeiling()
	}
	n := 0
	for _, rate := range []float64{c.noisy.rate, 0} {
		for _, shape := range []noisyShape{noisyNone, noisySameHub, noisyOtherHub} {
			n++
			ph, err := b.noisyPhase(ctx, fmt.Sprintf("n%d", n), shape, rate)
			if err != nil {
				return err
			}
			res.Phases = append(res.Phases, ph)
		}
	}
	res.Verdicts = noisyVerdicts(res.Phases)
	b.ceilingAfter(ctx, again)
	res.Notes = append(res.Notes, fmt.Sprintf("each phase publishes for %s on a fresh hubd; fixed rate %.0f events/s to one healthy URL, max = closed loop (window %d events); the dead URL accepts connections and never answers",
		c.noisy.dur, c.noisy.rate, c.window))
	return nil
}

// noisyPhase starts a fresh system, configures the healthy hub (and the
// dead URL as shape says) and runs one phase at rate (0: closed loop).
func (b *bench) noisyPhase(ctx context.Context, class string, shape noisyShape, rate float64) (report.Phase, error) {
	s, err := b.startSystem(ctx, false)
	if err != nil {
		return report.Phase{}, err
	}
	defer func() { _ = s.stop(ctx) }()
	hang := 0
	if shape == noisySameHub {
		hang = 1
	}
	healthy, err := s.addHubs(ctx, hubSpec{n: 1, urls: 1, hanging: hang})
	if err != nil {
		return report.Phase{}, err
	}
	if err := s.warmUp(ctx, healthy); err != nil {
		return report.Phase{}, err
	}
	var dead []hub
	if shape == noisyOtherHub {
		if dead, err = s.addHubs(ctx, hubSpec{n: 1, urls: 0, hanging: 1}); err != nil {
			return report.Phase{}, err
		}
	}
	l := load{name: "healthy URL", class: class, hubs: healthy, rate: rate, closedLoop: rate == 0, shadow: dead}
	name := fmt.Sprintf("%s @ %s", shape, rateStr(rate))
	if rate > 0 && dead != nil {
		// The other hub gets as many events, from a load of its own.
		return s.runPhase(ctx, name, b.c.noisy.dur, l, load{name: "dead hub", class: class + "d", hubs: dead, rate: rate}), nil
	}
	return s.runPhase(ctx, name, b.c.noisy.dur, l), nil
}

// noisyVerdicts judges each phase with a dead URL against the baseline
// phase before it at the same rate: the healthy URL's p99 within 2x.
func noisyVerdicts(phases []report.Phase) []report.Verdict {
	var out []report.Verdict
	var base *report.Traffic
	for i := range phases {
		t := phases[i].Find("healthy URL")
		if t == nil {
			continue
		}
		if i%3 == 0 {
			base = t
			continue
		}
		if base == nil || base.Latency.P99Ms <= 0 {
			continue
		}
		out = append(out, report.NewVerdict("healthy p99, "+phases[i].Name, t.Latency.P99Ms, 2*base.Latency.P99Ms, "ms",
			fmt.Sprintf("baseline %.1f ms; limit 2x", base.Latency.P99Ms)))
	}
	return out
}
