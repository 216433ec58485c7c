package expander

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/hubid"
	"github.com/hubhooks/hubhooks/pkg/turns"
)

// A flood larger than half the read-ahead does not make the reader wait:
// once the read-ahead is half full, a further event of a hub with
// more than OverflowAfter events queued is moved to the hub's events-overflow
// subject (readAhead.admit; moveToOverflow: a copy in
// HUBHOOKS_EVENTS_OVERFLOW, then the ack of the original), and so is every
// later event of that hub until this replica has read its copies back, so
// they do not overtake them. overflowLoop reads the copies back into the
// read-ahead only while it is less than half full, in turns across the
// shards (deficit round robin in events), as the deliverer does for
// delivery messages. A copy read back stands for its original (overflowMsg):
// the same subject, headers, stream sequence and time, so expanding it is
// expanding the original. Subjects and consumers: pkg/eventbus,
// eventsoverflow.go.

// overflowQuantum is how many events a shard with events may read back per
// turn; unused turns add up to 4 of them (pkg/turns).
const overflowQuantum = 64

// overflowIdle is how long a shard that had nothing waits before it is
// asked again, unless this replica moves an event first (another
// replica's moves are seen within this).
const overflowIdle = 250 * time.Millisecond

// maxMovesInFlight bounds the copies awaiting JetStream's ack: the reader
// waits beyond it.
const maxMovesInFlight = 1024

// movable reports whether hub can name an events-overflow subject. Events
// of other hubs are queued, and dead-lettered in turn.
func movable(hub string) bool { return hubid.Validate(hub) == nil }

// moveToOverflow copies msg, a live event of hub, to the hub's
// events-overflow subject and acks it once JetStream stored the copy; when
// the copy fails, msg is nak'ed with a delay and comes back. An expander
// dying in between leaves both: the copy of the same message again has the
// same Nats-Msg-Id and is dropped within the duplicate window, and a copy
// made of a message delivered again carries HeaderRecheck, so it is
// expanded as a redelivery (its fan-outs published alone, checked against
// the event log by the deliverer).
func (s *Service) moveToOverflow(q *readAhead, msg jetstream.Msg, hub string) {
	md, err := msg.Metadata()
	if err != nil {
		s.moveFailed(q, msg, hub, err)
		return
	}
	s.movesInFlight <- struct{}{}
	fut, err := s.js.PublishMsgAsync(eventbus.EventsOverflowCopyOf(hub, msg, md, md.NumDelivered > 1),
		jetstream.WithExpectStream(eventbus.StreamEventsOverflow))
	if err != nil {
		<-s.movesInFlight
		s.moveFailed(q, msg, hub, err)
		return
	}
	s.moves.Go(func() {
		defer func() { <-s.movesInFlight }()
		select {
		case ack := <-fut.Ok():
			q.movedOne(hub, true, ack.Duplicate, time.Now())
		case err := <-fut.Err():
			s.moveFailed(q, msg, hub, err)
			return
		case <-time.After(s.cfg.PublishTimeout):
			s.moveFailed(q, msg, hub, context.DeadlineExceeded)
			return
		}
		s.m.moved.Inc()
		s.wakeOverflow()
		if err := msg.Ack(); err != nil {
			s.cfg.Log.Warn("expander ack", "subject", msg.Subject(), "err", err)
		}
	})
}

func (s *Service) moveFailed(q *readAhead, msg jetstream.Msg, hub string, err error) {
	q.movedOne(hub, false, false, time.Now())
	s.m.moveErrors.Inc()
	s.cfg.Log.Warn("expander: move a domain event to its hub's overflow; it comes back", "hub_id", hub, "subject", msg.Subject(), "err", err)
	_ = msg.NakWithDelay(s.cfg.RetryDelay)
}

// wakeOverflow makes the overflow loop ask the shards now.
func (s *Service) wakeOverflow() {
	select {
	case s.overflowWake <- struct{}{}:
	default:
	}
}

// ensureOverflow ensures the events-overflow stream and the expander's
// consumer of each shard. The stream is a work queue: a consumer made
// again starts with what is left, so nothing of its place needs keeping.
func (s *Service) ensureOverflow(ctx context.Context) ([]jetstream.Consumer, error) {
	if err := eventbus.Ensure(ctx, s.js, eventbus.EventsOverflowStreamConfig(s.cfg.StreamOptions)); err != nil {
		return nil, err
	}
	cfgs := make([]jetstream.ConsumerConfig, eventbus.OverflowShards)
	for shard := range cfgs {
		cfgs[shard] = eventbus.ExpanderOverflowConsumerConfig(shard, s.cfg.AckWait, s.cfg.MaxAckPending)
	}
	return eventbus.EnsureConsumers(ctx, s.js, eventbus.StreamEventsOverflow, cfgs...)
}

// overflowLoop reads events back from the overflow shards while the
// read-ahead has overflow room, until ctx ends, in turns (pkg/turns): each
// round, every shard with events may read back about overflowQuantum of
// them. Room is in events and in bytes, the bytes counted as events of the
// running average size. A shard whose fetch fails is made again (its
// consumer may have been deleted) before it is asked again.
func (s *Service) overflowLoop(ctx context.Context, q *readAhead, consumers []jetstream.Consumer) {
	avgSize := 1024 // bytes per event read back, for the byte room
	turns.Run(ctx, turns.Config{
		Shards: len(consumers), Quantum: overflowQuantum, Idle: overflowIdle,
		Room: func() int {
			events, bytes := q.overflowRoom()
			if events <= 0 || bytes <= 0 {
				return 0
			}
			return min(events, max(1, bytes/avgSize))
		},
		Take: func(shard, count int) (int, bool, error) {
			asked := time.Now()
			n, bytes, empty, err := s.readBack(ctx, q, consumers[shard], count)
			if n > 0 {
				avgSize = max(1, (3*avgSize+bytes/n)/4)
			}
			if err != nil {
				s.reensureShard(ctx, &consumers[shard], shard)
				return n, empty, err
			}
			if empty {
				q.shardEmpty(shard, asked)
			}
			return n, empty, nil
		},
		Space: q.space,
		Wake:  s.overflowWake,
	})
}

// reensureShard makes shard's consumer, *cons, again if it is gone.
func (s *Service) reensureShard(ctx context.Context, cons *jetstream.Consumer, shard int) {
	if err := eventbus.CheckConsumer(ctx, s.js, eventbus.StreamEventsOverflow, eventbus.ExpanderOverflowConsumerName(shard)); err == nil || ctx.Err() != nil {
		return
	}
	s.cfg.Log.Warn("expander: the consumer of an events-overflow shard is gone; made again", "stream", eventbus.StreamEventsOverflow,
		"consumer", eventbus.ExpanderOverflowConsumerName(shard))
	if err := eventbus.Ensure(ctx, s.js, eventbus.EventsOverflowStreamConfig(s.cfg.StreamOptions)); err != nil {
		return
	}
	if c, err := eventbus.EnsureConsumer(ctx, s.js, eventbus.StreamEventsOverflow,
		eventbus.ExpanderOverflowConsumerConfig(shard, s.cfg.AckWait, s.cfg.MaxAckPending)); err == nil {
		*cons = c
	}
}

// readBack fetches up to count events of one shard, without waiting, into
// the read-ahead, and returns how many and their bytes, and whether the
// shard is empty now.
func (s *Service) readBack(ctx context.Context, q *readAhead, cons jetstream.Consumer, count int) (n, bytes int, empty bool, err error) {
	batch, err := cons.FetchNoWait(count)
	if err != nil {
		if ctx.Err() == nil {
			s.m.moveErrors.Inc()
			s.cfg.Log.Warn("expander: fetch events from overflow", "err", err)
		}
		return 0, 0, true, err
	}
	empty = true
	for msg := range batch.Messages() {
		p := s.read(overflowMsgOf(msg))
		p.overflow = true
		md, err := msg.Metadata()
		p.first = err == nil && md.NumDelivered == 1
		empty = err == nil && md.NumPending == 0
		s.m.readBack.Inc()
		s.m.readAhead.Inc()
		if !q.putBack(p.hub(), p) {
			s.m.readAhead.Dec()
			_ = msg.Nak()
			continue
		}
		n++
		bytes += p.size
	}
	if err := batch.Error(); err != nil && ctx.Err() == nil {
		s.m.moveErrors.Inc()
	}
	return n, bytes, empty, nil
}

// overflowMsg is an events-overflow copy seen as its original: the
// original's subject, headers and metadata (stream sequence and time in
// HUBHOOKS_EVENTS; delivered again when the copy or the original was), so
// it is validated, expanded, remembered as seen and dead-lettered as the
// original would be. Acks, naks and in-progress go to the copy.
type overflowMsg struct {
	jetstream.Msg
	orig eventbus.EventsOverflowOriginal
	md   *jetstream.MsgMetadata
}

// overflowMsgOf is msg as its original; a copy that does not say what its
// original was (no expander made it) is left as it is, to be dead-lettered.
func overflowMsgOf(msg jetstream.Msg) jetstream.Msg {
	orig, ok := eventbus.OriginalOfEventsOverflow(msg.Headers())
	if !ok {
		return msg
	}
	m := &overflowMsg{Msg: msg, orig: orig}
	if md, err := msg.Metadata(); err == nil {
		c := *md
		c.Stream = eventbus.StreamEvents
		c.Sequence.Stream = orig.Seq
		c.Timestamp = orig.Stored
		if orig.Again && c.NumDelivered < 2 {
			c.NumDelivered = 2
		}
		m.md = &c
	}
	return m
}

func (m *overflowMsg) Subject() string      { return m.orig.Subject }
func (m *overflowMsg) Headers() nats.Header { return m.orig.Header }

func (m *overflowMsg) Metadata() (*jetstream.MsgMetadata, error) {
	if m.md == nil {
		return m.Msg.Metadata()
	}
	return m.md, nil
}
