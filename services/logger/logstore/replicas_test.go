package logstore_test

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/hubhooks/hubhooks/pkg/daemon"
	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/redistest"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/logger/logstore"
)

// TestWriteWaitsForReplicas: with WaitReplicas, Write returns nil only once
// a replica holds the batch, though the batch is written through the
// client's pool and WAIT counts only its own connection's writes; a frozen
// replica makes it fail, so the logger writes the batch again.
func TestWriteWaitsForReplicas(t *testing.T) {
	t.Parallel()
	primary, replica := redistest.StartReplicated(t)
	pc, rc := primary.Client(t), replica.Client(t)
	ctx := context.Background()
	opts := logstore.Options{Prefix: "t:", WaitReplicas: 1, WaitTimeout: 300 * time.Millisecond, Now: func() time.Time { return t0.Add(time.Hour) }}
	s, err := logstore.New(pc, opts)
	if err != nil {
		t.Fatal(err)
	}
	batch := func(id string) error {
		_, err := s.Write(ctx, []*deliveryv1.AttemptRecorded{
			record(newJob("hub-a", id, t0), 1, hubhooksv1.StatusSucceeded, 200),
			record(newJob("hub-b", id, t0), 1, hubhooksv1.StatusSucceeded, 200),
		})
		return err
	}
	// The replica's link is up before the primary counts it in a WAIT.
	poll.Until(t, 10*time.Second, "a batch acknowledged by the replica", func() bool { return batch("kept-1") == nil })

	replica.Signal(syscall.SIGSTOP)
	err = batch("refused")
	replica.Signal(syscall.SIGCONT)
	if !errors.Is(err, daemon.ErrNotReplicated) {
		t.Fatalf("Write while the replica is frozen: %v, want ErrNotReplicated", err)
	}
	if err := batch("kept-2"); err != nil {
		t.Fatalf("Write once the replica is back: %v", err)
	}
	// What Write confirmed is on the replica when it takes over.
	if err := rc.ReplicaOf(ctx, "no", "one").Err(); err != nil {
		t.Fatal(err)
	}
	primary.Kill()
	promoted, err := logstore.New(rc, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, hub := range []string{"hub-a", "hub-b"} {
		for _, id := range []string{"kept-1", "kept-2"} {
			e, err := promoted.Get(ctx, hub, id)
			if err != nil {
				t.Fatalf("the promoted replica: %s/%s: %v", hub, id, err)
			}
			if e.Log.GetStatus() != hubhooksv1.StatusSucceeded.APIName() {
				t.Errorf("the promoted replica: %s/%s is %v, want succeeded", hub, id, e.Log.GetStatus())
			}
		}
	}
}
