package batch

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubhooks/hubhooks/pkg/poll"
)

type item struct {
	id     string
	weight int
}

// Items added concurrently by many goroutines are sent exactly once, grouped
// by key, within the limits (but for an item heavier than them, alone), and
// each Add returns the outcome of the send that carried its item, with and
// without a Linger.
func TestBatcher(t *testing.T) {
	for _, lim := range []Limits{
		{Flushers: 2},
		{Flushers: 2, Linger: 2 * time.Millisecond},
		{Flushers: 6, PerKey: 1},
		{Flushers: 4, PerKey: 2, Linger: 2 * time.Millisecond},
	} {
		t.Run(fmt.Sprintf("flushers %d per key %d linger %v", lim.Flushers, lim.PerKey, lim.Linger), func(t *testing.T) {
			testBatcher(t, lim)
		})
	}
}

func testBatcher(t *testing.T, lim Limits) {
	const maxWeight, maxBytes = 10, 64
	lim.MaxWeight, lim.MaxBytes = maxWeight, maxBytes
	perKey := lim.PerKey
	if perKey == 0 {
		perKey = lim.Flushers
	}
	inFlight := map[string]int{}
	var mu sync.Mutex
	sent := map[string]int{}    // id -> times sent
	failed := map[string]bool{} // ids in a failed send
	var sends, batches int
	errSend := errors.New("send failed")
	b := New(lim, func(key string, items []item) error {
		mu.Lock()
		if inFlight[key]++; inFlight[key] > perKey {
			t.Errorf("%d sends of %s at once, want at most %d", inFlight[key], key, perKey)
		}
		mu.Unlock()
		time.Sleep(time.Millisecond) // a round trip, so items pile up
		mu.Lock()
		defer mu.Unlock()
		inFlight[key]--
		sends++
		if len(items) > 1 {
			batches++
		}
		weight := 0
		for _, it := range items {
			weight += it.weight
			if want := "key-" + it.id[len(it.id)-1:]; key != want {
				t.Errorf("item %s sent under %s, want %s", it.id, key, want)
			}
		}
		if len(items) > 1 && (weight > maxWeight || len(items)*8 > maxBytes) {
			t.Errorf("batch of %d items, weight %d, %d bytes: over the limits", len(items), weight, len(items)*8)
		}
		fail := sends%5 == 0
		for _, it := range items {
			sent[it.id]++
			failed[it.id] = fail
		}
		if fail {
			return errSend
		}
		return nil
	})
	const workers, per = 50, 20
	results := map[string]error{}
	var rmu sync.Mutex
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				// Every 7th item is heavier than a batch may be.
				weight := 1 + (i % 3)
				if i%7 == 0 {
					weight = maxWeight + 1
				}
				it := item{id: fmt.Sprintf("w%d_i%d_%d", w, i, w%3), weight: weight}
				err := b.Add("key-"+it.id[len(it.id)-1:], it, it.weight, 8)
				rmu.Lock()
				results[it.id] = err
				rmu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(sent) != workers*per {
		t.Fatalf("%d items sent, want %d", len(sent), workers*per)
	}
	for id, n := range sent {
		if n != 1 {
			t.Errorf("%s sent %d times", id, n)
		}
		if (results[id] != nil) != failed[id] {
			t.Errorf("%s: Add returned %v, its send failed: %v", id, results[id], failed[id])
		}
	}
	if batches == 0 || sends >= workers*per {
		t.Errorf("%d sends (%d batches) for %d items: nothing was batched", sends, batches, workers*per)
	}
	if len(b.ring) != 0 || len(b.keys) != 0 || b.flushers != 0 || len(b.sending) != 0 || b.sleeping {
		t.Error("batcher not idle after every Add returned")
	}
}

// A lone item waits Linger before it is sent (and, without Linger, does not
// wait: the bound is loose, for loaded machines).
func TestBatcherLinger(t *testing.T) {
	for _, linger := range []time.Duration{0, 30 * time.Millisecond} {
		b := New(Limits{MaxWeight: 10, Flushers: 1, Linger: linger}, func(string, []int) error { return nil })
		start := time.Now()
		if err := b.Add("k", 1, 1, 1); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		if linger == 0 && took > 5*time.Second {
			t.Errorf("no linger: Add took %v", took)
		}
		if linger > 0 && took < linger {
			t.Errorf("linger %v: Add took only %v", linger, took)
		}
	}
}

// Linger bounds each item's wait, not each send's: lone items of many keys
// pending together are sent about Linger after they arrived, not one
// Linger after another (40 keys would take 40 Lingers, two seconds, and a
// deliverer's records of many quiet hubs would then fall behind their
// rate). The bound is loose, for loaded machines.
func TestBatcherLingerPerItem(t *testing.T) {
	const keys, linger = 40, 50 * time.Millisecond
	var sends atomic.Int32
	b := New(Limits{MaxWeight: 10, Flushers: 1, Linger: linger}, func(string, []int) error {
		sends.Add(1)
		return nil
	})
	start := time.Now()
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			if err := b.Add(fmt.Sprint("k", i), 1, 1, 1); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if took := time.Since(start); took > 10*linger {
		t.Errorf("%d lone items of as many keys took %v to send, want about one linger (%v)", keys, took, linger)
	}
	if n := sends.Load(); n != keys {
		t.Errorf("%d sends, want one per key (%d)", n, keys)
	}
}

// A key with a full batch goes before a key whose turn it is but whose
// item is still lingering; the lingering key is sent once its Linger is up.
func TestBatcherFullKeyPassesALingeringOne(t *testing.T) {
	const linger = 2 * time.Second
	b := New(Limits{MaxWeight: 4, Flushers: 1, Linger: linger}, func(string, []int) error { return nil })
	start := time.Now()
	young := make(chan time.Duration, 1)
	go func() {
		_ = b.Add("young", 1, 1, 1)
		young <- time.Since(start)
	}()
	poll.Until(t, 10*time.Second, "the young item pending", func() bool { return pending(b, "young") > 0 })
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { _ = b.Add("full", 1, 1, 1) })
	}
	wg.Wait()
	if took := time.Since(start); took > linger/2 {
		t.Errorf("a full batch was sent after %v, behind a lingering key (linger %v)", took, linger)
	}
	if took := <-young; took < linger {
		t.Errorf("the lingering key was sent after %v, before its linger (%v)", took, linger)
	}
}

// With PerKey below Flushers, a key whose sends are slow does not take the
// flushers another key needs: a quiet key's item goes while the busy key's
// send is stuck and more of its items wait.
func TestBatcherPerKeyLeavesFlushersToOtherKeys(t *testing.T) {
	stuck := make(chan struct{})
	var busyIn atomic.Int32
	b := New(Limits{MaxWeight: 1, Flushers: 2, PerKey: 1}, func(key string, _ []int) error {
		if key == "busy" {
			busyIn.Add(1)
			<-stuck
		}
		return nil
	})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { _ = b.Add("busy", 1, 1, 1) })
	}
	poll.Until(t, 10*time.Second, "every busy item sent or pending, a send stuck", func() bool {
		in := int(busyIn.Load())
		return in >= 1 && in+pending(b, "busy") == 3
	})
	quiet := make(chan error, 1)
	go func() { quiet <- b.Add("quiet", 1, 1, 1) }()
	select {
	case err := <-quiet:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the quiet key's item waited for the busy key's stuck send")
	}
	close(stuck)
	wg.Wait()
}

// Keys take turns: a key with one item pending is sent next, not after
// every batch of a key that had many items pending before it.
func TestBatcherKeysTakeTurns(t *testing.T) {
	var mu sync.Mutex
	var order []string
	release := make(chan struct{})
	b := New(Limits{MaxWeight: 2, Flushers: 1}, func(key string, items []int) error {
		<-release
		mu.Lock()
		order = append(order, key)
		mu.Unlock()
		return nil
	})
	var wg sync.WaitGroup
	// added adds n items of key and waits until at least n-taken of them
	// are pending (the flusher, held by release, may have taken some).
	added := func(key string, n, taken int) {
		for range n {
			wg.Go(func() { _ = b.Add(key, 1, 1, 1) })
		}
		poll.Until(t, 10*time.Second, key+"'s items pending", func() bool { return pending(b, key) >= n-taken })
	}
	added("busy", 9, 2) // 5 sends of at most 2; the first taken at once
	added("quiet", 1, 0)
	close(release)
	wg.Wait()
	// The flusher's first send was taken before quiet arrived; quiet's
	// comes within the next two.
	if i := slices.Index(order, "quiet"); i < 0 || i > 2 {
		t.Errorf("sends %v: the quiet key went at position %d, want within the first three", order, i)
	}
}

// pending is how many items of key wait in b.
func pending[T any](b *Batcher[T], key string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if q := b.keys[key]; q != nil {
		return len(q.pending)
	}
	return 0
}
