package deliverer

import (
	"sync"
	"time"

	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
)

// Holding: a job on a lane holds its JetStream message unacknowledged from
// its fetch until it is settled. The replica holds at most maxHeld jobs (the
// fetch loop waits for room), tells JetStream that jobs held for long are
// still being worked on (heartbeatLoop), and moves the ones held past
// Config.HoldLimit to the retry store (holdLoop, in park.go).

// heldJob is a job on a lane, queued or being attempted.
type heldJob struct {
	msg     jobMsg
	job     *deliveryv1.DeliveryJob
	lane    string    // laneKey(job)
	stored  time.Time // when its message was stored, for its trace (zero unless tracing)
	fetched time.Time // when its message was fetched
	// overflow: it came from an overflow message, so it does not count
	// in its lane's share of live work (heldJobs.liveOfLane).
	overflow bool
	// progressed is when JetStream last heard of the job (its fetch or an
	// InProgress); guarded by heldJobs.mu.
	progressed time.Time
	park       parkState // how holdLoop takes its attempt out of the stream
}

// heldJobs is the set of jobs the replica holds. It is safe for concurrent
// use.
type heldJobs struct {
	max int

	mu      sync.Mutex
	jobs    map[*heldJob]struct{}
	byLane  map[string]int // held jobs per lane (key) taken from live messages
	backlog int            // held jobs taken from overflow messages
	// space and overflowSpace are signalled when a job is released: one
	// for the live fetch loop, one for the overflow loop.
	space, overflowSpace chan struct{}
}

func newHeldJobs(max int) *heldJobs {
	return &heldJobs{max: max, jobs: map[*heldJob]struct{}{}, byLane: map[string]int{},
		space: make(chan struct{}, 1), overflowSpace: make(chan struct{}, 1)}
}

func (hs *heldJobs) add(h *heldJob) {
	hs.mu.Lock()
	if _, ok := hs.jobs[h]; !ok {
		hs.jobs[h] = struct{}{}
		if !h.overflow {
			hs.byLane[h.lane]++
		} else {
			hs.backlog++
		}
	}
	hs.mu.Unlock()
}

func (hs *heldJobs) remove(h *heldJob) {
	hs.mu.Lock()
	if _, ok := hs.jobs[h]; ok {
		delete(hs.jobs, h)
		if !h.overflow {
			if hs.byLane[h.lane]--; hs.byLane[h.lane] <= 0 {
				delete(hs.byLane, h.lane)
			}
		} else {
			hs.backlog--
		}
	}
	hs.mu.Unlock()
	for _, ch := range []chan struct{}{hs.space, hs.overflowSpace} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// room is how many more jobs the replica may hold.
func (hs *heldJobs) room() int {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return hs.max - len(hs.jobs)
}

// overflowRoom is how many more jobs the replica may hold from overflow
// messages: up to half of what it may hold, so a backlog never takes the
// room a quiet hub's next job needs, and never more than one lane may
// queue (a hub with one URL would only park the surplus); and at most
// backlogCap jobs from overflow in all (the backlog brake's bound).
func (hs *heldJobs) overflowRoom(backlogCap int) int {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return min(hs.max/2-len(hs.jobs), backlogCap-hs.backlog)
}

// liveOfLane is how many jobs of lane key taken from live messages the
// replica holds.
func (hs *heldJobs) liveOfLane(key string) int {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return hs.byLane[key]
}

// count is how many jobs the replica holds.
func (hs *heldJobs) count() int {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return len(hs.jobs)
}

// progress returns the messages of the jobs JetStream has not heard of
// since before cutoff, noting that it hears of them at now.
func (hs *heldJobs) progress(cutoff, now time.Time) []jobMsg {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	var out []jobMsg
	for h := range hs.jobs {
		if h.progressed.Before(cutoff) {
			h.progressed = now
			out = append(out, h.msg)
		}
	}
	return out
}

// fetchedBefore returns the jobs fetched before cutoff.
func (hs *heldJobs) fetchedBefore(cutoff time.Time) []*heldJob {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	var out []*heldJob
	for h := range hs.jobs {
		if h.fetched.Before(cutoff) {
			out = append(out, h)
		}
	}
	return out
}

// hold adds h to the held jobs.
func (s *Service) hold(h *heldJob) {
	s.held.add(h)
	s.metrics.held.Inc()
}

// release removes h from the held jobs, once its message is settled (or
// handed to another path that settles it).
func (s *Service) release(h *heldJob) {
	s.held.remove(h)
	s.metrics.held.Dec()
}

// heartbeatLoop tells JetStream that jobs held longer than half the ack
// wait (queued behind a slow URL, or in flight) are still being worked on.
func (s *Service) heartbeatLoop() {
	t := time.NewTicker(max(s.cfg.AckWait/4, 500*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-s.workCtx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		for _, m := range s.held.progress(now.Add(-s.cfg.AckWait/2), now) {
			_ = m.InProgress()
		}
	}
}
