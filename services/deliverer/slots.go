package deliverer

import (
	"context"
	"sync"

	"golang.org/x/sync/semaphore"
)

// slots bounds the POSTs in flight: Config.PerHubConcurrency per hub and
// Config.Concurrency in the replica. Only the POST holds its slots, not the
// bookkeeping around it. It is safe for concurrent use.
type slots struct {
	global *semaphore.Weighted
	perHub int64

	mu   sync.Mutex
	hubs map[string]*hubSlots // hubs with a POST in flight or waiting
}

// hubSlots are one hub's slots and how many POSTs use or wait for them.
type hubSlots struct {
	sem   *semaphore.Weighted
	users int
}

func newSlots(concurrency, perHub int) *slots {
	return &slots{global: semaphore.NewWeighted(int64(concurrency)), perHub: int64(perHub), hubs: map[string]*hubSlots{}}
}

// acquire waits for a slot of hub's and one of the replica's; release gives
// both back. It reports false when ctx ends first (the deliverer is
// stopping).
func (sl *slots) acquire(ctx context.Context, hub string) (release func(), ok bool) {
	h := sl.join(hub)
	if err := h.sem.Acquire(ctx, 1); err != nil {
		sl.leave(hub)
		return nil, false
	}
	if err := sl.global.Acquire(ctx, 1); err != nil {
		h.sem.Release(1)
		sl.leave(hub)
		return nil, false
	}
	return func() {
		sl.global.Release(1)
		h.sem.Release(1)
		sl.leave(hub)
	}, true
}

// join returns hub's slots, counting one more user.
func (sl *slots) join(hub string) *hubSlots {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	h := sl.hubs[hub]
	if h == nil {
		h = &hubSlots{sem: semaphore.NewWeighted(sl.perHub)}
		sl.hubs[hub] = h
	}
	h.users++
	return h
}

// leave counts one user of hub's slots less, forgetting them at zero.
func (sl *slots) leave(hub string) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if h := sl.hubs[hub]; h != nil {
		h.users--
		if h.users == 0 {
			delete(sl.hubs, hub)
		}
	}
}
