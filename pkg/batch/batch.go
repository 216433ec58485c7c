// Package batch lets many goroutines hand items over to be sent together:
// the items pending at the same time go out in one send per key, and each
// goroutine gets back the outcome of the send that carried its item.
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
	// Linger is how long a flusher that finds less than MaxWeight pending
	// waits for more before it sends; 0 sends what is pending at once
	// (batches then form only from items that arrive while a send is in
	// flight).
	Linger time.Duration
}

// Batcher batches items of type T. Create it with New. There is no
// goroutine of its own: a goroutine in Add becomes a flusher when fewer than
// Limits.Flushers are active, and a flusher keeps sending until nothing is
// pending, or until its own item is done while another flusher is active (so
// a pending item always has an active flusher).
type Batcher[T any] struct {
	send func(key string, items []T) error
	lim  Limits

	mu       sync.Mutex
	pending  []*request[T]
	weight   int // of pending
	flushers int
}

type request[T any] struct {
	key           string
	item          T
	weight, bytes int
	done          chan error
}

// New returns a batcher that sends with send: items of one key, in the
// order they were added, at most lim.MaxWeight and lim.MaxBytes of them
// unless a single item is heavier. send must not keep items after it
// returns.
func New[T any](lim Limits, send func(key string, items []T) error) *Batcher[T] {
	lim.Flushers = max(lim.Flushers, 1)
	lim.MaxWeight = max(lim.MaxWeight, 1)
	return &Batcher[T]{send: send, lim: lim}
}

// Add hands item over (to be sent with the other items of key) and returns
// when the send that carried it returned: nil, or that send's error.
func (b *Batcher[T]) Add(key string, item T, weight, bytes int) error {
	r := &request[T]{key: key, item: item, weight: weight, bytes: bytes, done: make(chan error, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, r)
	b.weight += weight
	if b.flushers >= b.lim.Flushers {
		b.mu.Unlock()
		return <-r.done
	}
	b.flushers++
	b.mu.Unlock()
	b.flush(r)
	return <-r.done
}

// flush sends pending batches until own is done and another flusher is
// active, or nothing is pending.
func (b *Batcher[T]) flush(own *request[T]) {
	for {
		b.mu.Lock()
		ownDone := len(own.done) > 0
		if len(b.pending) == 0 || (ownDone && b.flushers > 1) {
			b.flushers--
			b.mu.Unlock()
			return
		}
		if b.weight < b.lim.MaxWeight && b.lim.Linger > 0 {
			b.mu.Unlock()
			time.Sleep(b.lim.Linger)
			b.mu.Lock()
		}
		n, weight, size := 0, 0, 0
		for n < len(b.pending) {
			r := b.pending[n]
			if n > 0 && (weight+r.weight > b.lim.MaxWeight || (b.lim.MaxBytes > 0 && size+r.bytes > b.lim.MaxBytes)) {
				break
			}
			weight += r.weight
			size += r.bytes
			n++
		}
		batch := make([]*request[T], n)
		copy(batch, b.pending[:n])
		clear(b.pending[:n])
		b.pending = b.pending[n:]
		b.weight -= weight
		if len(b.pending) == 0 {
			b.pending = nil
		}
		b.mu.Unlock()
		b.sendBatch(batch)
	}
}

// sendBatch sends batch as one send per key and reports each item's
// outcome.
func (b *Batcher[T]) sendBatch(batch []*request[T]) {
	for len(batch) > 0 {
		key := batch[0].key
		var group, rest []*request[T]
		for _, r := range batch {
			if r.key == key {
				group = append(group, r)
			} else {
				rest = append(rest, r)
			}
		}
		batch = rest
		items := make([]T, len(group))
		for i, r := range group {
			items[i] = r.item
		}
		err := b.send(key, items)
		for _, r := range group {
			r.done <- err
		}
	}
}
