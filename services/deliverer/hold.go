package deliverer

import (
	"context"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
)

// A job holds its JetStream message unacknowledged from its fetch until it
// is settled. In a work-queue stream that drains often, a message held for
// long makes the file store keep every message block written since (each
// new block remembers the stream's last sequence with a tombstone, and a
// block holding a tombstone above the first unacknowledged message is kept);
// one URL that never answers, with its POSTs held for the whole timeout,
// grew hubd to 1.3 GiB and slowed every other URL. So no job holds its
// message for more than Config.HoldLimit: holdLoop moves older ones to the
// retry store (Redis), which makes them durable, and acknowledges them.

// parkState lets holdLoop take an attempt in flight out of the stream.
type parkState struct {
	mu      sync.Mutex
	started bool   // the POST has started
	done    bool   // the POST is over: too late to park
	value   string // the retry-store entry that holds the attempt, once parked
}

func (p *parkState) begin() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.started = true
	p.mu.Unlock()
}

// end marks the POST over (waiting for a park in progress) and returns the
// retry-store entry of a parked attempt, "" if it was not parked.
func (p *parkState) end() string {
	if p == nil {
		return ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = true
	return p.value
}

// settled is the settler of a parked attempt: its message is acknowledged
// already, and its retry-store entry stands in for it (a nak leaves the
// entry to bring the attempt back).
type settled struct{}

func (settled) Ack() error                       { return nil }
func (settled) Nak() error                       { return nil }
func (settled) NakWithDelay(time.Duration) error { return nil }
func (settled) InProgress() error                { return nil }

// holdLoop parks the jobs held longer than Config.HoldLimit: queued ones go
// to the retry store like the jobs of a full lane (deferJob), attempts in
// flight go on with an entry that brings them back if this replica dies
// before they are recorded (parkAttempt).
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
		var queued, flying []*heldJob
		s.mu.Lock()
		if s.stopping() {
			s.mu.Unlock()
			return
		}
		for _, l := range s.lanes {
			n := 0 // a lane's queue is in fetch order
			for n < len(l.queue) && now.Sub(l.queue[n].fetched) > limit {
				n++
			}
			if n > 0 {
				queued = append(queued, l.queue[:n]...)
				clear(l.queue[:n])
				l.queue = l.queue[n:]
			}
		}
		for h := range s.held {
			if now.Sub(h.fetched) > limit {
				flying = append(flying, h)
			}
		}
		s.mu.Unlock()
		for _, h := range queued {
			s.metrics.parked.WithLabelValues("queued").Inc()
			s.wg.Add(1)
			go func() {
				s.deferJob(h.msg, h.job)
				s.release(h)
			}()
		}
		var wg sync.WaitGroup
		for _, h := range flying {
			wg.Go(func() { s.parkAttempt(h) })
		}
		wg.Wait()
	}
}

// parkAttempt stores the attempt in flight of h in the retry store, due
// once its POST must be over (SendTimeout) plus time to record it, and
// acknowledges its message. handleJob then treats the entry as the job:
// the next attempt's retry replaces it, a final outcome removes it, and if
// nothing does (this replica died) the scheduler brings the attempt back.
func (s *Service) parkAttempt(h *heldJob) {
	p := &h.park
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started || p.done || p.value != "" {
		return
	}
	next := proto.Clone(h.job).(*deliveryv1.DeliveryJob)
	next.Deferrals++ // a new Nats-Msg-Id when it is republished
	due := time.Now().Add(s.cfg.SendTimeout + 2*s.cfg.OpTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.OpTimeout)
	defer cancel()
	v, err := s.retries.storeValue(ctx, next, due)
	if err != nil {
		s.metrics.handlingErrors.WithLabelValues("park").Inc()
		return // still held; tried again next tick
	}
	p.value = v
	s.metrics.parked.WithLabelValues("in_flight").Inc()
	if err := h.msg.Ack(); err != nil {
		s.metrics.handlingErrors.WithLabelValues("ack").Inc()
	}
}
