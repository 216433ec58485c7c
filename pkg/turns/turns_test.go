package turns

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

const idle = 250 * time.Millisecond

// turn is one call of Take.
type turn struct{ shard, max int }

// fake is a set of shards whose Take records its calls and answers from
// took and empty; its clock moves only when a test moves it.
type fake struct {
	mu    sync.Mutex
	turns []turn
	room  int                              // what Room says
	take  func(shard, max int) (int, bool) // what a shard has
	err   map[int]error
	clock time.Time
}

func (f *fake) config(shards, quantum int) Config {
	return Config{
		Shards: shards, Quantum: quantum, Idle: idle,
		Room: func() int { f.mu.Lock(); defer f.mu.Unlock(); return f.room },
		Take: func(shard, max int) (int, bool, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.turns = append(f.turns, turn{shard, max})
			if err := f.err[shard]; err != nil {
				return 0, true, err
			}
			n, empty := f.take(shard, max)
			f.room -= n
			return n, empty, nil
		},
	}
}

// taken returns the turns since the last call.
func (f *fake) taken() []turn {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.turns
	f.turns = nil
	return t
}

func (f *fake) loop(cfg Config) *loop {
	l := newLoop(cfg)
	l.now = func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.clock }
	return l
}

func full(shard, max int) (int, bool) { return max, false }

func TestFullShardsGetTheirQuantumEachRound(t *testing.T) {
	f := &fake{take: full, clock: time.Unix(1e9, 0)}
	l := f.loop(f.config(2, 5))
	for range 3 {
		f.room = 1000
		if took, stopped := l.round(); took != 10 || stopped {
			t.Fatalf("round took %d, stopped for room %v; want 10, false", took, stopped)
		}
		if got, want := f.taken(), []turn{{0, 5}, {1, 5}}; !slices.Equal(got, want) {
			t.Fatalf("turns %v, want %v", got, want)
		}
	}
}

func TestEmptyShardIdlesUntilIdleTimeOrWake(t *testing.T) {
	f := &fake{clock: time.Unix(1e9, 0), room: 1 << 30, err: map[int]error{}}
	f.take = func(shard, max int) (int, bool) {
		if shard == 0 {
			return 0, true
		}
		return max, false
	}
	wake := make(chan struct{}, 1)
	cfg := f.config(2, 5)
	cfg.Wake = wake
	l := f.loop(cfg)
	l.after = func(time.Duration) <-chan time.Time { return nil }

	l.round()
	if got, want := f.taken(), []turn{{0, 5}, {1, 5}}; !slices.Equal(got, want) {
		t.Fatalf("first round %v, want %v", got, want)
	}
	f.clock = f.clock.Add(idle - time.Millisecond)
	l.round()
	if got, want := f.taken(), []turn{{1, 5}}; !slices.Equal(got, want) {
		t.Fatalf("within the idle time %v, want %v", got, want)
	}
	f.clock = f.clock.Add(time.Millisecond)
	l.round()
	if got, want := f.taken(), []turn{{0, 5}, {1, 5}}; !slices.Equal(got, want) {
		t.Fatalf("after the idle time %v, want %v", got, want)
	}

	// A failed shard idles as an empty one does; a wake asks both at once.
	f.err[1] = errors.New("fetch failed")
	l.round()
	l.round()
	if got, want := f.taken(), []turn{{1, 5}}; !slices.Equal(got, want) {
		t.Fatalf("after a failed turn %v, want %v", got, want)
	}
	wake <- struct{}{}
	if !l.wait(context.Background(), false) {
		t.Fatal("wait ended")
	}
	l.round()
	if got, want := f.taken(), []turn{{0, 5}, {1, 5}}; !slices.Equal(got, want) {
		t.Fatalf("after a wake %v, want %v", got, want)
	}
}

func TestRoundCutShortResumesAtNextShard(t *testing.T) {
	f := &fake{take: full, clock: time.Unix(1e9, 0), room: 6}
	l := f.loop(f.config(3, 4))
	if took, stopped := l.round(); took != 6 || !stopped {
		t.Fatalf("round took %d, stopped for room %v; want 6, true", took, stopped)
	}
	if got, want := f.taken(), []turn{{0, 4}, {1, 2}}; !slices.Equal(got, want) {
		t.Fatalf("short round %v, want %v", got, want)
	}
	// Shard 2 goes first; shard 1 has the 2 it could not take as well.
	f.room = 100
	l.round()
	if got, want := f.taken(), []turn{{2, 4}, {0, 4}, {1, 6}}; !slices.Equal(got, want) {
		t.Fatalf("next round %v, want %v", got, want)
	}
}

func TestUnusedTurnsAddUpToFourQuanta(t *testing.T) {
	f := &fake{take: full, clock: time.Unix(1e9, 0)}
	l := f.loop(f.config(1, 10))
	for range 10 {
		f.room = 1 // one item a round: the shard saves the rest of its turn
		l.round()
	}
	f.taken()
	f.room = 1000
	l.round()
	if got, want := f.taken(), []turn{{0, 40}}; !slices.Equal(got, want) {
		t.Fatalf("after short turns %v, want %v", got, want)
	}
}

// TestRoomZeroWaitsForSpace runs the loop: without room it takes nothing
// until Space is signalled, and Space does not end a wait that was not for
// room.
func TestRoomZeroWaitsForSpace(t *testing.T) {
	f := &fake{take: func(shard, max int) (int, bool) { return 1, true }, clock: time.Unix(1e9, 0)}
	space, wake := make(chan struct{}, 1), make(chan struct{}, 1)
	cfg := f.config(2, 5)
	cfg.Space, cfg.Wake = space, wake
	l := f.loop(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan struct{})
	l.after = func(d time.Duration) <-chan time.Time {
		if d != idle {
			t.Errorf("waits %s, want %s", d, idle)
		}
		select {
		case waiting <- struct{}{}:
		case <-ctx.Done():
		}
		return nil // the idle time never ends: only Space or Wake go on
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()

	<-waiting
	if got := f.taken(); len(got) != 0 {
		t.Fatalf("took %v without room", got)
	}
	f.mu.Lock()
	f.room = 3
	f.mu.Unlock()
	space <- struct{}{}
	<-waiting // both shards took one and are empty now: a wait not for room
	if got, want := f.taken(), []turn{{0, 3}, {1, 2}}; !slices.Equal(got, want) {
		t.Fatalf("after space %v, want %v", got, want)
	}
	f.mu.Lock()
	f.room = 10
	f.mu.Unlock()
	space <- struct{}{} // the shards are idle: room does not matter
	wake <- struct{}{}
	<-waiting
	if got, want := f.taken(), []turn{{0, 5}, {1, 5}}; !slices.Equal(got, want) {
		t.Fatalf("after wake %v, want %v", got, want)
	}
	if len(space) != 1 {
		t.Fatal("a wait not for room took the space signal")
	}
}

func TestTakingMoreThanMaxCountsAgainstNextTurns(t *testing.T) {
	f := &fake{clock: time.Unix(1e9, 0), room: 1000}
	f.take = func(shard, n int) (int, bool) { return max(0, n) + 7, false }
	l := f.loop(f.config(1, 5))
	l.round() // takes 12 of 5: 7 ahead
	l.round() // -7 + 5: its turn is -2
	l.round() // -2 - 7 + 5
	if got, want := f.taken(), []turn{{0, 5}, {0, -2}, {0, -4}}; !slices.Equal(got, want) {
		t.Fatalf("turns %v, want %v", got, want)
	}
}
