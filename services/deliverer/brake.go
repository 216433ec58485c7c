package deliverer

import (
	"context"
	rtmetrics "runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// With Config.BacklogBrake, the POSTs of jobs taken from overflow (a
// hub's backlog) are bounded while this process's CPUs are saturated and
// live work flows: every hand-off of a live webhook between goroutines (a
// message read, a worker woken, an answer back) waits for a CPU, and beside
// a burst that keeps them busy those waits, not any one queue, make the
// other hubs' tail (docs/delivery.md). The brake watches how long runnable
// goroutines wait (the runtime's /sched/latencies) and, every brakeTick,
// gives backlog POSTs a quarter fewer slots (down to a sixteenth of the
// replica's Concurrency) while more than brakeTarget of the waits took
// over a millisecond, and a sixteenth more while fewer than half as many
// did. With no live job taken for brakeLive, or a backlog whose POSTs wait
// on distant receivers rather than on the CPU, it stays open: a hub alone
// keeps its whole rate.
const (
	brakeTick   = 100 * time.Millisecond
	brakeTarget = 0.02 // share of goroutine waits over brakeWait
	brakeWait   = time.Millisecond
	brakeLive   = time.Second
	brakeDiv    = 16 // the limit's least, and its step up: max/brakeDiv
	brakeHeld   = 4  // backlog jobs held per slot the brake allows
)

// brake is an adjustable bound on backlog POSTs in flight. It is safe for
// concurrent use.
type brake struct {
	max, min int

	mu    sync.Mutex
	limit int
	inUse int
	wake  chan struct{} // closed when a slot may be free

	lastLive atomic.Int64 // unix nanos of the last live job taken
	// slowShare is the share of goroutine waits over brakeWait since it
	// was last called.
	slowShare func() float64
}

// newBrake is a brake of at most n slots; share, when set, replaces the
// runtime's scheduler latencies.
func newBrake(n int, share func() float64) *brake {
	if share == nil {
		share = (&schedSampler{}).share
	}
	return &brake{max: n, min: max(1, n/brakeDiv), limit: n, wake: make(chan struct{}), slowShare: share}
}

// acquire waits for a backlog POST slot; release gives it back. It reports
// false when ctx ends first.
func (b *brake) acquire(ctx context.Context) (release func(), ok bool) {
	for {
		b.mu.Lock()
		if b.inUse < b.limit {
			b.inUse++
			b.mu.Unlock()
			return b.release, true
		}
		wake := b.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, false
		}
	}
}

func (b *brake) release() {
	b.mu.Lock()
	b.inUse--
	if b.inUse < b.limit {
		b.wakeLocked()
	}
	b.mu.Unlock()
}

func (b *brake) wakeLocked() {
	close(b.wake)
	b.wake = make(chan struct{})
}

// current is the limit now.
func (b *brake) current() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limit
}

// liveTaken notes that a live job was taken at now.
func (b *brake) liveTaken(now time.Time) { b.lastLive.Store(now.UnixNano()) }

// adjust sets the limit from the share of goroutine waits over brakeWait
// since the last call; it returns the new limit.
func (b *brake) adjust(now time.Time, slowShare float64) int {
	live := now.Sub(time.Unix(0, b.lastLive.Load())) < brakeLive
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.limit
	switch {
	case !live:
		b.limit = b.max
	case slowShare > brakeTarget:
		b.limit = max(b.min, b.limit*3/4)
	case slowShare < brakeTarget/2:
		b.limit = min(b.max, b.limit+b.min)
	}
	if b.limit > old && b.inUse < b.limit {
		b.wakeLocked()
	}
	return b.limit
}

// run adjusts the brake every brakeTick until ctx ends.
func (b *brake) run(ctx context.Context, changed func(limit int)) {
	t := time.NewTicker(brakeTick)
	defer t.Stop()
	b.slowShare() // the first reading
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if limit := b.adjust(now, b.slowShare()); changed != nil {
				changed(limit)
			}
		}
	}
}

// schedSampler reads the runtime's scheduler latencies.
type schedSampler struct {
	sample []rtmetrics.Sample
	prev   []uint64
}

// share is the share of goroutine waits for a CPU longer than brakeWait
// since the last call (0 when there were none).
func (s *schedSampler) share() float64 {
	if s.sample == nil {
		s.sample = []rtmetrics.Sample{{Name: "/sched/latencies:seconds"}}
	}
	rtmetrics.Read(s.sample)
	if s.sample[0].Value.Kind() != rtmetrics.KindFloat64Histogram {
		return 0
	}
	h := s.sample[0].Value.Float64Histogram()
	if len(s.prev) != len(h.Counts) {
		s.prev = make([]uint64, len(h.Counts))
	}
	var total, slow uint64
	for i, c := range h.Counts {
		d := c - s.prev[i]
		s.prev[i] = c
		total += d
		// Bucket i holds waits in [Buckets[i], Buckets[i+1]).
		if h.Buckets[i] >= brakeWait.Seconds() {
			slow += d
		}
	}
	if total == 0 {
		return 0
	}
	return float64(slow) / float64(total)
}
