package deliverer

import (
	"container/list"
	"context"
	rtmetrics "runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// With Config.BacklogBrake, backlog (overflow) POSTs get fewer slots while
// the CPUs are saturated and other hubs' live jobs flow, so the CPU their
// webhooks wait for at every hand-off is left to them (docs/delivery.md,
// "Opt-in: the backlog brake"). Every brakeTick: a quarter fewer slots while
// more than brakeTarget of goroutine waits took over brakeWait, a sixteenth
// more under half that, all of them with no such live job for brakeLive.
const (
	brakeTick   = 100 * time.Millisecond
	brakeTarget = 0.05 // share of goroutine waits over brakeWait
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
	// waiters wait for a slot in turn, each on a channel closed when it
	// is handed one: a freed slot wakes one goroutine, not all of them
	// (a herd of wake-ups would itself look like saturated CPUs).
	waiters list.List

	lastLive atomic.Int64 // unix nanos of the last live job of a hub without a backlog
	// backlogs is when each hub last had a job taken from overflow: its
	// own live jobs do not close the brake on its backlog.
	backlogMu sync.Mutex
	backlogs  map[string]time.Time
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
	return &brake{max: n, min: max(1, n/brakeDiv), limit: n, slowShare: share, backlogs: map[string]time.Time{}}
}

// acquire waits for a backlog POST slot; release gives it back. It reports
// false when ctx ends first.
func (b *brake) acquire(ctx context.Context) (release func(), ok bool) {
	b.mu.Lock()
	if b.inUse < b.limit && b.waiters.Len() == 0 {
		b.inUse++
		b.mu.Unlock()
		return b.release, true
	}
	ch := make(chan struct{})
	el := b.waiters.PushBack(ch)
	b.mu.Unlock()
	select {
	case <-ch:
		return b.release, true
	case <-ctx.Done():
		b.mu.Lock()
		select {
		case <-ch: // handed a slot meanwhile
			b.mu.Unlock()
			b.release()
		default:
			b.waiters.Remove(el)
			b.mu.Unlock()
		}
		return nil, false
	}
}

func (b *brake) release() {
	b.mu.Lock()
	b.inUse--
	b.handOffLocked()
	b.mu.Unlock()
}

// handOffLocked hands the free slots to the first waiters.
func (b *brake) handOffLocked() {
	for b.inUse < b.limit && b.waiters.Len() > 0 {
		ch := b.waiters.Remove(b.waiters.Front()).(chan struct{})
		b.inUse++
		close(ch)
	}
}

// current is the limit now.
func (b *brake) current() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limit
}

// taken notes that jobs of hub were taken at now, from overflow or live.
// Live jobs count as other work only when their hub had no job taken
// from overflow within brakeLive: a hub at its top rate, part of whose
// traffic goes to overflow, is a hub alone.
func (b *brake) taken(hub string, overflow bool, now time.Time) {
	b.backlogMu.Lock()
	defer b.backlogMu.Unlock()
	if overflow {
		b.backlogs[hub] = now
		return
	}
	if at, ok := b.backlogs[hub]; ok && now.Sub(at) < brakeLive {
		return
	}
	b.lastLive.Store(now.UnixNano())
}

// forgetBacklogs drops the hubs without a job from overflow for
// brakeLive (every brakeTick, so the map holds only recent backlogs).
func (b *brake) forgetBacklogs(now time.Time) {
	b.backlogMu.Lock()
	defer b.backlogMu.Unlock()
	for hub, at := range b.backlogs {
		if now.Sub(at) >= brakeLive {
			delete(b.backlogs, hub)
		}
	}
}

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
	if b.limit > old {
		b.handOffLocked()
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
			b.forgetBacklogs(now)
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
