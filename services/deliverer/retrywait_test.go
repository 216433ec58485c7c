package deliverer

import (
	"context"
	"errors"
	"log/slog"
	"slices"
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
