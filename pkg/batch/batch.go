// Package batch lets many goroutines hand items over to be sent together:
// the items pending at the same time go out in one send per key, keys take
// turns, and each goroutine gets back the outcome of the send that carried
// its item.
//
// The deliverer batches attempt records this way (one JetStream message per
// hub instead of one per record), the expander the fan-outs of domain events
// (one message per hub for several events). Each item is still settled only
// after its own send succeeded, so batching changes how many messages carry
// the items, never what is acknowledged when.
package batch

import (
	"sync"
	"time"
)

// Limits bound one batch and the senders.
type Limits struct {
	// MaxWeight is the most weight per batch (items weigh what Add says:
	// 1 per record, the jobs of a fan-out...). An item heavier than
	// MaxWeight is sent alone.
	MaxWeight int
	// MaxBytes is the most bytes per batch; an item larger than it is sent
	// alone.
	MaxBytes int
	// Flushers is how many goroutines may send at once (at least 1).
	Flushers int
	// PerKey is how many of them may send items of one key at once (0:
	// Flushers). Batches of a key form while its sends are in flight, so
	// a low PerKey keeps a busy key's batches full while a high Flushers
	// lets many keys' sends, each its own message, go at the same time.
	PerKey int
	// Linger is how long an item may wait for more items of its key: a
	// flusher whose key in turn has less than MaxWeight pending sends it
	// once its oldest item has waited Linger. The wait runs per item, not
	// per send, so however many keys have items pending, each waits about
	// Linger plus the sends ahead of it. 0 sends what is pending at once
	// (batches then form only from items that arrive while a send is in
	// flight).
	Linger time.Duration
}

// Batcher batches items of type T. Create it with New. There is no
// goroutine of its own: a goroutine in Add becomes a flusher when fewer than
// Limits.Flushers are active, and a flusher keeps sending until nothing is
// pending, until its own item is done while another flusher is active, or
// until every key pending has Limits.PerKey sends in flight (whose flushers
// come back for it): a pending item always has an active flusher. Keys take
// turns: each send carries one key's items, and the next send the next
// key's, so a key with a lone item is not sent after every batch of a busy
// key.
type Batcher[T any] struct {
	send func(key string, items []T) error
	lim  Limits

	mu       sync.Mutex
	keys     map[string]*keyQueue[T] // keys with items pending
	ring     []*keyQueue[T]          // the same, in turn order
	next     int                     // index in ring of the key whose turn it is
	flushers int
	// sleeping: a flusher waits for the first lingering key to be ready.
	sleeping bool
	// sending counts the sends in flight per key (for Limits.PerKey).
	sending map[string]int
	// full wakes a flusher waiting for a Linger to run out when a key's
	// batch fills meanwhile.
	full chan struct{}

	// requests are reused: an Add takes one and puts it back once its
	// outcome arrived, after which no flusher touches it.
	requests sync.Pool
}

// keyQueue is one key's pending items, oldest first.
type keyQueue[T any] struct {
	key     string
	pending []*request[T]
	weight  int
	bytes   int
}

type request[T any] struct {
	key           string
	item          T
	weight, bytes int
	added         time.Time // set only with a Linger
	done          chan error
}

// New returns a batcher that sends with send: items of one key, in the
// order they were added, at most lim.MaxWeight and lim.MaxBytes of them
// unless a single item is heavier. send must not keep items after it
// returns.
func New[T any](lim Limits, send func(key string, items []T) error) *Batcher[T] {
	lim.Flushers = max(lim.Flushers, 1)
	lim.MaxWeight = max(lim.MaxWeight, 1)
	if lim.PerKey <= 0 || lim.PerKey > lim.Flushers {
		lim.PerKey = lim.Flushers
	}
	return &Batcher[T]{send: send, lim: lim, keys: map[string]*keyQueue[T]{}, sending: map[string]int{},
		full: make(chan struct{}, 1)}
}

// Add hands item over (to be sent with the other items of key) and returns
// when the send that carried it returned: nil, or that send's error.
func (b *Batcher[T]) Add(key string, item T, weight, bytes int) error {
	r, _ := b.requests.Get().(*request[T])
	if r == nil {
		r = &request[T]{done: make(chan error, 1)}
	}
	r.key, r.item, r.weight, r.bytes = key, item, weight, bytes
	if b.lim.Linger > 0 {
		r.added = time.Now()
	}
	defer b.release(r)
	b.mu.Lock()
	q := b.keys[key]
	if q == nil {
		q = &keyQueue[T]{key: key}
		b.keys[key] = q
		b.ring = append(b.ring, q) // last in the current round
	}
	q.pending = append(q.pending, r)
	q.weight += weight
	q.bytes += bytes
	if b.lim.Linger > 0 && b.isFull(q) {
		select {
		case b.full <- struct{}{}:
		default:
		}
	}
	if b.flushers >= b.lim.Flushers {
		b.mu.Unlock()
		return <-r.done
	}
	b.flushers++
	b.mu.Unlock()
	b.flush(r)
	return <-r.done
}

// release puts r, whose outcome was received, back for another Add.
func (b *Batcher[T]) release(r *request[T]) {
	var zero T
	r.item = zero // not kept alive by the pool
	b.requests.Put(r)
}

// flush sends the pending items, a key at a time in turn, until own is done
// and another flusher is active, or nothing is pending. With a Linger, a
// key not yet ready (see ready) lets the next ready one go first but keeps
// its turn; when none is ready the flusher sleeps until the first will be.
func (b *Batcher[T]) flush(own *request[T]) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	var sent string // the key of this flusher's last send, while counted (in b.sending)
	counted, slept := false, false
	for {
		b.mu.Lock()
		if counted {
			if b.sending[sent]--; b.sending[sent] == 0 {
				delete(b.sending, sent)
			}
			counted = false
		}
		if slept {
			b.sleeping, slept = false, false
		}
		ownDone := len(own.done) > 0
		if len(b.ring) == 0 || (ownDone && b.flushers > 1) {
			b.flushers--
			b.mu.Unlock()
			return
		}
		if b.next >= len(b.ring) {
			b.next = 0
		}
		at, wait := b.ready()
		if at < 0 && (wait == 0 || b.sleeping) {
			// Every key pending has PerKey sends in flight, whose
			// flushers come back for it, or lingers, and another
			// flusher sleeps until the first is ready: one is enough.
			b.flushers--
			b.mu.Unlock()
			return
		}
		if at < 0 {
			b.sleeping, slept = true, true
			b.mu.Unlock()
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case <-timer.C:
			case <-b.full:
			}
			continue // the keys pending may have changed meanwhile
		}
		q := b.ring[at]
		n, weight, size := 0, 0, 0
		for n < len(q.pending) {
			r := q.pending[n]
			if n > 0 && (weight+r.weight > b.lim.MaxWeight || (b.lim.MaxBytes > 0 && size+r.bytes > b.lim.MaxBytes)) {
				break
			}
			weight += r.weight
			size += r.bytes
			n++
		}
		batch := make([]*request[T], n)
		copy(batch, q.pending[:n])
		clear(q.pending[:n])
		q.pending = q.pending[n:]
		q.weight -= weight
		q.bytes -= size
		switch {
		case len(q.pending) == 0:
			// Out of the ring; the next key moves into this index.
			b.ring = append(b.ring[:at], b.ring[at+1:]...)
			delete(b.keys, q.key)
			if at < b.next {
				b.next--
			}
		case at == b.next:
			b.next++
		}
		b.sending[q.key]++
		sent, counted = q.key, true
		b.mu.Unlock()
		b.sendBatch(q.key, batch)
	}
}

// ready returns the index in ring of the first key, from the one whose turn
// it is, that may be sent now: one with fewer than PerKey sends in flight
// and, with a Linger, a full batch pending or an oldest item that has waited
// Linger. When there is none it returns -1 and how long until the first
// will be (0: none lingers, every key waits for its sends). b.mu is held.
func (b *Batcher[T]) ready() (at int, wait time.Duration) {
	if b.lim.Linger <= 0 && b.lim.PerKey >= b.lim.Flushers {
		return b.next, 0 // nothing to wait for: the key in turn goes
	}
	var now time.Time
	if b.lim.Linger > 0 {
		now = time.Now()
	}
	for i := range b.ring {
		at := (b.next + i) % len(b.ring)
		q := b.ring[at]
		if b.sending[q.key] >= b.lim.PerKey {
			continue
		}
		if b.lim.Linger <= 0 || b.isFull(q) {
			return at, 0
		}
		left := b.lim.Linger - now.Sub(q.pending[0].added)
		if left <= 0 {
			return at, 0
		}
		if wait == 0 || left < wait {
			wait = left
		}
	}
	return -1, wait
}

// isFull says whether q has a full batch pending (by weight or bytes).
func (b *Batcher[T]) isFull(q *keyQueue[T]) bool {
	return q.weight >= b.lim.MaxWeight || (b.lim.MaxBytes > 0 && q.bytes >= b.lim.MaxBytes)
}

// sendBatch sends the items of batch, all of key, as one send and reports
// the outcome to each.
func (b *Batcher[T]) sendBatch(key string, batch []*request[T]) {
	items := make([]T, len(batch))
	for i, r := range batch {
		items[i] = r.item
	}
	err := b.send(key, items)
	for _, r := range batch {
		r.done <- err
	}
}
