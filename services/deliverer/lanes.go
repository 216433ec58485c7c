package deliverer

import (
	"strings"
	"sync"
	"time"

	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
)

// Lanes: each (hub, URL) has a lane with at most Config.PerURLConcurrency
// attempts running (with Config.AdaptiveConcurrency, fewer while its
// answers say more would only wait: adaptive.go) and a short queue behind
// them, so a slow or dead URL only ever holds its own lane. A job that finds
// its lane's queue full is parked in the retry store (parkQueued); one whose
// lane has answered nothing for a second (its URL accepts connections but
// does not answer) fails fast (failFast), as does one whose URL's circuit
// breaker is open.

// laneKey identifies the lane (and the circuit breaker) of job's URL.
func laneKey(job *deliveryv1.DeliveryJob) string { return job.GetHubId() + " " + job.GetUrl() }

// urlOfKey is the URL of a lane key.
func urlOfKey(key string) string {
	_, url, _ := strings.Cut(key, " ")
	return url
}

// lane is one URL's attempts: running and queued.
type lane struct {
	running int
	limit   postLimit  // how many may run
	queue   []*heldJob // in fetch order
	// lastAnswer is when a POST of the lane last returned (or the lane last
	// finished a job): a lane whose POSTs do not return (a hanging URL) may
	// queue only a few jobs, so it never takes the fetch loop's room from
	// healthy URLs.
	lastAnswer time.Time
}

// stuck reports whether none of the lane's POSTs returned in the second
// before now: its URL accepts connections but does not answer.
func (l *lane) stuck(now time.Time) bool { return now.Sub(l.lastAnswer) > time.Second }

// admission is what lanes.admit decided for a job.
type admission int

const (
	// admitRun: the lane has a free slot; the caller runs the job (runLane).
	admitRun admission = iota
	// admitQueued: the job waits in the lane's queue.
	admitQueued
	// refuseFull: the lane's queue is full; park the job.
	refuseFull
	// refuseStuck: the lane's queue is full and its URL does not answer;
	// fail the job fast.
	refuseStuck
	// refuseClosed: the deliverer is shutting down; hand the job back.
	refuseClosed
)

// lanes holds every lane with work. It is safe for concurrent use.
type lanes struct {
	perURL      int  // Config.PerURLConcurrency
	adaptive    bool // Config.AdaptiveConcurrency
	perURLQueue int  // Config.PerURLQueue
	queueMax    int  // perURLQueue, at most half of what the replica holds

	mu     sync.Mutex
	m      map[string]*lane
	closed bool // set by close: no job is queued or started after it
	// idle keeps the limits of lanes that ran out of work for
	// limitMemory, so a lane that comes back (a backlog taken from overflow
	// a batch at a time) starts from what it learnt, not from all its slots.
	idle      map[string]idleLimit
	lastSweep time.Time
}

// limitMemory is how long the limit of a lane without work is kept: as
// long as its base would be.
const limitMemory = 2 * baseWindow

// idleLimit is the limit of a lane that ran out of work at since.
type idleLimit struct {
	limit postLimit
	since time.Time
}

func newLanes(perURL int, adaptive bool, perURLQueue, maxHeld int) *lanes {
	return &lanes{perURL: perURL, adaptive: adaptive, perURLQueue: perURLQueue, queueMax: min(perURLQueue, maxHeld/2),
		m: map[string]*lane{}, idle: map[string]idleLimit{}}
}

// queueLimit is how many jobs l may queue: queueMax while its POSTs return
// (so one URL never takes all the fetch loop's room), no more than its
// slots once none returned in the last second.
func (ls *lanes) queueLimit(l *lane, now time.Time) int {
	if l.stuck(now) {
		return min(ls.perURLQueue, ls.perURL)
	}
	return ls.queueMax
}

// admit decides what becomes of h, a job of lane h.lane, at now; it queues h
// when the decision is admitQueued.
func (ls *lanes) admit(h *heldJob, now time.Time) admission {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.closed {
		return refuseClosed
	}
	l := ls.m[h.lane]
	if l == nil {
		// A new lane counts as having just answered: it is not stuck before
		// it has had a second to answer.
		l = &lane{lastAnswer: now, limit: newPostLimit(ls.perURL, ls.adaptive, now)}
		if was, ok := ls.idle[h.lane]; ok {
			delete(ls.idle, h.lane)
			if now.Sub(was.since) < limitMemory {
				l.limit = was.limit
			}
		}
		ls.m[h.lane] = l
	}
	switch {
	case l.running < l.limit.limit:
		l.running++
		return admitRun
	case len(l.queue) < ls.queueLimit(l, now):
		l.queue = append(l.queue, h)
		return admitQueued
	case l.stuck(now):
		return refuseStuck
	default:
		return refuseFull
	}
}

// failsFast reports whether a job of lane key admitted at now would fail
// fast (refuseStuck): every slot the lane may use is taken, its queue is
// full and none of its POSTs returned in the second before now.
func (ls *lanes) failsFast(key string, now time.Time) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.m[key]
	return l != nil && l.running >= l.limit.limit && len(l.queue) >= ls.queueLimit(l, now) && l.stuck(now)
}

// next is called when a job of lane key has finished at now: it returns
// the lane's next queued job to run, or nil when the lane has none (or runs
// more than its limit now allows, or the deliverer is shutting down), which
// frees the finished job's slot. more are queued jobs to start on runners
// of their own, when the lane's limit grew past what runs.
func (ls *lanes) next(key string, now time.Time) (h *heldJob, more []*heldJob) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.m[key]
	l.lastAnswer = now
	if ls.closed || len(l.queue) == 0 || l.running > l.limit.limit {
		l.running--
		if l.running == 0 && len(l.queue) == 0 {
			delete(ls.m, key)
			if ls.adaptive {
				ls.idle[key] = idleLimit{limit: l.limit, since: now}
			}
		}
		return nil, nil
	}
	h = l.pop()
	for l.running < l.limit.limit && len(l.queue) > 0 {
		l.running++
		more = append(more, l.pop())
	}
	return h, more
}

// forgetIdle drops the limits of lanes without work for limitMemory; it
// looks at most once per baseWindow.
func (ls *lanes) forgetIdle(now time.Time) {
	if !ls.adaptive {
		return // no lane keeps a limit
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if now.Sub(ls.lastSweep) < baseWindow {
		return
	}
	ls.lastSweep = now
	for key, was := range ls.idle {
		if now.Sub(was.since) >= limitMemory {
			delete(ls.idle, key)
		}
	}
}

// pop removes and returns the first queued job.
func (l *lane) pop() *heldJob {
	h := l.queue[0]
	l.queue[0] = nil
	l.queue = l.queue[1:]
	return h
}

// answered notes that a POST of lane key returned at now, after d, and
// whether it succeeded (2xx): the lane is not stuck, however long the
// bookkeeping after the POST takes, and its limit adapts to d. It returns
// the limit's change (-1, 0 or +1).
func (ls *lanes) answered(key string, now time.Time, d time.Duration, succeeded bool) int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.m[key]
	if l == nil {
		return 0
	}
	l.lastAnswer = now
	if !succeeded {
		return 0
	}
	return l.limit.observe(d, now)
}

// takeQueuedBefore removes and returns the queued jobs fetched before
// cutoff: waiting, those of lanes whose URL answers (they are parked; left
// queued unless parking), and stuck, those of lanes none of whose POSTs
// returned in the second before now (they fail fast: parked, they would
// come back to the same lane).
func (ls *lanes) takeQueuedBefore(cutoff, now time.Time, parking bool) (waiting, stuck []*heldJob) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for _, l := range ls.m {
		n := 0 // a lane's queue is in fetch order
		for n < len(l.queue) && l.queue[n].fetched.Before(cutoff) {
			n++
		}
		stuckLane := l.stuck(now)
		if n == 0 || (!stuckLane && !parking) {
			continue
		}
		if stuckLane {
			stuck = append(stuck, l.queue[:n]...)
		} else {
			waiting = append(waiting, l.queue[:n]...)
		}
		clear(l.queue[:n])
		l.queue = l.queue[n:]
	}
	return waiting, stuck
}

// close stops admitting and running jobs, and returns the queued ones.
func (ls *lanes) close() []*heldJob {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.closed = true
	var queued []*heldJob
	for key, l := range ls.m {
		queued = append(queued, l.queue...)
		l.queue = nil
		if l.running == 0 {
			delete(ls.m, key)
		}
	}
	return queued
}

// enqueue puts job on its URL's lane: it starts it when the lane has a free
// slot, queues it behind the lane's attempts, parks it when the lane's queue
// is full, or fails it fast when the lane's URL does not answer or its
// breaker is open. overflow says it came from an overflow message, stored
// when it was stored (zero unless tracing). It never blocks.
func (s *Service) enqueue(msg jobMsg, job *deliveryv1.DeliveryJob, overflow bool, stored time.Time) {
	now := time.Now()
	h := &heldJob{msg: msg, job: job, lane: laneKey(job), stored: stored, fetched: now, progressed: now, overflow: overflow}
	if s.breakers.open(h.lane) {
		// Fail the attempt now (recorded, retried after the cool-down)
		// rather than queue it behind the lane, where jobs that are going
		// to fail fast anyway would take the room of every other URL's jobs.
		s.goFailFast(msg, job, ErrCircuitOpen)
		return
	}
	// Held before it is admitted: once queued, the hold loop may take it.
	s.hold(h)
	switch s.lanes.admit(h, now) {
	case admitRun:
		s.runners.run(func() { s.runLane(h) })
	case admitQueued:
	case refuseStuck:
		s.release(h)
		s.metrics.queueFull.Inc()
		s.goFailFast(msg, job, ErrEndpointStuck)
	case refuseFull:
		s.release(h)
		s.metrics.queueFull.Inc()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.parkQueued(msg, job)
		}()
	case refuseClosed:
		s.release(h)
		_ = msg.Nak()
	}
}

// goFailFast runs failFast on a runner of its own.
func (s *Service) goFailFast(msg jobMsg, job *deliveryv1.DeliveryJob, err error) {
	s.runners.run(func() { s.failFast(msg, job, err) })
}

// runLane attempts h, then the lane's queued jobs, until the lane has none
// (or runs more than its limit allows).
func (s *Service) runLane(h *heldJob) {
	for h != nil {
		s.attemptOnLane(h)
		var more []*heldJob
		h, more = s.lanes.next(h.lane, time.Now())
		for _, m := range more {
			s.runners.run(func() { s.runLane(m) })
		}
	}
}
