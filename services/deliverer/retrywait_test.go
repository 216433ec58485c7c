package deliverer

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/daemon"
	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/redistest"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
)

// TestRetryStoreWaitsForReplicas runs the retry store on a Redis primary
// with one replica (processes of the test's own). Waiting for one replica
// (RedisWaitReplicas), a store succeeds while the replica keeps up and
// fails while it does not (its WAIT runs on the connection of the write);
// when the replica is cut off and promoted, as a failover does, it holds
// every retry stored with the wait, and not the one stored without it.
func TestRetryStoreWaitsForReplicas(t *testing.T) {
	t.Parallel()
	primary, replica := redistest.StartReplicated(t)
	pc, rc := primary.Client(t), replica.Client(t)
	ctx := context.Background()
	waiting := newRetryStore(pc, "t:", 1, 300*time.Millisecond)
	plain := newRetryStore(pc, "t:", 0, 0)
	job := func(id string) *deliveryv1.DeliveryJob {
		return &deliveryv1.DeliveryJob{HubId: "h", DeliveryId: id, UrlId: "u", Attempt: 2}
	}
	due := time.Now().Add(time.Hour)

	// The replica's link is up before the primary counts it in a WAIT:
	// the first store is tried until the replica acknowledges it.
	var err error
	poll.Until(t, 10*time.Second, "a store acknowledged by the replica", func() bool {
		err = waiting.store(ctx, job("kept-1"), due)
		return err == nil
	})
	// A frozen replica is connected but acknowledges nothing: WAIT on the
	// write's connection counts 0 of 1 (on another connection it would
	// count the replica, which has everything that connection wrote).
	replica.Signal(syscall.SIGSTOP)
	err = waiting.store(ctx, job("refused"), due)
	replica.Signal(syscall.SIGCONT)
	if !errors.Is(err, daemon.ErrNotReplicated) {
		t.Fatalf("store while the replica is frozen: %v, want ErrNotReplicated", err)
	}
	if err := waiting.store(ctx, job("kept-2"), due); err != nil {
		t.Fatalf("store once the replica is back: %v", err)
	}

	// The replica is cut off from the primary and promoted; the primary
	// goes on acknowledging writes that never reach it, then dies.
	if err := rc.ReplicaOf(ctx, "no", "one").Err(); err != nil {
		t.Fatal(err)
	}
	if err := waiting.store(ctx, job("refused-2"), due); !errors.Is(err, daemon.ErrNotReplicated) {
		t.Fatalf("store with no replica: %v, want ErrNotReplicated", err)
	}
	if err := plain.store(ctx, job("lost"), due); err != nil {
		t.Fatalf("store without waiting: %v", err)
	}
	primary.Kill()
	got, err := rc.ZRange(ctx, newRetryStore(rc, "t:", 0, 0).due, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	// "refused" is there or not (the replica got it after its SIGCONT):
	// its store failed, so its message was redelivered either way.
	got = slices.DeleteFunc(got, func(m string) bool { return m == "h/refused" })
	if want := []string{"h/kept-1", "h/kept-2"}; !slices.Equal(got, want) {
		t.Fatalf("the promoted replica holds %v, want %v (and not h/lost, acknowledged without waiting)", got, want)
	}
}

// TestUnstoreSaysWhetherAnEntryStands: a store that fails its WAIT removes
// its own entry again (the message comes back as usual), but when the
// store kept an entry of the same attempt parked more often, that entry
// stands and may bring the attempt back: unstore says so, and the message
// waits standingSettle more (backAfter), so the entry's attempt reaches
// the event log first and the message, checked against it, is settled
// without a second POST.
func TestUnstoreSaysWhetherAnEntryStands(t *testing.T) {
	t.Parallel()
	primary, replica := redistest.StartReplicated(t)
	ctx := context.Background()
	s := &Service{retries: newRetryStore(primary.Client(t), "t:", 1, 300*time.Millisecond),
		cfg: Config{OpTimeout: 2 * time.Second}, log: slog.New(slog.DiscardHandler)}
	job := func(id string, deferrals int32) *deliveryv1.DeliveryJob {
		return &deliveryv1.DeliveryJob{HubId: "h", DeliveryId: id, UrlId: "u", Attempt: 1, Deferrals: deferrals,
			CreatedAt: timestamppb.New(time.Unix(1700000000, 0))}
	}
	due := time.Now().Add(time.Hour)
	poll.Until(t, 10*time.Second, "a store acknowledged by the replica", func() bool {
		_, err := s.retries.storeEntry(ctx, job("parked-twice", 2), due)
		return err == nil
	})
	replica.Signal(syscall.SIGSTOP)
	defer replica.Signal(syscall.SIGCONT)

	// An older copy parked again: the entry parked twice is kept.
	v, err := s.retries.storeEntry(ctx, job("parked-twice", 1), due)
	if !errors.Is(err, daemon.ErrNotReplicated) {
		t.Fatalf("store while the replica is frozen: %v, want ErrNotReplicated", err)
	}
	if s.unstore(job("parked-twice", 1), v) {
		t.Error("unstore removed an entry that was not its own")
	}
	if got := backAfter(time.Second, true); got != time.Second+standingSettle {
		t.Errorf("back after %v with an entry standing, want %v", got, time.Second+standingSettle)
	}

	// A first parking: its own entry is written, then removed.
	v, err = s.retries.storeEntry(ctx, job("parked-once", 1), due)
	if !errors.Is(err, daemon.ErrNotReplicated) {
		t.Fatalf("store while the replica is frozen: %v, want ErrNotReplicated", err)
	}
	if !s.unstore(job("parked-once", 1), v) {
		t.Error("unstore did not remove the entry it wrote")
	}
	members, err := primary.Client(t).ZRange(ctx, s.retries.due, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"h/parked-twice"}; !slices.Equal(members, want) {
		t.Errorf("entries %v, want %v", members, want)
	}
}

// settled records how a job's message was settled.
type settled struct {
	mu    sync.Mutex
	how   string
	delay time.Duration
}

func (m *settled) set(how string, d time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.how, m.delay = how, d
	return nil
}
func (m *settled) Ack() error                         { return m.set("ack", 0) }
func (m *settled) Nak() error                         { return m.set("nak", 0) }
func (m *settled) NakWithDelay(d time.Duration) error { return m.set("nak", d) }
func (m *settled) InProgress() error                  { return nil }

// TestParkingPausesAfterAFailedWait: once a parking's store is not
// replicated in time, parking pauses (parkPause): a job that cannot run
// soon is nak'ed with its parking's delay, and no entry is written that a
// failover could leave beside its message; after the pause, jobs are
// parked again.
func TestParkingPausesAfterAFailedWait(t *testing.T) {
	t.Parallel()
	primary, replica := redistest.StartReplicated(t)
	ctx := context.Background()
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{retries: newRetryStore(primary.Client(t), "t:", 1, 300*time.Millisecond), metrics: m,
		cfg: Config{OpTimeout: 2 * time.Second, QueueFullDelay: 100 * time.Millisecond, PollInterval: time.Second},
		log: slog.New(slog.DiscardHandler)}
	job := func(id string) *deliveryv1.DeliveryJob {
		return &deliveryv1.DeliveryJob{HubId: "h", DeliveryId: id, UrlId: "u", Attempt: 1, CreatedAt: timestamppb.Now()}
	}
	entries := func() []string {
		t.Helper()
		got, err := primary.Client(t).ZRange(ctx, s.retries.due, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	poll.Until(t, 10*time.Second, "a parking acknowledged by the replica", func() bool {
		msg := &settled{}
		s.parkQueued(msg, job("first"))
		return msg.how == "ack"
	})

	replica.Signal(syscall.SIGSTOP)
	failed := &settled{}
	s.parkQueued(failed, job("not-replicated"))
	replica.Signal(syscall.SIGCONT)
	if failed.how != "nak" || !s.parkingPaused(time.Now()) {
		t.Fatalf("a parking not replicated: message %s, paused %v; want nak'ed and parking paused", failed.how, s.parkingPaused(time.Now()))
	}
	paused := &settled{}
	s.parkQueued(paused, job("while-paused"))
	if paused.how != "nak" || paused.delay <= 0 {
		t.Errorf("a job while parking is paused: %s after %v, want nak'ed with its parking's delay", paused.how, paused.delay)
	}
	if got, want := entries(), []string{"h/first"}; !slices.Equal(got, want) {
		t.Errorf("entries %v, want %v (neither the one not replicated nor one while paused)", got, want)
	}

	poll.Until(t, 10*time.Second, "parking again after the pause", func() bool {
		msg := &settled{}
		s.parkQueued(msg, job("after"))
		return msg.how == "ack"
	})
}
