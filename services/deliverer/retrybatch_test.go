package deliverer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
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
	execs, waits := commandCalls(t, pc, "exec"), commandCalls(t, pc, "wait")
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
	if execs, waits := commandCalls(t, pc, "exec"), commandCalls(t, pc, "wait"); execs > n/2 || waits > n/2 {
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

// commandCalls is how many times Redis ran cmd since its stats were reset.
func commandCalls(t *testing.T, c *redis.Client, cmd string) int {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(info) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls=")
		if !ok {
			continue
		}
		calls, _, _ := strings.Cut(rest, ",")
		v, err := strconv.Atoi(calls)
		if err != nil {
			t.Fatalf("commandstats %q: %v", line, err)
		}
		return v
	}
	return 0
}
