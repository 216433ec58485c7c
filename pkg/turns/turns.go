// Package turns lets one loop take work from a fixed set of shards in turns,
// by deficit round robin: each round, every shard that is not idle has its
// allowance raised by a quantum and takes up to it, as long as there is
// room. So one flooding hub, whose work sits in one shard, cannot starve
// the other shards: each of them gets its quantum every round. Unused
// turns add up a little (to maxQuanta quanta), so a shard that got less
// because room ran out gets its due later.
//
// A shard that had nothing, or failed, is left alone for Config.Idle, unless
// Config.Wake says there is new work. When a whole round took nothing, the
// loop waits for room (if room is what it lacked), a wake or the idle time.
// The expander reads its events-overflow shards back this way, the
// deliverer takes its delivery-overflow shards.
package turns

import (
	"context"
	"time"
)

// maxQuanta caps a shard's allowance, in quanta: saved turns add up only
// this far, so a shard back from a long wait does not take a flood at once.
const maxQuanta = 4

// Config is what the service says: how many shards, how much a turn is, how
// much room there is and how to take from a shard.
type Config struct {
	// Shards is how many shards there are, numbered from 0.
	Shards int
	// Quantum is how many items a shard with items may take per round.
	Quantum int
	// Idle is how long a shard that was empty, or failed, waits before it
	// is asked again, and how long the loop waits after a round that took
	// nothing.
	Idle time.Duration
	// Room is how many items may be taken now. At 0 or less the round ends,
	// and the next one starts with the shard that did not get its turn.
	Room func() int
	// Take takes about max items of shard and returns how many it took and
	// whether the shard is empty now. Taking more than max (items come in
	// whole messages) is counted against the shard's next turns, so max
	// may then be 0 or less. An error leaves the shard idle as empty does;
	// what else it calls for is Take's to do.
	Take func(shard, max int) (took int, empty bool, err error)
	// Space is signalled when room comes back. The loop waits on it only
	// after a round that stopped for lack of room.
	Space <-chan struct{}
	// Wake is signalled when some shard may have items again: every shard
	// is asked at once.
	Wake <-chan struct{}
}

// Run takes items from the shards in turns until ctx ends.
func Run(ctx context.Context, cfg Config) { newLoop(cfg).run(ctx) }

// run is Run with l's clock: rounds, and a wait after one that took nothing.
func (l *loop) run(ctx context.Context) {
	for ctx.Err() == nil {
		took, full := l.round()
		if took == 0 && !l.wait(ctx, full) {
			return
		}
	}
}

// loop is Run's state: each shard's allowance and idle time, and whose turn
// it is.
type loop struct {
	cfg       Config
	deficit   []int       // the items each shard may still take this round
	idleUntil []time.Time // a shard that had nothing is asked again then
	next      int         // the shard whose turn it is

	now   func() time.Time                     // the clock, a fake one in tests
	after func(time.Duration) <-chan time.Time // the timer, likewise
}

func newLoop(cfg Config) *loop {
	return &loop{cfg: cfg, deficit: make([]int, cfg.Shards), idleUntil: make([]time.Time, cfg.Shards),
		now: time.Now, after: time.After}
}

// round gives every shard not idle its turn once, from the one whose turn
// it is, and returns how many items were taken and whether it stopped for
// lack of room.
func (l *loop) round() (took int, full bool) {
	for range l.cfg.Shards {
		room := l.cfg.Room()
		if room <= 0 {
			return took, true
		}
		i := l.next
		l.next = (l.next + 1) % l.cfg.Shards
		now := l.now()
		if now.Before(l.idleUntil[i]) {
			continue
		}
		l.deficit[i] = min(l.deficit[i]+l.cfg.Quantum, maxQuanta*l.cfg.Quantum)
		n, empty, err := l.cfg.Take(i, min(l.deficit[i], room))
		l.deficit[i] -= n
		took += n
		if empty || err != nil {
			l.deficit[i], l.idleUntil[i] = 0, now.Add(l.cfg.Idle)
		}
	}
	return took, false
}

// wait waits, after a round that took nothing, for room (when full), a
// wake, which makes every shard ready, or the idle time. It reports false
// when ctx ended.
func (l *loop) wait(ctx context.Context, full bool) bool {
	space := l.cfg.Space
	if !full {
		space = nil
	}
	select {
	case <-ctx.Done():
		return false
	case <-space:
	case <-l.cfg.Wake:
		clear(l.idleUntil)
	case <-l.after(l.cfg.Idle):
	}
	return true
}
