package logstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/logger/logstore"
)

// bigJob is a job with a body of n bytes.
func bigJob(hub, id string, created time.Time, n int) *deliveryv1.DeliveryJob {
	return newJob(hub, id, created, func(j *deliveryv1.DeliveryJob) {
		j.Body = []byte(`{"pad":"` + strings.Repeat("x", n) + `"}`)
	})
}

// TestMaxBytesPerHub: a hub's log is bounded in bytes as well as entries:
// the oldest entries go while the hub holds more, and the count follows
// entries that grow (retries), are trimmed and are purged.
func TestMaxBytesPerHub(t *testing.T) {
	ctx := context.Background()
	const body = 10 << 10
	s, rdb, prefix := newStore(t, logstore.Options{MaxBytesPerHub: 100 << 10})
	trimmed := 0
	for i := range 30 {
		job := bigJob("hub1", fmt.Sprintf("dlv_%02d", i), t0.Add(time.Duration(i)*time.Second), body)
		trimmed += write(t, s, record(job, 1, hubhooksv1.StatusRetrying, 500)).Trimmed
		if i%3 == 0 {
			trimmed += write(t, s, record(job, 2, hubhooksv1.StatusSucceeded, 200)).Trimmed // grows, becomes a hash
		}
	}
	// A neighbour of the same size is not touched.
	write(t, s, record(bigJob("hub2", "dlv_other", t0, body), 1, hubhooksv1.StatusSucceeded, 200))
	got, _ := listAll(t, s, logstore.Query{HubID: "hub1", PageSize: 100})
	if len(got) < 5 || len(got) > 10 || trimmed != 30-len(got) {
		t.Fatalf("%d entries left (%v), %d trimmed; want 100 KiB worth of 10 KiB entries left and the rest trimmed", len(got), got, trimmed)
	}
	if want := fmt.Sprintf("dlv_%02d", 30-len(got)); got[0] != "dlv_29" || got[len(got)-1] != want {
		t.Fatalf("left %v, want the newest, dlv_29 to %s", got, want)
	}
	total, err := strconv.Atoi(rdb.Get(ctx, prefix+"log:{hub1}:b").Val())
	if err != nil || total > 100<<10 || total < 100<<10-2*body {
		t.Fatalf("hub total %d bytes (%v), want just under 100 KiB", total, err)
	}
	assertHubHolds(t, rdb, prefix, "hub1", len(got))
	assertHubHolds(t, rdb, prefix, "hub2", 1)
}

// TestPurge removes a hub's entries before a time, then all of them; it is
// idempotent and leaves other hubs alone.
func TestPurge(t *testing.T) {
	ctx := context.Background()
	s, rdb, prefix := newStore(t, logstore.Options{})
	fixture(t, s, 40) // hub1: dlv_0000..dlv_0039, one a second; hub2: one entry
	n, err := s.Purge(ctx, "hub1", t0.Add(25*time.Second))
	if err != nil || n != 25 {
		t.Fatalf("Purge before +25s = %d, %v; want 25", n, err)
	}
	got, _ := listAll(t, s, logstore.Query{HubID: "hub1", PageSize: 100})
	if len(got) != 15 || got[len(got)-1] != "dlv_0025" {
		t.Fatalf("after the purge: %v, want dlv_0039..dlv_0025", got)
	}
	if n, err := s.Purge(ctx, "hub1", t0.Add(25*time.Second)); err != nil || n != 0 {
		t.Fatalf("Purge again = %d, %v; want 0", n, err)
	}
	assertHubHolds(t, rdb, prefix, "hub1", 15)
	if n, err := s.Purge(ctx, "hub1", time.Time{}); err != nil || n != 15 {
		t.Fatalf("Purge all = %d, %v; want 15", n, err)
	}
	assertHubHolds(t, rdb, prefix, "hub1", 0)
	if got, _ := listAll(t, s, logstore.Query{HubID: "hub2", PageSize: 10}); !slices.Equal(got, []string{"dlv_0001"}) {
		t.Fatalf("hub2 after purging hub1: %v", got)
	}
	// A delivery still under way gets a new row from its next attempt.
	write(t, s, record(newJob("hub1", "dlv_0030", t0.Add(30*time.Second)), 2, hubhooksv1.StatusSucceeded, 200))
	if got, _ := listAll(t, s, logstore.Query{HubID: "hub1", PageSize: 10}); !slices.Equal(got, []string{"dlv_0030"}) {
		t.Fatalf("after a later attempt: %v", got)
	}
}

// TestDeleteHub removes every entry of the hub and drops the records of
// deliveries created before the deletion, however they arrive: written
// after the deletion, or under way during it (the deletion's mark set, the
// purge not run yet). Deliveries created after it are logged.
func TestDeleteHub(t *testing.T) {
	ctx := context.Background()
	s, rdb, prefix := newStore(t, logstore.Options{})
	fixture(t, s, 20)
	deleted := t0.Add(time.Minute)
	for range 2 { // idempotent
		if err := s.DeleteHub(ctx, "hub1", deleted); err != nil {
			t.Fatal(err)
		}
	}
	assertHubHolds(t, rdb, prefix, "hub1", 0)
	if got, _ := listAll(t, s, logstore.Query{HubID: "hub2", PageSize: 10}); !slices.Equal(got, []string{"dlv_0001"}) {
		t.Fatalf("hub2 after deleting hub1: %v", got)
	}

	// Records of old deliveries arriving later: a retry's cancellation, a
	// late attempt; a new delivery after the deletion is kept.
	old := newJob("hub1", "dlv_0003", t0.Add(3*time.Second))
	write(t, s, record(old, 2, hubhooksv1.StatusCancelled, 0), record(newJob("hub1", "dlv_0004", t0.Add(4*time.Second)), 1, hubhooksv1.StatusSucceeded, 200))
	write(t, s, record(old, 3, hubhooksv1.StatusCancelled, 0))
	write(t, s, record(newJob("hub1", "dlv_new", deleted.Add(time.Second)), 1, hubhooksv1.StatusSucceeded, 200))
	if got, _ := listAll(t, s, logstore.Query{HubID: "hub1", PageSize: 10}); !slices.Equal(got, []string{"dlv_new"}) {
		t.Fatalf("after late records: %v, want only the delivery created after the deletion", got)
	}
	if _, err := s.Get(ctx, "hub1", "dlv_0003"); !errors.Is(err, logstore.ErrNotFound) {
		t.Fatalf("late record of a deleted hub: %v, want ErrNotFound", err)
	}
	assertHubHolds(t, rdb, prefix, "hub1", 1)

	// A write under way when the hub is deleted: its entry exists (created
	// before the mark), the mark is set and the purge has not reached it
	// yet; its next record removes it.
	s3, rdb3, prefix3 := newStore(t, logstore.Options{})
	job := newJob("hub3", "dlv_racing", t0)
	write(t, s3, record(job, 1, hubhooksv1.StatusRetrying, 500))
	mark := prefix3 + "log:{hub3}:gone"
	if err := rdb3.Set(ctx, mark, fmt.Sprintf("%016x", (int64(1)<<60)-deleted.UnixMicro()), time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	write(t, s3, record(job, 2, hubhooksv1.StatusRetrying, 500))
	if _, err := s3.Get(ctx, "hub3", "dlv_racing"); !errors.Is(err, logstore.ErrNotFound) {
		t.Fatalf("entry of a deleted hub written during the deletion: %v, want ErrNotFound", err)
	}
	assertHubHolds(t, rdb3, prefix3, "hub3", 0)
}
