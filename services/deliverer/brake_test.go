package deliverer

import (
	"context"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubhooks/hubhooks/pkg/poll"
)

func TestBrakeClosesOnlyWhileLiveWorkWaitsForTheCPU(t *testing.T) {
	b := newBrake(256, func() float64 { return 0 })
	now := time.Now()
	// No live work: open, however busy the CPUs.
	if got := b.adjust(now, 0.5); got != 256 {
		t.Fatalf("no live work, saturated: limit %d, want 256", got)
	}
	b.taken("live", false, now)
	want := 256
	for range 30 {
		want = max(b.min, want*3/4)
		if got := b.adjust(now, 0.5); got != want {
			t.Fatalf("live work, saturated: limit %d, want %d", got, want)
		}
	}
	if want != 256/brakeDiv {
		t.Fatalf("settled at %d, want %d", want, 256/brakeDiv)
	}
	// Between the target and half of it: held.
	if got := b.adjust(now, brakeTarget*0.75); got != b.min {
		t.Errorf("near the target: limit %d, want %d", got, b.min)
	}
	// Idle CPUs: it opens a sixteenth of the way a tick.
	if got := b.adjust(now, 0); got != 2*b.min {
		t.Errorf("idle: limit %d, want %d", got, 2*b.min)
	}
	// Live work gone for brakeLive: open at once.
	if got := b.adjust(now.Add(brakeLive), 0.5); got != 256 {
		t.Errorf("live work gone: limit %d, want 256", got)
	}
	// A hub's own live jobs beside its backlog are a hub alone.
	later := now.Add(2 * brakeLive)
	b.taken("busy", true, later)
	b.taken("busy", false, later)
	if got := b.adjust(later, 0.5); got != 256 {
		t.Errorf("only the backlog's own hub live: limit %d, want 256", got)
	}
	b.taken("other", false, later)
	if got := b.adjust(later, 0.5); got != 192 {
		t.Errorf("another hub live: limit %d, want 192", got)
	}
}

func TestBrakeSlotsFollowTheLimit(t *testing.T) {
	b := newBrake(64, nil)
	now := time.Now()
	b.taken("live", false, now)
	for b.adjust(now, 1) > b.min {
	}
	ctx := context.Background()
	var releases []func()
	for range b.min {
		r, ok := b.acquire(ctx)
		if !ok {
			t.Fatal("no slot under the limit")
		}
		releases = append(releases, r)
	}
	got := make(chan func(), 1)
	go func() {
		r, _ := b.acquire(ctx)
		got <- r
	}()
	select {
	case <-got:
		t.Fatal("a slot over the limit")
	case <-time.After(50 * time.Millisecond):
	}
	releases[0]() // one back: the waiter takes it
	select {
	case r := <-got:
		releases[0] = r
	case <-time.After(5 * time.Second):
		t.Fatal("a released slot was not taken")
	}
	go func() {
		r, _ := b.acquire(ctx)
		got <- r
	}()
	b.adjust(now.Add(brakeLive), 1) // live work gone: open, and the waiter wakes
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("a raised limit woke no waiter")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	b.taken("live", false, now.Add(brakeLive))
	for b.adjust(now.Add(brakeLive), 1) > b.min {
	}
	if _, ok := b.acquire(cctx); ok {
		t.Error("acquire over the limit with its context done")
	}
}

// inFlight answers after d and keeps the most requests it had at once
// since the last reset.
type inFlight struct {
	d        time.Duration
	now, top atomic.Int64
}

func (f *inFlight) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	n := f.now.Add(1)
	for top := f.top.Load(); n > top && !f.top.CompareAndSwap(top, n); top = f.top.Load() {
	}
	time.Sleep(f.d)
	f.now.Add(-1)
	w.WriteHeader(http.StatusNoContent)
}

// A backlog's POSTs shrink to a sixteenth of the replica's while live jobs flow on saturated
// CPUs (saturation is forced), and run at the hub's full concurrency again
// once live work stops.
func TestBacklogBrakeLeavesTheCPUToLiveWork(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	flight := &inFlight{d: 20 * time.Millisecond}
	serve := func(_ int, w http.ResponseWriter, r *http.Request) { flight.ServeHTTP(w, r) }
	_, backlogURLs := hookServers(t, serve, serve)
	quietHooks, quietURLs := hookServers(t, status(204))
	backlogHub, quiet := e.addHub("hub-backlog", backlogURLs...), e.addHub("hub-live", quietURLs...)
	cfg := baseConfig(e.prefix, 0)
	cfg.Concurrency, cfg.PerURLConcurrency, cfg.PerHubConcurrency = 32, 16, 32
	cfg.BacklogBrake = true
	cfg.brakeShare = func() float64 { return 0.5 } // saturated CPUs
	svc, _ := e.start(t, cfg, newSender(t))

	// 4,000 jobs in the hub's overflow shard: at 32 POSTs of 20 ms, 2.5 s
	// of work unbraked.
	backlog := e.publishBacklog(t, backlogHub, 0, 2000, 20, backlogURLs...)
	// Live jobs of another hub every 50 ms, for 1.5 s.
	stopLive := make(chan struct{})
	liveDone := make(chan int)
	go func() {
		n := 0
		defer func() { liveDone <- n }()
		for {
			select {
			case <-stopLive:
				return
			case <-time.After(50 * time.Millisecond):
			}
			e.publishJob(t, quiet, quietURLs[0], 100+n, false)
			n++
		}
	}()
	time.Sleep(time.Second) // the brake closes within 0.6 s
	flight.top.Store(flight.now.Load())
	time.Sleep(500 * time.Millisecond)
	braked := flight.top.Load()
	close(stopLive)
	live := <-liveDone
	if least := int64(cfg.Concurrency / brakeDiv); braked > least {
		t.Errorf("braked, the backlog had up to %d POSTs at once, want at most %d", braked, least)
	}
	// Live work gone for brakeLive: the backlog gets its 32 again.
	time.Sleep(brakeLive + 3*brakeTick)
	flight.top.Store(flight.now.Load())
	time.Sleep(300 * time.Millisecond)
	if open := flight.top.Load(); open < 16 {
		t.Errorf("open again, the backlog had up to %d POSTs at once, want at least 16 (of 32)", open)
	}
	poll.Until(t, 60*time.Second, "the whole backlog", func() bool { return e.records.succeeded(backlog) == len(backlog) })
	poll.Until(t, 10*time.Second, "every live job", func() bool { return quietHooks[0].count() == live })
	if got := svc.brake.current(); got != cfg.Concurrency {
		t.Errorf("brake limit %d with no live work, want %d", got, cfg.Concurrency)
	}
}

// The runtime's scheduler latencies tell saturated CPUs: goroutines that
// each want a CPU for 300 ms, four per CPU, wait for one far past a
// millisecond.
func TestSchedSamplerSeesSaturatedCPUs(t *testing.T) {
	var s schedSampler
	s.share()
	done := make(chan struct{})
	n := 4 * runtime.GOMAXPROCS(0)
	for range n {
		go func() {
			defer func() { done <- struct{}{} }()
			for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
			}
		}()
	}
	for range n {
		<-done
	}
	got := s.share()
	t.Logf("%.3f of goroutine waits over %s", got, brakeWait)
	if got <= brakeTarget {
		t.Errorf("%.3f of goroutine waits over %s with %d CPU-bound goroutines, want over %.2f", got, brakeWait, n, brakeTarget)
	}
}
