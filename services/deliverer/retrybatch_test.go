package deliverer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hubhooks/hubhooks/pkg/daemon"
	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/redistest"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
)

// TestConcurrentStoresShareRoundTrips stores many retries at once on a
// Redis primary with one replica (processes of the test's own), waiting for
// the replica: the stores pending together go out as one MULTI/EXEC and one
// WAIT, so there are far fewer of each than stores, and every store that
// succeeded left its own value. With the replica frozen, every store of a
// batch fails with ErrNotReplicated, and its value is on the primary (for
// the caller to remove). A store whose context ended before it went out is
// not written.
func TestConcurrentStoresShareRoundTrips(t *testing.T) {
	t.Parallel()
	primary, replica := redistest.StartReplicated(t)
	pc := primary.Client(t)
	ctx := context.Background()
	store := newRetryStore(pc, "t:", 1, 300*time.Millisecond)
	job := func(hub, id string, attempt int32) *deliveryv1.DeliveryJob {
		return &deliveryv1.DeliveryJob{HubId: hub, DeliveryId: id, UrlId: "u", Attempt: attempt}
	}
	due := time.Now().Add(time.Hour)
	poll.Until(t, 10*time.Second, "a store acknowledged by the replica", func() bool {
		return store.store(ctx, job("h0", "first", 1), due) == nil
	})

	// storeAll stores n retries at once, of 4 hubs, and returns each
	// one's value and error.
	storeAll := func(name string, n int) ([]string, []error) {
		values, errs := make([]string, n), make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				values[i], errs[i] = store.storeEntry(sctx, job(fmt.Sprintf("h%d", i%4), fmt.Sprintf("%s-%d", name, i), int32(i)), due)
			})
		}
		close(start)
		wg.Wait()
		return values, errs
	}
	const n = 400
	if err := pc.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	values, errs := storeAll("ok", n)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
		got, err := pc.HGet(ctx, store.hubKey(fmt.Sprintf("h%d", i%4)), fmt.Sprintf("ok-%d", i)).Result()
		if err != nil || got != values[i] {
			t.Fatalf("store %d: entry %q (%v), want its own value %q", i, got, err, values[i])
		}
	}
	execs, waits := redistest.CommandCalls(t, pc, "exec"), redistest.CommandCalls(t, pc, "wait")
	t.Logf("%d stores: %d MULTI/EXEC, %d WAIT", n, execs, waits)
	if execs > n/2 || waits > n/2 || waits != execs {
		t.Errorf("%d concurrent stores sent %d MULTI/EXEC and %d WAIT, want at most %d of each, one WAIT per MULTI/EXEC",
			n, execs, waits, n/2)
	}

	// The replica frozen, every store fails, and its value is on the primary.
	if err := pc.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	replica.Signal(syscall.SIGSTOP)
	values, errs = storeAll("refused", n)
	replica.Signal(syscall.SIGCONT)
	for i, err := range errs {
		if !errors.Is(err, daemon.ErrNotReplicated) {
			t.Fatalf("store %d while the replica is frozen: %v, want ErrNotReplicated", i, err)
		}
		got, err := pc.HGet(ctx, store.hubKey(fmt.Sprintf("h%d", i%4)), fmt.Sprintf("refused-%d", i)).Result()
		if err != nil || got != values[i] {
			t.Fatalf("refused store %d: entry %q (%v) on the primary, want its own value %q", i, got, err, values[i])
		}
	}
	if execs, waits := redistest.CommandCalls(t, pc, "exec"), redistest.CommandCalls(t, pc, "wait"); execs > n/2 || waits > n/2 {
		t.Errorf("%d concurrent stores, replica frozen: %d MULTI/EXEC and %d WAIT, want at most %d of each", n, execs, waits, n/2)
	}

	// A store whose context is over is not written.
	ended, cancel := context.WithCancel(ctx)
	cancel()
	if err := store.store(ended, job("h0", "ended", 1), due); !errors.Is(err, context.Canceled) {
		t.Errorf("store with its context over: %v, want context.Canceled", err)
	}
	if err := pc.HGet(ctx, store.hubKey("h0"), "ended").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("store with its context over wrote its entry (%v)", err)
	}
}

// TestStoresSendTheScriptOnlyWhenRedisLacksIt stores retries on a Redis of
// the test's own: a store names the script by its hash (EVALSHA) and sends
// it whole (EVAL) only when Redis answers that it lacks it: the first
// store, and the first after the script cache is flushed (as a restart or
// a failover to a replica would leave it). Every entry is written either
// way.
func TestStoresSendTheScriptOnlyWhenRedisLacksIt(t *testing.T) {
	t.Parallel()
	c := redistest.StartServer(t).Client(t)
	ctx := context.Background()
	store := newRetryStore(c, "t:", 0, 0)
	due := time.Now().Add(time.Hour)
	storeN := func(name string, n int) {
		t.Helper()
		for i := range n {
			job := &deliveryv1.DeliveryJob{HubId: "h", DeliveryId: fmt.Sprintf("%s-%d", name, i), UrlId: "u", Attempt: 1}
			if err := store.store(ctx, job, due); err != nil {
				t.Fatalf("store %s-%d: %v", name, i, err)
			}
		}
	}
	check := func(when string, entries, evals, evalshas int) {
		t.Helper()
		if n := int(c.HLen(ctx, store.hubKey("h")).Val()); n != entries {
			t.Errorf("%s: %d entries, want %d", when, n, entries)
		}
		if got, got2 := redistest.CommandCalls(t, c, "eval"), redistest.CommandCalls(t, c, "evalsha"); got != evals || got2 != evalshas {
			t.Errorf("%s: %d EVAL and %d EVALSHA, want %d and %d", when, got, got2, evals, evalshas)
		}
	}
	storeN("first", 10)
	// Each store tries EVALSHA first; Redis counts the one refused too.
	check("10 stores on a fresh Redis", 10, 1, 10)
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	storeN("flushed", 10)
	check("10 more after SCRIPT FLUSH", 20, 2, 20)
}

// BenchmarkStoreRetries stores retries the way a URL failing every attempt
// makes them: 64 at once, of one hub, each job with a 512 B body, on a
// Redis of the benchmark's own. redis-cpu-µs/store is that server's CPU per
// store (INFO cpu), which ns/op leaves out.
func BenchmarkStoreRetries(b *testing.B) {
	c := redistest.StartServer(b).Client(b)
	ctx := context.Background()
	store := newRetryStore(c, "b:", 0, 0)
	body := []byte(`{"data":"` + strings.Repeat("x", 500) + `"}`)
	due := time.Now().Add(time.Hour)
	const writers = 64
	var seq atomic.Int64
	storeOne := func() {
		n := seq.Add(1)
		job := &deliveryv1.DeliveryJob{HubId: "h", DeliveryId: fmt.Sprintf("dlv_%012d", n), UrlId: "url_1", Attempt: 2, Body: body}
		if err := store.store(ctx, job, due); err != nil {
			b.Error(err)
		}
	}
	storeOne() // Redis has the script from here on
	before := redistest.CPUMicros(b, c)
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N/writers + 1
	for range writers {
		wg.Go(func() {
			for range per {
				storeOne()
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric((redistest.CPUMicros(b, c)-before)/float64(per*writers), "redis-cpu-µs/store")
}
