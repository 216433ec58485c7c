package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/ceiling"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/report"
)

// Phases and traffic of the replay scenario.
const (
	phaseLiveAlone  = "live alone"
	phaseLiveReplay = "live + replay"
	trafficSameHub  = "live, replaying hub"
	trafficReplay   = "replay"
	classHistory    = "h"
)

// replay runs the replay scenario on one hubd: a hub's history (events
// published while its triggers were off, -replay-deliveries deliveries'
// worth), then live traffic of that hub and of -replay-other-hubs hubs
// alone, then the same live traffic beside ReplayDomainEvents of the
// history; it judges each live p99 beside the replay against its p99
// alone.
func (b *bench) replay(ctx context.Context) error {
	c, rc, res := b.c, b.c.replay, b.result
	var again func(context.Context) (ceiling.Result, error)
	replayURLs, err := b.listen(rc.urls)
	if err != nil {
		return err
	}
	if !c.skipCeilings {
		var stop func()
		if again, stop, err = b.ceilings(ctx, replayURLs); err != nil {
			return err
		}
		defer stop()
	}
	s, err := b.startSystem(ctx, c.cpuProfile != "")
	if err != nil {
		return err
	}
	defer func() { _ = s.stop(ctx) }()
	replayHub, err := s.configureHubs(ctx, hubSpec{n: 1, urls: rc.urls}, replayURLs)
	if err != nil {
		return err
	}
	others, err := s.addHubs(ctx, hubSpec{n: rc.otherHubs, urls: 1})
	if err != nil {
		return err
	}
	if err := s.warmUp(ctx, append(append([]hub(nil), replayHub...), others...)); err != nil {
		return err
	}
	events := (int64(rc.deliveries) + b.perEvent*int64(rc.urls) - 1) / (b.perEvent * int64(rc.urls))
	since, until, err := s.history(ctx, replayHub[0], int(events))
	if err != nil {
		return err
	}
	ops := hubhooksv1.NewOperationsServiceClient(s.conn)
	otherName := fmt.Sprintf("live, %d other hubs", rc.otherHubs)
	live := func(class string) []load {
		return []load{
			{name: trafficSameHub, class: class + "s", hubs: replayHub, rate: rc.sameRate},
			{name: otherName, class: class + "o", hubs: others, rate: rc.otherRate},
		}
	}
	var last *hubhooksv1.ReplayDomainEventsProgress
	replayLoad := load{name: trafficReplay, class: classHistory, hubs: replayHub, once: func(ctx context.Context) pubResult {
		start := time.Now()
		p, err := s.replayAll(ctx, ops, &hubhooksv1.ReplayDomainEventsRequest{
			HubId: replayHub[0].id, Since: timestamppb.New(since), Until: timestamppb.New(until),
		})
		last = p
		if err != nil {
			b.logf("replay: %v", err)
			return pubResult{errors: 1, elapsed: time.Since(start)}
		}
		b.logf("replay: %d domain events, %d deliveries published in %s", last.GetDomainEventsMatched(), last.GetDeliveries(), time.Since(start).Round(time.Millisecond))
		return pubResult{acked: last.GetDomainEventsMatched(), elapsed: time.Since(start)}
	}}
	res.Phases = []report.Phase{
		s.runPhase(ctx, phaseLiveAlone, rc.liveFor, live("a")...),
		s.runPhase(ctx, phaseLiveReplay, 0, append(live("r"), replayLoad)...),
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	res.Verdicts = replayVerdicts(res.Phases, []string{trafficSameHub, otherName})
	s.readCounters(ctx, s.metricsURLs())
	if err := s.stop(ctx); err != nil {
		res.Notes = append(res.Notes, err.Error())
	}
	b.ceilingAfter(ctx, again)
	bulk := os.Getenv("HUBHOOKS_BULK_RATE")
	if bulk == "" {
		bulk = "500 (default)"
	}
	res.Notes = append(res.Notes, fmt.Sprintf("replay: %d events x %d URLs of one hub, published while its triggers were off, replayed with ReplayDomainEvents at HUBHOOKS_BULK_RATE %s deliveries/s; its latency counts from the events' first publish. Live: that hub %.0f events/s, %d other hubs %.0f events/s in all (one URL each)",
		events, rc.urls, bulk, rc.sameRate, rc.otherHubs, rc.otherRate))
	if last != nil {
		res.Notes = append(res.Notes, fmt.Sprintf("replay progress: %d domain events scanned, %d matched, %d webhook events, %d deliveries, %d already replayed",
			last.GetDomainEventsScanned(), last.GetDomainEventsMatched(), last.GetWebhookEvents(), last.GetDeliveries(), last.GetAlreadyReplayed()))
	}
	return nil
}

// history publishes n events of h while its triggers are off, waits until
// the expander has skipped them all, switches the triggers on again and
// returns the time range the events were stored in.
func (s *system) history(ctx context.Context, h hub, n int) (since, until time.Time, err error) {
	b := s.b
	set := func(on bool) error {
		return retryCall(ctx, "SetEventsEnabled", func(ctx context.Context) error {
			_, err := s.config.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: h.id, Enabled: on})
			return err
		})
	}
	if err := set(false); err != nil {
		return since, until, err
	}
	// The expander learns of the change through its config watch, within
	// milliseconds; a second leaves no doubt.
	time.Sleep(time.Second)
	b.rx.AddClass(classHistory)
	b.logf("history: publishing %d events of hub %s with its triggers off", n, h.id)
	since = time.Now().Add(-time.Second)
	pub := publishBurst(ctx, s.burstJS, b.factory, classHistory, h.id, n, b.c.fair.burstWindow)
	until = time.Now().Add(time.Second)
	if pub.acked != int64(n) {
		return since, until, fmt.Errorf("history: %d of %d events acknowledged", pub.acked, n)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if n, err := eventsBacklog(ctx, s.metricsURLs()); err == nil && n == 0 {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return since, until, errors.New("history: the expander did not take the events within 5 minutes")
		}
		time.Sleep(250 * time.Millisecond)
	}
	if got := b.rx.Class(classHistory).Counts().Unique; got != 0 {
		return since, until, fmt.Errorf("history: %d webhooks went out with the triggers off", got)
	}
	if err := set(true); err != nil {
		return since, until, err
	}
	time.Sleep(time.Second)
	return since, until, nil
}

// replayAll runs a replay to its end and returns its last progress.
func (s *system) replayAll(ctx context.Context, ops hubhooksv1.OperationsServiceClient, req *hubhooksv1.ReplayDomainEventsRequest) (*hubhooksv1.ReplayDomainEventsProgress, error) {
	stream, err := ops.ReplayDomainEvents(ctx, req)
	if err != nil {
		return nil, err
	}
	var last *hubhooksv1.ReplayDomainEventsProgress
	for {
		p, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if !last.GetDone() {
				return last, errors.New("the replay's stream ended before it was done")
			}
			return last, nil
		}
		if err != nil {
			return last, err
		}
		last = p
	}
}

// replayVerdicts judges each live traffic's p99 beside the replay against
// its p99 alone (within 2x or +25 ms).
func replayVerdicts(phases []report.Phase, traffics []string) []report.Verdict {
	if len(phases) < 2 {
		return nil
	}
	var out []report.Verdict
	for _, name := range traffics {
		a, d := phases[0].Find(name), phases[1].Find(name)
		if a == nil || d == nil {
			continue
		}
		out = append(out, report.NewVerdict(name+" p99 beside the replay", d.Latency.P99Ms, report.LatencyLimit(a.Latency.P99Ms), "ms",
			fmt.Sprintf("alone %.1f ms; limit max(2x, +25 ms)", a.Latency.P99Ms)))
	}
	return out
}
