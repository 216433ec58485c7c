package main

import (
	"context"
	"time"

	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/report"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/sink"
)

// load is one kind of traffic of a phase.
type load struct {
	name  string // in the report: "burst", "quiet", "healthy", ...
	class string // the sink's traffic class (unique per phase and load)
	hubs  []hub
	// burst > 0: that many events at once to hubs[0]; otherwise rate
	// events/s in all, round-robin over hubs, for the phase's duration.
	burst int
	rate  float64
	// closedLoop: as fast as the pipeline delivers (see publishClosedLoop),
	// for the phase's duration; shadow hubs get one event for each.
	closedLoop bool
	shadow     []hub
	// once, when set, makes the load's whole traffic at once (a replay
	// request) and returns what it made: acked counts the domain events
	// whose deliveries are expected. Like a burst, the phase lasts until
	// they all arrived.
	once func(context.Context) pubResult
}

// loadRun is a load being published and received.
type loadRun struct {
	l       load
	c       *sink.Class
	start   time.Time
	pub     pubResult
	urls    int64 // healthy URLs per event: deliveries per webhook event
	stopped chan struct{}
	done    chan struct{}
}

// runPhase publishes every load of a phase together and measures them:
// bursts (and once loads) go out at once and the phase lasts until every
// burst delivery arrived; rate loads publish until then (or for d when there is no
// burst); closed-loop loads publish for d. Then it waits for the rest of
// the deliveries and reads CPU per delivery and the streams' backlogs.
func (s *system) runPhase(ctx context.Context, name string, d time.Duration, loads ...load) report.Phase {
	b := s.b
	b.logf("phase %q", name)
	runs := make([]*loadRun, len(loads))
	for i, l := range loads {
		runs[i] = &loadRun{l: l, c: b.rx.AddClass(l.class), urls: int64(len(l.hubs[0].urls)), stopped: make(chan struct{}), done: make(chan struct{})}
	}
	backlogs := sampleBacklogs(ctx, s.metricsURLs())
	schedBefore := schedHistogram(ctx, s.metricsURLs())
	tails := sampleTails(runs, b.c.tailWindow)
	m := startMeter(s.procs)
	start := time.Now()
	for _, r := range runs {
		r.start = time.Now()
		go func() {
			defer close(r.done)
			switch {
			case r.l.once != nil:
				r.pub = r.l.once(ctx)
			case r.l.burst > 0:
				r.pub = publishBurst(ctx, s.burstJS, b.factory, r.l.class, r.l.hubs[0].id, r.l.burst, b.c.fair.burstWindow)
			case r.l.closedLoop:
				dests := 0
				for _, h := range r.l.hubs {
					dests += len(h.urls)
				}
				done := func() int64 { return r.c.MinPerDestination(dests) * int64(dests) }
				r.pub = publishClosedLoop(ctx, s.js, b.factory, r.l.class, r.l.hubs, r.l.shadow, d, 0, b.c.window, done, b.perEvent*r.urls)
			default:
				r.pub = publishTrickle(ctx, s.js, b.factory, r.l.class, r.l.hubs, r.l.rate, r.stopped, b.traces)
			}
		}()
	}
	// The phase's end: every burst delivered, or d.
	bursts := false
	for _, r := range runs {
		if r.l.burst > 0 || r.l.once != nil {
			bursts = true
			<-r.done
			drain(ctx, r.c, r.expected(b.perEvent), b.c.drainTimeout, b.logf)
		}
	}
	if !bursts {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
	for _, r := range runs {
		close(r.stopped)
		<-r.done
		drain(ctx, r.c, r.expected(b.perEvent), min(b.c.drainTimeout, time.Minute), b.logf)
	}
	ph := report.Phase{Name: name, Seconds: time.Since(start).Seconds()}
	perWindow := tails()
	for i, r := range runs {
		t := r.traffic(b.perEvent)
		t.MaxLatencyPerWindowMs = perWindow[i]
		ph.Traffic = append(ph.Traffic, t)
	}
	ph.Backlog = backlogs.stop()
	ph.SchedWaits = schedWaits(schedBefore, schedHistogram(ctx, s.metricsURLs()))
	ph.Processes = m.stop(ph.Deliveries())
	loggerCaughtUp(ctx, s.metricsURLs(), time.Minute)
	return ph
}

// expected is the deliveries the load's acknowledged events make.
func (r *loadRun) expected(perEvent int64) int64 { return r.pub.acked * perEvent * r.urls }

// traffic summarises what the load's class received.
func (r *loadRun) traffic(perEvent int64) report.Traffic {
	counts := r.c.Counts()
	t := report.Traffic{
		Name: r.l.name, Class: r.l.class, Hubs: len(r.l.hubs), Published: r.pub.acked, Expected: r.expected(perEvent),
		Received: counts.Unique, Duplicates: counts.Duplicates, Latency: r.c.Latency(),
		PublishAckMs: r.pub.ackLatency,
	}
	if !counts.Last.IsZero() {
		t.Seconds = counts.Last.Sub(r.start).Seconds()
		if t.Seconds > 0 {
			t.PerSecond = float64(t.Received) / t.Seconds
		}
	}
	if len(r.l.hubs) > 1 {
		for dest, sum := range r.c.LatencyByDestination() {
			if sum.P99Ms > t.WorstHubP99Ms {
				t.WorstHubP99Ms, t.WorstHub = sum.P99Ms, dest
			}
		}
	}
	return t
}

// sampleTails records, every window, the highest latency each load's
// deliveries had in that window, until the returned func is called (it
// returns the series, one per load): where a tail comes from.
func sampleTails(runs []*loadRun, window time.Duration) func() [][]float64 {
	out := make([][]float64, len(runs))
	stop, done := make(chan struct{}), make(chan struct{})
	for _, r := range runs {
		r.c.TakeWindowMax() // start a fresh window
	}
	go func() {
		defer close(done)
		t := time.NewTicker(window)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			for i, r := range runs {
				out[i] = append(out[i], float64(r.c.TakeWindowMax().Microseconds())/1000)
			}
		}
	}()
	return func() [][]float64 {
		close(stop)
		<-done
		return out
	}
}
