package expander

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
)

// readAhead holds the domain events taken from the stream ahead of the
// workers, one FIFO queue per hub, and hands them out round-robin across the
// hubs that have events queued. The stream is one queue for every hub, so a
// hub that publishes 20,000 events at once puts them all in front of the
// next hub's event; read ahead of the workers, that event waits behind at
// most one event of each other hub, not behind the flood.
//
// It holds at most maxEvents events and maxBytes bytes (one event alone may
// be larger). Its first half is for every hub, its second half for the hubs
// without a backlog: once it is half full, an event of a hub with more than
// quietMax events queued is not queued but moved to the hub's events-overflow
// subject (admit says so), and so is every further event of the hub until
// the copies this replica made are read back (overflow.go). Overflow events
// are read back only into the first half (overflowRoom). So the reader
// never waits for a flood, and a queue of live events of a flooding hub
// stays within half of MaxAckPending, under the consumer's limit. Only
// when many hubs each queue at most quietMax events can it fill up: put
// then waits, and the consumer stops pulling.
//
// Events are unacknowledged while they wait, so their time here counts
// against the consumer's ack wait (see stale).
type readAhead struct {
	maxEvents int
	maxBytes  int

	// quietMax is the most events a hub may have queued for takeQuiet to
	// hand them out (Config.OverflowAfter): a hub with more floods, and is
	// moved to overflow past half the read-ahead.
	quietMax int

	mu       sync.Mutex
	notEmpty *sync.Cond
	notFull  *sync.Cond
	// quiet is signalled when an event of a hub that does not flood is
	// queued, for the workers reserved for such hubs (takeQuiet).
	quiet  *sync.Cond
	hubs   map[string]*hubQueue
	ring   []*hubQueue // the hubs with events queued, in turn order
	next   int         // index in ring of the hub whose turn is next
	events int
	bytes  int
	closed bool
	// moved are the hubs whose events this replica moves to overflow.
	moved map[string]*movedHub
	// space is signalled when a take leaves overflow room.
	space chan struct{}
}

// movedHub is what a replica knows of a hub's events it moved to overflow.
type movedHub struct {
	// unread is the copies made (or being made) and not read back by this
	// replica; while it is above zero, the hub's events are moved.
	unread int
	// inFlight is the copies not yet acknowledged by JetStream.
	inFlight int
	// stored is when JetStream acknowledged the last copy.
	stored time.Time
}

// hubQueue is one hub's events, oldest first.
type hubQueue struct {
	hub    string
	events []*pending
}

// pending is a domain event read from the stream and not yet handled.
type pending struct {
	msg   jetstream.Msg
	hubID string
	// ev is the decoded event once decoded, nil when decoding failed (err
	// says why; the worker dead-letters it).
	ev   *eventsv1.DomainEvent
	err  error
	size int
	// readAt is when the event was read; touched, when it was read or last
	// reported in progress.
	readAt, touched time.Time
	// behind is how many events of the same hub were queued behind this
	// one when it was taken: the hub's backlog in the expander.
	behind int
	// overflow: the event was read back from its hub's events-overflow
	// subject (msg is an overflowMsg); first is false when that copy was
	// delivered before.
	overflow, first bool
}

func newReadAhead(maxEvents, maxBytes, quietMax int) *readAhead {
	q := &readAhead{maxEvents: maxEvents, maxBytes: maxBytes, quietMax: quietMax, hubs: map[string]*hubQueue{},
		moved: map[string]*movedHub{}, space: make(chan struct{}, 1)}
	q.notEmpty = sync.NewCond(&q.mu)
	q.notFull = sync.NewCond(&q.mu)
	q.quiet = sync.NewCond(&q.mu)
	return q
}

// Verdicts of admit.
type verdict int

const (
	admitQueued verdict = iota // in the read-ahead
	admitMove                  // to be moved to its hub's events-overflow subject
	admitClosed                // close was called: hand it back
)

// admit queues p, a live event of hub, or says to move it to the hub's
// events-overflow subject (see readAhead; movable is false for an event
// whose hub cannot name a subject: it is queued). A move is counted as
// unread and in flight until moved reports how it went. It waits while
// the read-ahead is full and p is to be queued.
func (q *readAhead) admit(hub string, p *pending, movable bool) verdict {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		if q.closed {
			return admitClosed
		}
		if movable && q.moves(hub) {
			m := q.moved[hub]
			if m == nil {
				m = &movedHub{}
				q.moved[hub] = m
			}
			m.unread++
			m.inFlight++
			return admitMove
		}
		if q.events == 0 || (q.events < q.maxEvents && q.bytes+p.size <= q.maxBytes) {
			q.queue(hub, p)
			return admitQueued
		}
		q.notFull.Wait()
	}
}

// moves is the move decision for the next live event of hub: yes while
// the hub has copies this replica has not read back (so its new events do
// not overtake them), and when the read-ahead is half full (events or
// bytes) and more than quietMax of the hub's events wait in it.
func (q *readAhead) moves(hub string) bool {
	if m := q.moved[hub]; m != nil && m.unread > 0 {
		return true
	}
	h := q.hubs[hub]
	return h != nil && len(h.events) > q.quietMax && (2*q.events >= q.maxEvents || 2*q.bytes >= q.maxBytes)
}

// movedOne reports how the copy of one of hub's events went: stored (dup:
// JetStream had it already, from an earlier copy of the same event), or
// not stored (the original comes back).
func (q *readAhead) movedOne(hub string, stored, dup bool, now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	m := q.moved[hub]
	if m == nil {
		return
	}
	m.inFlight--
	if stored {
		m.stored = now
	}
	if !stored || dup {
		// Nothing of this copy to read back.
		m.unread = max(m.unread-1, 0)
	}
	q.forget(hub, m)
}

// forget drops m, hub's record, once it has nothing unread or in flight.
func (q *readAhead) forget(hub string, m *movedHub) {
	if m.unread <= 0 && m.inFlight == 0 {
		delete(q.moved, hub)
	}
}

// put queues p, an event of hub, waiting while the read-ahead is full, and
// never moves it. It reports false (and queues nothing) once close was
// called.
func (q *readAhead) put(hub string, p *pending) bool {
	return q.admit(hub, p, false) == admitQueued
}

// putBack queues p, an event of hub read back from its events-overflow
// subject, without waiting (the caller took no more than overflowRoom).
// It reports false once close was called.
func (q *readAhead) putBack(hub string, p *pending) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	if m := q.moved[hub]; m != nil && p.first {
		m.unread = max(m.unread-1, 0)
		q.forget(hub, m)
	}
	q.queue(hub, p)
	return true
}

// queue appends p to hub's queue; q.mu is held.
func (q *readAhead) queue(hub string, p *pending) {
	h := q.hubs[hub]
	if h == nil {
		h = &hubQueue{hub: hub}
		q.hubs[hub] = h
	}
	if len(h.events) == 0 {
		// Last in the current round: hubs already waiting go first.
		q.ring = append(q.ring, h)
	}
	h.events = append(h.events, p)
	q.events++
	q.bytes += p.size
	q.notEmpty.Signal()
	if len(h.events) <= q.quietMax {
		q.quiet.Signal()
	}
}

// overflowRoom is how many events, and bytes, may be read back from
// overflow now: what fills the read-ahead up to half.
func (q *readAhead) overflowRoom() (events, bytes int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return 0, 0
	}
	return q.maxEvents/2 - q.events, q.maxBytes/2 - q.bytes
}

// shardEmpty says that a fetch from events-overflow shard shard, asked at
// since, found it empty: the copies of its hubs stored before since were
// all read back, by this replica or another, so those hubs' events need
// not be moved any more for their sake.
func (q *readAhead) shardEmpty(shard int, since time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for hub, m := range q.moved {
		if m.inFlight == 0 && m.stored.Before(since) && eventbus.OverflowShard(hub) == shard {
			delete(q.moved, hub)
		}
	}
}

// take returns the oldest event of the hub whose turn it is, waiting while
// the read-ahead is empty. It reports false once close was called.
func (q *readAhead) take() (*pending, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for !q.closed && q.events == 0 {
		q.notEmpty.Wait()
	}
	if q.closed {
		return nil, false
	}
	if q.next >= len(q.ring) {
		q.next = 0
	}
	return q.takeAt(q.next), true
}

// takeQuiet is take for the workers reserved for hubs that do not flood:
// it returns the oldest event of the first hub, from the one whose turn it
// is, with at most quietMax events queued, waiting while there is none. So
// a flood that keeps every other worker busy (each of its events waits for
// its fan-outs to be stored) never makes a quiet hub's event wait for a
// worker.
func (q *readAhead) takeQuiet() (*pending, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for !q.closed {
		for i := range q.ring {
			at := (q.next + i) % len(q.ring)
			if len(q.ring[at].events) <= q.quietMax {
				return q.takeAt(at), true
			}
		}
		q.quiet.Wait()
	}
	return nil, false
}

// takeAt takes the oldest event of the hub at index at of the ring; q.mu is
// held. The hub whose turn it is keeps it unless it was the one taken.
func (q *readAhead) takeAt(at int) *pending {
	h := q.ring[at]
	p := h.events[0]
	h.events[0] = nil
	h.events = h.events[1:]
	p.behind = len(h.events)
	switch {
	case len(h.events) == 0:
		// Out of the ring; the next hub moves into this index.
		q.ring = append(q.ring[:at], q.ring[at+1:]...)
		delete(q.hubs, h.hub)
		if at < q.next {
			q.next--
		}
	case at == q.next:
		q.next++
	}
	q.events--
	q.bytes -= p.size
	q.notFull.Broadcast()
	if 2*q.events < q.maxEvents && 2*q.bytes < q.maxBytes {
		select {
		case q.space <- struct{}{}:
		default:
		}
	}
	return p
}

// close makes put and take report false from now on and returns the events
// still queued, to hand back to the stream.
func (q *readAhead) close() []*pending {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	var out []*pending
	for _, h := range q.ring {
		out = append(out, h.events...)
	}
	q.ring, q.hubs, q.events, q.bytes = nil, map[string]*hubQueue{}, 0, 0
	q.notEmpty.Broadcast()
	q.notFull.Broadcast()
	q.quiet.Broadcast()
	return out
}

// stale returns the messages of the events queued since before cutoff (or
// last reported then) and marks them touched at now: the caller reports
// them in progress, so the server does not redeliver an event that is only
// waiting for its turn.
func (q *readAhead) stale(cutoff, now time.Time) []jetstream.Msg {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []jetstream.Msg
	for _, h := range q.ring {
		for _, p := range h.events {
			if p.touched.Before(cutoff) {
				p.touched = now
				out = append(out, p.msg)
			}
		}
	}
	return out
}

// size is the events queued and their bytes.
func (q *readAhead) size() (events, bytes int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.events, q.bytes
}
