package expander

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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
// be larger): put blocks while it is full, and the consumer stops pulling.
// Events are unacknowledged while they wait, so their time here counts
// against the consumer's ack wait (see stale).
type readAhead struct {
	maxEvents int
	maxBytes  int

	// quietMax is the most events a hub may have queued for takeQuiet to
	// hand them out (Config.OverflowAfter): a hub with more floods.
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
}

func newReadAhead(maxEvents, maxBytes int) *readAhead {
	q := &readAhead{maxEvents: maxEvents, maxBytes: maxBytes, hubs: map[string]*hubQueue{}}
	q.notEmpty = sync.NewCond(&q.mu)
	q.notFull = sync.NewCond(&q.mu)
	q.quiet = sync.NewCond(&q.mu)
	return q
}

// put queues p as an event of hub, waiting while the read-ahead is full.
// It reports false (and queues nothing) once close was called.
func (q *readAhead) put(hub string, p *pending) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for !q.closed && q.events > 0 && (q.events >= q.maxEvents || q.bytes+p.size > q.maxBytes) {
		q.notFull.Wait()
	}
	if q.closed {
		return false
	}
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
	return true
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
