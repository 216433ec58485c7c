package deliverer

import (
	"slices"
	"testing"
	"time"

	"github.com/hubhooks/hubhooks/pkg/poll"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// A deliverer started before its config cache has the snapshot takes no job
// until the snapshot is there (each job would otherwise ask configsvc, or
// fail while configsvc starts), and then delivers.
func TestFetchWaitsForConfigSnapshot(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	hooks, urls := hookServers(t, nil)
	h, u := hooks[0], urls[0]
	cfg := e.addHub("hub1", u)
	job := e.publishJob(t, cfg, u, 1, false)
	e.configs.ready = make(chan struct{})
	e.run(t, baseConfig(e.prefix, 0), newSender(t))
	time.Sleep(500 * time.Millisecond) // five fetch waits: time enough to take the job
	if n := h.count(); n != 0 {
		t.Fatalf("%d POSTs before the config snapshot", n)
	}
	close(e.configs.ready)
	poll.Until(t, 10*time.Second, "delivered once the snapshot is there", func() bool { return e.records.final(job.GetDeliveryId()) })
	if got := e.records.statuses(job.GetDeliveryId()); !slices.Equal(got, []hubhooksv1.DeliveryStatus{hubhooksv1.StatusSucceeded}) || h.count() != 1 {
		t.Fatalf("statuses %v, POSTs %d", got, h.count())
	}
	if n := e.configs.fetches.Load(); n != 0 {
		t.Fatalf("%d config fetches: the job should have found its hub in the cache", n)
	}
}

// fetchCount divides the room for held jobs by the recent jobs per message,
// so fetching fan-out batches does not take many times the room.
func TestFetchCountFollowsJobsPerMessage(t *testing.T) {
	f := fetchSizer{max: 64}
	if n := f.count(1024); n != 64 {
		t.Errorf("no message seen yet: fetch %d, want 64 (FetchBatch)", n)
	}
	for _, tc := range []struct{ perMsg, room, min, max int }{
		{60, 1024, 16, 18}, // about 17
		{60, 10, 1, 1},     // room for less than a message: still one
		{1, 40, 38, 40},    // back to single jobs: about the room
	} {
		for range 100 {
			f.observe(tc.perMsg)
		}
		if n := f.count(tc.room); n < tc.min || n > tc.max {
			t.Errorf("%d jobs per message, room %d: fetch %d messages, want %d-%d", tc.perMsg, tc.room, n, tc.min, tc.max)
		}
	}
}
