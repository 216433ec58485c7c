package expander

import (
	"context"
	"sync"
	"sync/atomic"
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

// Events are moved in batches (eventbus.EventsOverflowBatchOf): one stored
// message, fetched and acknowledged once, for up to moveBatchMax events
// of a hub, so that moving keeps up with a flood's publisher. A batch
// holds what the reader handed over while the previous copies were being
// published: a lone event is not held back for company.
const (
	moveBatchMax   = 64
	moveBatchBytes = 256 << 10
	// moveQueue bounds the events handed to the mover and not yet
	// published; the reader waits beyond it.
	moveQueue = 1024
	// maxMovesInFlight bounds the copies (batches) awaiting JetStream's
	// ack; the mover waits beyond it.
	maxMovesInFlight = 8
)

// movable reports whether p, an event of hub, may be moved: its hub can
// name an events-overflow subject, and its copy fits in a message of the
// server (maxMove). Other events are queued, and dead-lettered in turn.
func movable(hub string, p *pending, maxMove int) bool {
	return p.size <= maxMove && hubid.Validate(hub) == nil
}

// moveReq is a live event of hub the reader hands to the mover.
type moveReq struct {
	msg jetstream.Msg
	hub string
}

// moveLoop copies the events handed over on in to their hubs'
// events-overflow subjects, a batch per hub of what is waiting, until in
// is closed and drained.
func (s *Service) moveLoop(q *readAhead, in <-chan moveReq, done chan<- struct{}) {
	defer close(done)
	byHub := map[string][]moveReq{}
	var hubs []string
	add := func(r moveReq) {
		if len(byHub[r.hub]) == 0 {
			hubs = append(hubs, r.hub)
		}
		byHub[r.hub] = append(byHub[r.hub], r)
	}
	for r := range in {
		add(r)
	more:
		for range moveQueue {
			select {
			case r, ok := <-in:
				if !ok {
					break more
				}
				add(r)
			default:
				break more
			}
		}
		for _, hub := range hubs {
			reqs := byHub[hub]
			for len(reqs) > 0 {
				n, size := 0, 0
				for n < len(reqs) && n < moveBatchMax {
					size += copySize(reqs[n].msg)
					if n > 0 && size > moveBatchBytes {
						break
					}
					n++
				}
				s.moveToOverflow(q, hub, reqs[:n])
				reqs = reqs[n:]
			}
			delete(byHub, hub)
		}
		hubs = hubs[:0]
	}
}

// copySize is about what msg takes in a batch: its body and headers.
func copySize(msg jetstream.Msg) int {
	n := len(msg.Subject()) + len(msg.Data())
	for k, vs := range msg.Headers() {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// moveToOverflow copies reqs, live events of hub in stream order, to the
// hub's events-overflow subject (one event alone, several as a batch) and
// acks each once JetStream stored the copy; when the copy fails, they are
// nak'ed with a delay and come back. An expander dying in between leaves
// both: a copy of the same events again has the same Nats-Msg-Id and is
// dropped within the duplicate window, and a copy made of an event
// delivered again says so (HeaderRecheck, MovedEvent.Again), so it is
// expanded as a redelivery (its fan-outs published alone, checked against
// the event log by the deliverer).
func (s *Service) moveToOverflow(q *readAhead, hub string, reqs []moveReq) {
	msgs := make([]jetstream.Msg, 0, len(reqs))
	mds := make([]*jetstream.MsgMetadata, 0, len(reqs))
	again := make([]bool, 0, len(reqs))
	for _, r := range reqs {
		md, err := r.msg.Metadata()
		if err != nil {
			s.moveFailed(q, r.msg, hub, err)
			continue
		}
		msgs, mds, again = append(msgs, r.msg), append(mds, md), append(again, md.NumDelivered > 1)
	}
	if len(msgs) == 0 {
		return
	}
	var cp *nats.Msg
	if len(msgs) == 1 {
		cp = eventbus.EventsOverflowCopyOf(hub, msgs[0], mds[0], again[0])
	} else {
		cp = eventbus.EventsOverflowBatchOf(hub, msgs, mds, again)
	}
	failed := func(err error) {
		for _, m := range msgs {
			s.moveFailed(q, m, hub, err)
		}
	}
	s.movesInFlight <- struct{}{}
	fut, err := s.js.PublishMsgAsync(cp, jetstream.WithExpectStream(eventbus.StreamEventsOverflow))
	if err != nil {
		<-s.movesInFlight
		failed(err)
		return
	}
	s.moves.Go(func() {
		defer func() { <-s.movesInFlight }()
		select {
		case ack := <-fut.Ok():
			now := time.Now()
			for range msgs {
				q.movedOne(hub, true, ack.Duplicate, now)
			}
		case err := <-fut.Err():
			failed(err)
			return
		case <-time.After(s.cfg.PublishTimeout):
			failed(context.DeadlineExceeded)
			return
		}
		s.m.moved.Add(float64(len(msgs)))
		s.wakeOverflow()
		for _, m := range msgs {
			if err := m.Ack(); err != nil {
				s.cfg.Log.Warn("expander ack", "subject", m.Subject(), "err", err)
			}
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
// running average size; a fetch asks for as many messages as hold that
// many events at the running average per message (a batch holds up to
// moveBatchMax). A shard whose fetch fails is made again (its consumer may
// have been deleted) before it is asked again.
func (s *Service) overflowLoop(ctx context.Context, q *readAhead, consumers []jetstream.Consumer) {
	avgSize := 1024      // bytes per event read back, for the byte room
	perMsg := float64(1) // events per message read back
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
			msgs := max(1, int(float64(count)/perMsg))
			n, got, bytes, empty, err := s.readBack(ctx, q, consumers[shard], msgs)
			if n > 0 {
				avgSize = max(1, (3*avgSize+bytes/n)/4)
				perMsg = max(1, (3*perMsg+float64(n)/float64(got))/4)
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

// readBack fetches up to count messages of one shard, without waiting,
// and puts their events into the read-ahead. It returns how many events
// and their bytes, how many messages, and whether the shard is empty now.
func (s *Service) readBack(ctx context.Context, q *readAhead, cons jetstream.Consumer, count int) (n, msgs, bytes int, empty bool, err error) {
	batch, err := cons.FetchNoWait(count)
	if err != nil {
		if ctx.Err() == nil {
			s.m.moveErrors.Inc()
			s.cfg.Log.Warn("expander: fetch events from overflow", "err", err)
		}
		return 0, 0, 0, true, err
	}
	empty = true
	for msg := range batch.Messages() {
		msgs++
		md, err := msg.Metadata()
		first := err == nil && md.NumDelivered == 1
		empty = err == nil && md.NumPending == 0
		for _, m := range movedEventsOf(msg, md) {
			p := s.read(m)
			p.overflow, p.first = true, first
			s.m.readBack.Inc()
			s.m.readAhead.Inc()
			if !q.putBack(p.hub(), p) {
				s.m.readAhead.Dec()
				_ = m.Nak()
				continue
			}
			n++
			bytes += p.size
		}
	}
	if err := batch.Error(); err != nil && ctx.Err() == nil {
		s.m.moveErrors.Inc()
	}
	return n, msgs, bytes, empty, nil
}

// movedEventsOf is the events of msg, an events-overflow message (md its
// metadata, nil when unknown), each seen as its original: a batch's events
// share msg (movedBatch), a lone copy is overflowMsgOf. A batch that
// cannot be decoded is left as it is, to be dead-lettered.
func movedEventsOf(msg jetstream.Msg, md *jetstream.MsgMetadata) []jetstream.Msg {
	if !eventbus.IsEventsOverflowBatch(msg.Headers()) {
		return []jetstream.Msg{overflowMsgOf(msg)}
	}
	events, err := eventbus.EventsOverflowBatch(msg.Data())
	if err != nil || len(events) == 0 || md == nil {
		return []jetstream.Msg{msg}
	}
	b := &movedBatch{msg: msg, left: len(events)}
	out := make([]jetstream.Msg, len(events))
	for i, ev := range events {
		out[i] = &movedShare{Msg: msg, b: b, ev: ev, md: asOriginal(md, ev.EventsOverflowOriginal)}
	}
	return out
}

// movedBatch is an events-overflow batch being expanded: the message is
// acknowledged once each of its events has settled, and handed back (the
// longest delay asked) when any asked to be tried again; its events then
// come back delivered again, expanded as redeliveries.
type movedBatch struct {
	msg jetstream.Msg

	mu       sync.Mutex
	left     int
	again    bool
	delay    time.Duration
	progress time.Time // last InProgress sent for msg
}

func (b *movedBatch) settle(again bool, delay time.Duration) error {
	b.mu.Lock()
	b.left--
	b.again = b.again || again
	b.delay = max(b.delay, delay)
	left, again, delay := b.left, b.again, b.delay
	b.mu.Unlock()
	switch {
	case left > 0:
		return nil
	case !again:
		return b.msg.Ack()
	case delay > 0:
		return b.msg.NakWithDelay(delay)
	}
	return b.msg.Nak()
}

// inProgress reports msg in progress once for all its events: they wait
// in the read-ahead together, and the heartbeat touches them in one tick.
func (b *movedBatch) inProgress(every time.Duration) error {
	now := time.Now()
	b.mu.Lock()
	if now.Sub(b.progress) < every {
		b.mu.Unlock()
		return nil
	}
	b.progress = now
	b.mu.Unlock()
	return b.msg.InProgress()
}

// movedShare is one event of a movedBatch seen as its original (as
// overflowMsg is for a lone copy); settling it settles its share of the
// batch, once.
type movedShare struct {
	jetstream.Msg
	b       *movedBatch
	ev      eventbus.MovedEvent
	md      *jetstream.MsgMetadata
	settled atomic.Bool
}

func (m *movedShare) Subject() string                           { return m.ev.Subject }
func (m *movedShare) Headers() nats.Header                      { return m.ev.Header }
func (m *movedShare) Data() []byte                              { return m.ev.Data }
func (m *movedShare) Metadata() (*jetstream.MsgMetadata, error) { return m.md, nil }
func (m *movedShare) Ack() error                                { return m.settle(false, 0) }
func (m *movedShare) DoubleAck(context.Context) error           { return m.settle(false, 0) }
func (m *movedShare) Term() error                               { return m.settle(false, 0) }
func (m *movedShare) TermWithReason(string) error               { return m.settle(false, 0) }
func (m *movedShare) Nak() error                                { return m.settle(true, 0) }
func (m *movedShare) NakWithDelay(d time.Duration) error        { return m.settle(true, d) }
func (m *movedShare) InProgress() error                         { return m.b.inProgress(time.Second) }

func (m *movedShare) settle(again bool, delay time.Duration) error {
	if !m.settled.CompareAndSwap(false, true) {
		return nil
	}
	return m.b.settle(again, delay)
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
		m.md = asOriginal(md, orig)
	}
	return m
}

// asOriginal is md, the metadata of an events-overflow copy, as that of
// the original orig in HUBHOOKS_EVENTS: its stream sequence and time, and
// delivered again when the copy or the original was.
func asOriginal(md *jetstream.MsgMetadata, orig eventbus.EventsOverflowOriginal) *jetstream.MsgMetadata {
	c := *md
	c.Stream = eventbus.StreamEvents
	c.Sequence.Stream = orig.Seq
	c.Timestamp = orig.Stored
	if orig.Again && c.NumDelivered < 2 {
		c.NumDelivered = 2
	}
	return &c
}

func (m *overflowMsg) Subject() string      { return m.orig.Subject }
func (m *overflowMsg) Headers() nats.Header { return m.orig.Header }

func (m *overflowMsg) Metadata() (*jetstream.MsgMetadata, error) {
	if m.md == nil {
		return m.Msg.Metadata()
	}
	return m.md, nil
}
