package deliverer

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
)

// jobMsg is the JetStream message a job came in, as the job settles it:
// the message itself (a jetstream.Msg), the job's share of a fan-out
// message (fanoutShare), or nothing left to settle (parkedMsg).
type jobMsg interface {
	Ack() error
	Nak() error
	NakWithDelay(delay time.Duration) error
	InProgress() error
}

// fanout is one message of several jobs being delivered: a DeliveryFanout
// (one webhook event for several URLs) or a batch of them (the webhook
// events of several domain events of one hub). The message is acknowledged
// once every target has settled. A target that asks to be tried again (a
// nak: an infrastructure error, a full shutdown queue) is first republished
// as a job of its own (republish), so the targets already done are not
// delivered again; only when that fails is the whole message handed back,
// and its done targets are delivered again (same webhook-id,
// at-least-once).
type fanout struct {
	s   *Service
	msg jetstream.Msg
	// check is what mayBeDone said of msg.
	check doneCheck

	mu       sync.Mutex
	left     int
	again    []*deliveryv1.DeliveryJob
	delay    time.Duration
	progress time.Time // last InProgress sent for msg
}

// fanoutShare is one target's handle on its fanout: the jobMsg of the
// target's job.
type fanoutShare struct {
	f   *fanout
	job *deliveryv1.DeliveryJob
	// settled is set by the share's first Ack or Nak; later ones are no-ops.
	settled atomic.Bool
}

func (p *fanoutShare) Ack() error                         { p.settle(false, 0); return nil }
func (p *fanoutShare) Nak() error                         { p.settle(true, 0); return nil }
func (p *fanoutShare) NakWithDelay(d time.Duration) error { p.settle(true, d); return nil }
func (p *fanoutShare) InProgress() error                  { return p.f.inProgress() }

// inProgress tells JetStream the message is being worked on, once for all
// its targets: shares held together are touched in the same heartbeat tick,
// and one call per message is enough.
func (f *fanout) inProgress() error {
	now := time.Now()
	f.mu.Lock()
	if now.Sub(f.progress) < f.s.cfg.AckWait/4 {
		f.mu.Unlock()
		return nil
	}
	f.progress = now
	f.mu.Unlock()
	return f.msg.InProgress()
}

func (p *fanoutShare) settle(again bool, delay time.Duration) {
	if !p.settled.CompareAndSwap(false, true) {
		return
	}
	f := p.f
	f.mu.Lock()
	if again {
		f.again = append(f.again, p.job)
		f.delay = max(f.delay, delay)
	}
	f.left--
	last := f.left == 0
	f.mu.Unlock()
	if last {
		f.finish()
	}
}

// finish acknowledges the message, after republishing the targets to try
// again; it naks the whole message when they cannot be republished.
func (f *fanout) finish() {
	s := f.s
	if len(f.again) > 0 {
		if err := f.republish(); err != nil {
			s.metrics.handlingErrors.WithLabelValues("republish_target").Inc()
			s.log.Warn("republish fan-out targets to retry; the whole event is retried (done targets delivered again)",
				"hub", f.again[0].GetHubId(), "event", f.again[0].GetWebhookEventId(), "targets", len(f.again), "err", err)
			_ = f.msg.NakWithDelay(f.delay) // a zero delay is a plain nak
			return
		}
	}
	if err := f.msg.Ack(); err != nil {
		s.metrics.handlingErrors.WithLabelValues("ack").Inc()
		s.log.Warn("ack delivery fan-out (its targets may be delivered again)", "err", err)
	}
}

// republishTries is how many times republish publishes a job that got no
// ack.
const republishTries = 3

// republish publishes each target to try again as a job of its own (its
// Nats-Msg-Id de-duplicates a second republish after a crash). When the
// message may be done, each job carries the message's HeaderRecheck, or
// its check's mark (recheckMark), as an overflow copy does: an earlier
// attempt of the target may be in flight or recorded, and the job is
// checked against the event log before it is attempted again.
//
// A job whose publish gets no ack (a timeout, a leader election) may have
// been stored: handing the whole message back then could deliver the
// target twice (the stored job and the message's copy). So the jobs not
// acked are published again, the same messages, up to republishTries
// times; one stored already is acked as a duplicate.
func (f *fanout) republish() error {
	recheck := f.msg.Headers().Get(eventbus.HeaderRecheck)
	if recheck == "" {
		recheck = f.check.recheckMark()
	}
	msgs := make([]*nats.Msg, 0, len(f.again))
	for _, job := range f.again {
		m, err := eventbus.NewJobMsg(job)
		if err != nil {
			return err
		}
		if recheck != "" {
			m.Header.Set(eventbus.HeaderRecheck, recheck)
		}
		msgs = append(msgs, m)
	}
	for try := 1; ; try++ {
		// Each try has a share of OpTimeout and one failing sooner waits its
		// share out: the tries span OpTimeout (an election's few seconds),
		// well within the duplicate window and, with InProgress before
		// each retry, the ack wait.
		ctx, cancel := context.WithTimeout(context.Background(), f.s.cfg.OpTimeout/republishTries)
		var err error
		msgs, err = f.publishJobs(ctx, msgs)
		if err == nil || try == republishTries {
			cancel()
			return err
		}
		<-ctx.Done()
		cancel()
		_ = f.msg.InProgress()
	}
}

// publishJobs publishes msgs and returns those not acked before ctx ends,
// with the last error.
func (f *fanout) publishJobs(ctx context.Context, msgs []*nats.Msg) ([]*nats.Msg, error) {
	var failed []*nats.Msg
	var last error
	futs := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		fut, err := f.s.js.PublishMsgAsync(m, jetstream.WithExpectStream(eventbus.StreamDeliveries))
		if err != nil {
			failed, last = append(failed, m), err
			continue
		}
		futs[i] = fut
	}
	for i, fut := range futs {
		if fut == nil {
			continue
		}
		select {
		case <-fut.Ok():
		case err := <-fut.Err():
			failed, last = append(failed, msgs[i]), err
		case <-ctx.Done():
			failed, last = append(failed, msgs[i]), ctx.Err()
		}
	}
	return failed, last
}
