package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/ceiling"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/report"
)

// classRun is the traffic class of the throughput scenario's measured events.
const classRun = "r"

// throughput runs the classic scenario: the ceilings, then one load shape
// (-hubs x -urls, -event, -rate or closed loop) against one system, with
// latency, CPU and memory per delivery, and the ceilings again.
func (b *bench) throughput(ctx context.Context) error {
	c, res := b.c, b.result
	urls, err := b.listen(c.hubs * c.urls)
	if err != nil {
		return err
	}
	var again func(context.Context) (ceiling.Result, error)
	if !c.skipCeilings {
		var stopCeiling func()
		if again, stopCeiling, err = b.ceilings(ctx, urls); err != nil {
			return err
		}
		defer stopCeiling()
	}
	s, err := b.startSystem(ctx, c.cpuProfile != "")
	if err != nil {
		return err
	}
	defer func() { _ = s.stop(ctx) }()
	hubs, err := s.configureHubs(ctx, hubSpec{n: c.hubs, urls: c.urls, hanging: c.hangURLs}, urls)
	if err != nil {
		return err
	}
	if c.hangURLs > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d never-answering URL(s) per hub beside the %d healthy one(s); latency is of the healthy URLs", c.hangURLs, c.urls))
	}
	b.logf("configured %d hub(s) x %d URL(s) (+%d never answering); warming up", c.hubs, c.urls, c.hangURLs)
	if err := s.warmUp(ctx, hubs); err != nil {
		return err
	}
	b.logf("warm-up done")

	perEvent := b.perEvent * int64(c.urls)
	run := b.rx.AddClass(classRun)
	mon := s.startMonitor(ctx)
	profDone := s.startHubdProfile(ctx, c.cpuProfile, c.duration)
	stopSelfProfile, err := startSelfProfile(c.selfProfile)
	if err != nil {
		return err
	}
	m := startMeter(s.procs)
	sampleCtx, stopSampling := context.WithCancel(ctx)
	timelineDone := make(chan []report.Point, 1)
	go func() { timelineDone <- sampleTimeline(sampleCtx, s.procs, run) }()

	b.logf("publishing %s for %s (rate %s)", c.event, c.duration, rateStr(c.rate))
	start := time.Now()
	// Deliveries done, as far as the window is concerned: the slowest
	// destination's count for every destination, so one URL that lags (its
	// lane queues, the others race ahead) cannot let the window grow.
	dests := len(hubs) * c.urls
	done := func() int64 { return run.MinPerDestination(dests) * int64(dests) }
	pub := publishClosedLoop(ctx, s.js, b.factory, classRun, hubs, nil, c.duration, c.rate, c.window, done, perEvent)
	if err := stopSelfProfile(); err != nil {
		res.Notes = append(res.Notes, "self cpu profile: "+err.Error())
	}
	res.DeliveredWhilePublishing = run.Counts().Unique
	res.EventsPublished, res.PublishErrors = pub.acked, pub.errors
	res.PublishSeconds = pub.elapsed.Seconds()
	res.DeliveriesExpected = pub.acked * perEvent
	b.logf("published %d events (%d errors) in %.1fs; waiting for %d deliveries", pub.acked, pub.errors, res.PublishSeconds, res.DeliveriesExpected)
	if c.rate > 0 && res.PublishSeconds > 0 && float64(pub.acked)/res.PublishSeconds < 0.95*c.rate {
		res.Notes = append(res.Notes, fmt.Sprintf("published %.0f events/s, below the requested %.0f/s: the pipeline did not keep up within the window of %d events", float64(pub.acked)/res.PublishSeconds, c.rate, c.window))
	}
	drain(ctx, run, res.DeliveriesExpected, c.drainTimeout, b.logf)
	counts := run.Counts()
	res.DeliveriesReceived = counts.Unique
	res.Duplicates = counts.Duplicates
	res.ReceiverErrors = b.rx.Errors() + b.rx.Unknown()
	if !counts.Last.IsZero() {
		res.DeliverySeconds = counts.Last.Sub(start).Seconds()
	}
	res.Latency = run.Latency()
	stopSampling()
	res.Timeline = <-timelineDone
	res.Redis = mon.finish(ctx, res.DeliveriesReceived)
	res.Processes = m.stop(res.DeliveriesReceived)
	res.Backlog = mon.backlog
	if profDone != nil {
		s.finishHubdProfile(ctx, profDone, c.cpuProfile)
	}
	if err := s.stop(ctx); err != nil {
		res.Notes = append(res.Notes, err.Error())
	}
	b.ceilingAfter(ctx, again)
	return nil
}

// monitor follows what one measured window did to the system beyond CPU:
// the backlogs of the streams, the logger's Redis memory and the system's
// counters.
type monitor struct {
	s             *system
	backlogs      *backlogSampler
	backlog       report.Backlog
	redis         *report.Redis
	trimmedBefore float64
	trimmedKnown  bool
	metricsURLs   []string
}

func (s *system) startMonitor(ctx context.Context) *monitor {
	mon := &monitor{s: s, metricsURLs: s.metricsURLs(), backlogs: sampleBacklogs(ctx, s.metricsURLs())}
	mon.trimmedBefore, mon.trimmedKnown = trimmed(fetchAll(ctx, mon.metricsURLs, nil))
	b := s.b
	switch {
	case b.rdbErr != nil:
		mon.redis = &report.Redis{Error: b.rdbErr.Error()}
	default:
		if used, err := usedMemory(ctx, b.rdb); err != nil {
			mon.redis = &report.Redis{Error: err.Error()}
		} else {
			mon.redis = &report.Redis{UsedMemoryBefore: used, Keys: -1}
		}
	}
	return mon
}

// finish waits for the logger to catch up, then reads Redis memory per log
// entry (entries = deliveries minus what retention trimmed) and the
// system's counters into the result.
func (mon *monitor) finish(ctx context.Context, deliveries int64) *report.Redis {
	s := mon.s
	mon.backlog = mon.backlogs.stop()
	caught := loggerCaughtUp(ctx, mon.metricsURLs, 60*time.Second)
	read := s.readCounters(ctx, mon.metricsURLs)
	rs := mon.redis
	if rs.Error != "" {
		return rs
	}
	res := s.b.result
	used, err := usedMemory(ctx, s.b.rdb)
	if err != nil {
		rs.Error = err.Error()
		return rs
	}
	rs.UsedMemoryAfter, rs.Entries, rs.LoggerCaughtUp = used, deliveries, caught
	// The logger trims each hub's oldest entries beyond its retention:
	// count only the entries still held.
	if trimmedAfter, ok := trimmed(read); ok && mon.trimmedKnown {
		rs.Trimmed = int64(trimmedAfter - mon.trimmedBefore)
		rs.Entries -= rs.Trimmed
	} else {
		res.Notes = append(res.Notes, "logger trim counter not available (pass -metrics): bytes per entry assumes nothing was trimmed")
	}
	if s.tg.prefix != "" {
		rs.Keys = countKeys(ctx, s.b.rdb, s.tg.prefix, 20*time.Second)
	}
	return rs
}

// readCounters reads the system's non-zero hubhooks_*_total counters from
// urls into the result (and a note for each notable one), and returns the
// metrics read.
func (s *system) readCounters(ctx context.Context, urls []string) []metrics {
	res := s.b.result
	all := fetchAll(ctx, urls, func(err error) { res.Notes = append(res.Notes, "metrics: "+err.Error()) })
	for i, u := range urls {
		if all[i] == nil {
			continue
		}
		m := counters(all[i])
		if res.Counters == nil {
			res.Counters = map[string]float64{}
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			res.Counters[k] += m[k]
			if notable(k) {
				res.Notes = append(res.Notes, fmt.Sprintf("counter %s = %.0f (%s)", k, m[k], u))
			}
		}
	}
	return all
}

// startHubdProfile starts fetching a CPU profile of hubd over d (at most
// 120 s) when path is set; nil when not.
func (s *system) startHubdProfile(ctx context.Context, path string, d time.Duration) chan error {
	if path == "" || s.tg.httpAddr == "" {
		return nil
	}
	secs := int(min(d, 120*time.Second).Seconds())
	done := make(chan error, 1)
	go func() {
		done <- fetchProfile(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", s.tg.httpAddr, secs), path, time.Duration(secs+30)*time.Second)
	}()
	return done
}

// finishHubdProfile waits for the CPU profile and saves the heap profile
// beside it.
func (s *system) finishHubdProfile(ctx context.Context, done chan error, path string) {
	res := s.b.result
	if err := <-done; err != nil {
		res.Notes = append(res.Notes, "cpu profile: "+err.Error())
		return
	}
	res.Notes = append(res.Notes, "cpu profile written to "+path)
	if err := fetchProfile(ctx, "http://"+s.tg.httpAddr+"/debug/pprof/heap", path+".heap", 30*time.Second); err != nil {
		res.Notes = append(res.Notes, "heap profile: "+err.Error())
	}
}

func rateStr(r float64) string {
	if r <= 0 {
		return "max"
	}
	return fmt.Sprintf("%.0f/s", r)
}
