package deliverer

import (
	"context"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
)

// Parking: a job leaves the stream for the retry store (Redis), which makes
// it durable, and its message is acknowledged. Two kinds of jobs are parked:
//
//   - a queued job that cannot run soon (its lane's queue is full, or it
//     waited past Config.HoldLimit): parkQueued stores the same attempt, due
//     after Config.QueueFullDelay, and the scheduler brings it back;
//   - an attempt in flight past Config.HoldLimit: parkAttempt stores an
//     entry that brings the attempt back only if this replica dies before
//     recording it, and the attempt goes on (the message is parkedMsg).
//
// Why no job holds its message for long: in a work-queue stream that drains
// often, a message held unacknowledged makes the file store keep every
// message block written since (each new block remembers the stream's last
// sequence with a tombstone, and a block holding a tombstone above the first
// unacknowledged message is kept), so one URL that never answers, its POSTs
// held for the whole timeout, would cost memory and CPU that every other URL
// shares (see docs/delivery.md).

// parkState lets holdLoop take an attempt in flight out of the stream.
type parkState struct {
	mu      sync.Mutex
	started bool   // the POST has started
	done    bool   // the POST is over: too late to park
	entry   string // the retry-store entry that holds the attempt, once parked
}

func (p *parkState) begin() {
	p.mu.Lock()
	p.started = true
	p.mu.Unlock()
}

// end marks the POST over (waiting for a park in progress) and returns the
// retry-store entry of a parked attempt, "" if it was not parked.
func (p *parkState) end() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = true
	return p.entry
}

// parkedMsg is the jobMsg of a parked attempt: its message is acknowledged
// already, and its retry-store entry stands in for it (a nak leaves the
// entry to bring the attempt back).
type parkedMsg struct{}

func (parkedMsg) Ack() error                       { return nil }
func (parkedMsg) Nak() error                       { return nil }
func (parkedMsg) NakWithDelay(time.Duration) error { return nil }
func (parkedMsg) InProgress() error                { return nil }

// holdLoop parks the jobs held longer than Config.HoldLimit: queued ones
// with parkQueued (or, behind a URL that does not answer, fails them fast),
// attempts in flight with parkAttempt.
func (s *Service) holdLoop() {
	limit := s.cfg.HoldLimit
	t := time.NewTicker(max(limit/4, 25*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-s.stopCtx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		cutoff := now.Add(-limit)
		parking := !s.parkingPaused(now)
		waiting, stuck := s.lanes.takeQueuedBefore(cutoff, now, parking)
		s.lanes.forgetIdle(now)
		for _, h := range waiting {
			s.metrics.parked.WithLabelValues("queued").Inc()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.parkQueued(h.msg, h.job)
				s.release(h)
			}()
		}
		for _, h := range stuck {
			// The lane's URL does not answer: fail the attempt as a job
			// arriving now would, instead of parking it to queue again.
			s.metrics.parked.WithLabelValues("stuck").Inc()
			s.release(h)
			s.goFailFast(h.msg, h.job, ErrEndpointStuck)
		}
		if !parking {
			continue
		}
		var wg sync.WaitGroup
		for _, h := range s.held.fetchedBefore(cutoff) {
			wg.Go(func() { s.parkAttempt(h) })
		}
		wg.Wait()
	}
}

// A store that Redis did not replicate in time (daemon.ErrNotReplicated:
// a failover, a replica resyncing) pauses parking for parkPause. Such a
// store leaves its entry on the primary, or an entry of the delivery that
// it kept, and the job's message comes back as well: both may then be
// attempted. While parking is paused, queued jobs stay in their lanes past
// the hold limit, a job that finds its lane full is nak'ed with the delay
// its parking would have had, and attempts in flight keep their messages;
// each such message comes back delivered again, so it is checked against
// the event log. Retries of failed attempts are stored as ever.
const parkPause = 2 * time.Second

func (s *Service) pauseParking() {
	s.parkPausedUntil.Store(time.Now().Add(parkPause).UnixNano())
}

func (s *Service) parkingPaused(now time.Time) bool {
	return now.UnixNano() < s.parkPausedUntil.Load()
}

// parkQueued parks a job that cannot run soon in the retry store — the same
// attempt, with job.deferrals counting the parkings — and acks it; it comes
// back after QueueFullDelay, growing with each parking. The backlog so waits
// in Redis, not in the consumer's ack-pending window, where it would hold
// back every other URL once that window filled.
func (s *Service) parkQueued(msg jobMsg, job *deliveryv1.DeliveryJob) {
	next := proto.Clone(job).(*deliveryv1.DeliveryJob)
	next.Deferrals++
	delay := jitter(s.cfg.QueueFullDelay*time.Duration(min(next.GetDeferrals(), 10)), 0.5)
	if s.parkingPaused(time.Now()) {
		_ = msg.NakWithDelay(delay)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.OpTimeout)
	defer cancel()
	if v, err := s.retries.storeEntry(ctx, next, time.Now().Add(delay)); err != nil {
		s.metrics.handlingErrors.WithLabelValues("store_deferral").Inc()
		_ = msg.NakWithDelay(backAfter(delay, s.notStored(next, v, err, false)))
		return
	}
	if delay < s.cfg.PollInterval {
		s.wakeScheduler()
	}
	if err := msg.Ack(); err != nil {
		s.log.Warn("ack parked job (it may be attempted twice)", "delivery", job.GetDeliveryId(), "err", err)
	}
}

// parkAttempt stores the attempt in flight of h in the retry store, due
// once its POST must be over (SendTimeout) plus time to record it, and
// acknowledges its message. The attempt then treats the entry as its
// message: the next attempt's retry replaces it, a final outcome removes it,
// and if nothing does (this replica died) the scheduler brings the attempt
// back.
func (s *Service) parkAttempt(h *heldJob) {
	p := &h.park
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started || p.done || p.entry != "" {
		return
	}
	next := proto.Clone(h.job).(*deliveryv1.DeliveryJob)
	next.Deferrals++ // a new Nats-Msg-Id when it is republished
	due := time.Now().Add(s.cfg.SendTimeout + 2*s.cfg.OpTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.OpTimeout)
	defer cancel()
	entry, err := s.retries.storeEntry(ctx, next, due)
	if err != nil {
		s.metrics.handlingErrors.WithLabelValues("park").Inc()
		s.notStored(next, entry, err, false)
		return // still held; tried again next tick
	}
	p.entry = entry
	s.metrics.parked.WithLabelValues("in_flight").Inc()
	if err := h.msg.Ack(); err != nil {
		s.metrics.handlingErrors.WithLabelValues("ack").Inc()
	}
}
