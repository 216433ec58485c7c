package operations

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
)

// backlogCheck is how often the pacer asks JetStream for the deliverer's
// backlog (a consumer info request).
const backlogCheck = 100 * time.Millisecond

// pacer spaces out the deliveries of one bulk operation of a hub: at most
// rate a second, and none while the hub's overflow shard has more than
// maxBacklog messages waiting. Bulk work goes to that shard (bulkMsg), which
// the deliverer serves only with the room live traffic leaves; the backlog
// bound is how much a burst of live traffic moved to the same shard (the
// hub's own, or another hub's of the shard) may find in front of it. It is
// used by one goroutine.
type pacer struct {
	js         jetstream.JetStream
	consumer   string // the shard's consumer
	limiter    *rate.Limiter
	maxBacklog int
	paused     func(time.Duration)

	checked time.Time
	backlog int
}

func (s *Service) newPacer(hub string) *pacer {
	burst := max(1, int(s.cfg.BulkRate/10))
	return &pacer{
		js: s.js, consumer: eventbus.OverflowConsumerName(eventbus.OverflowShard(hub)), limiter: rate.NewLimiter(rate.Limit(s.cfg.BulkRate), burst), maxBacklog: s.cfg.BulkMaxBacklog,
		paused: func(d time.Duration) { s.m.paused.Add(d.Seconds()) },
	}
}

// wait returns when n more deliveries may be published, or ctx's error.
func (p *pacer) wait(ctx context.Context, n int) error {
	for n > 0 {
		k := min(n, p.limiter.Burst())
		if err := p.limiter.WaitN(ctx, k); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		n -= k
	}
	start, waited := time.Now(), false
	for {
		if time.Since(p.checked) >= backlogCheck {
			b, err := p.waiting(ctx)
			if err != nil && ctx.Err() != nil {
				return ctx.Err()
			}
			// An unknown backlog (JetStream busy) counts as full: wait
			// and ask again rather than push blindly.
			if err != nil {
				b = p.maxBacklog + 1
			}
			p.backlog, p.checked = b, time.Now()
		}
		if p.backlog <= p.maxBacklog {
			if waited {
				p.paused(time.Since(start))
			}
			// Count what this caller adds until the next check.
			p.backlog++
			return nil
		}
		waited = true
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backlogCheck):
		}
	}
}

// waiting is how many messages of the shard the deliverer has not taken
// yet: its consumer's pending count, or (no consumer yet) the stream's
// messages.
func (p *pacer) waiting(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := p.js.Consumer(ctx, eventbus.StreamDeliveries, p.consumer)
	if err == nil {
		info, err := c.Info(ctx)
		if err != nil {
			return 0, err
		}
		return int(info.NumPending), nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, err
	}
	st, err := p.js.Stream(ctx, eventbus.StreamDeliveries)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return int(info.State.Msgs), nil
}

// bulkMsg puts m, a delivery message of hub made by a recovery or a
// replay, on the hub's overflow subject: the deliverer takes it only with
// the room live traffic leaves, so live deliveries of every hub, this one
// included, go first (docs/delivery.md, "Fairness across hubs").
func bulkMsg(m *nats.Msg, hub string) *nats.Msg {
	m.Subject = eventbus.OverflowDeliverySubject(hub)
	return m
}
