package deliverer

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// publishBurst publishes webhook events first to first+n-1 of cfg's hub to
// urls as fan-out batches of perMsg events each, as the expander does under
// load, and returns the jobs.
func (e *testEnv) publishBurst(t *testing.T, cfg *hubhooksv1.HubConfig, first, n, perMsg int, urls ...*hubhooksv1.CallbackUrl) []*deliveryv1.DeliveryJob {
	return e.publishBatches(t, cfg, "", first, n, perMsg, urls...)
}

// publishBacklog is publishBurst on the hub's overflow shard, as a replay
// or a recovery publishes.
func (e *testEnv) publishBacklog(t *testing.T, cfg *hubhooksv1.HubConfig, first, n, perMsg int, urls ...*hubhooksv1.CallbackUrl) []*deliveryv1.DeliveryJob {
	return e.publishBatches(t, cfg, eventbus.OverflowDeliverySubject(cfg.GetHubId()), first, n, perMsg, urls...)
}

// publishBatches publishes the batches of publishBurst on subject (the
// hub's live subject when empty).
func (e *testEnv) publishBatches(t *testing.T, cfg *hubhooksv1.HubConfig, subject string, first, n, perMsg int, urls ...*hubhooksv1.CallbackUrl) []*deliveryv1.DeliveryJob {
	t.Helper()
	var all []*deliveryv1.DeliveryJob
	for i := first; i < first+n; i += perMsg {
		var fs []*deliveryv1.DeliveryFanout
		for j := i; j < min(i+perMsg, first+n); j++ {
			fs = append(fs, fanoutOf(t, cfg, j, urls...))
		}
		m, err := eventbus.NewFanoutBatchMsg(cfg.GetHubId(), fs)
		if err == nil && subject != "" {
			m.Subject = subject
		}
		e.publish(t, m, err)
		jobs, err := eventbus.DecodeJobs(m.Header, m.Data)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, jobs...)
	}
	return all
}

// slowly answers 204 after d.
func slowly(d time.Duration) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) {
		time.Sleep(d)
		w.WriteHeader(http.StatusNoContent)
	}
}

func (r *recorder) succeeded(jobs []*deliveryv1.DeliveryJob) int {
	n := 0
	for _, j := range jobs {
		if st := r.statuses(j.GetDeliveryId()); len(st) > 0 && st[len(st)-1] == hubhooksv1.StatusSucceeded {
			n++
		}
	}
	return n
}

// fairConfig holds few jobs, so that a burst is many times what the
// replica holds: 32 held, 16 of them from overflow; a hub's share is 8.
func fairConfig(prefix string) Config {
	c := baseConfig(prefix, 0)
	c.Concurrency = 8
	c.PerURLConcurrency = 4
	c.PerHubConcurrency = 4
	return c
}

func TestBurstOfOneHubDoesNotDelayAnother(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	burstHooks, burstURLs := hookServers(t, slowly(10*time.Millisecond), slowly(10*time.Millisecond))
	quietHooks, quietURLs := hookServers(t, status(204))
	burst, quiet := e.addHub("hub-burst", burstURLs...), e.addHub("hub-quiet", quietURLs...)
	svc, _ := e.start(t, fairConfig(e.prefix), newSender(t))

	// 600 jobs ahead of the quiet hub's in the live queue; four POSTs at a
	// time of 10 ms each: about 1.5 s of work.
	jobs := e.publishBurst(t, burst, 0, 300, 10, burstURLs...)
	published := time.Now()
	q := e.publishJob(t, quiet, quietURLs[0], 1, false)
	poll.Until(t, 10*time.Second, "the quiet hub's delivery", func() bool { return e.records.final(q.GetDeliveryId()) })
	took, done := time.Since(published), e.records.succeeded(jobs)
	// In one queue it would wait for the burst's first ~570 jobs.
	if done > len(jobs)/2 {
		t.Errorf("the quiet hub's job was delivered after %d of the burst's %d jobs (%s), want before half", done, len(jobs), took)
	}
	poll.Until(t, 30*time.Second, "the whole burst", func() bool { return e.records.succeeded(jobs) == len(jobs) })
	if n := burstHooks[0].count() + burstHooks[1].count(); n != len(jobs) {
		t.Errorf("%d POSTs for %d jobs", n, len(jobs))
	}
	if quietHooks[0].count() != 1 {
		t.Errorf("the quiet hub got %d POSTs, want 1", quietHooks[0].count())
	}
	if moved := testutil.ToFloat64(svc.metrics.overflowMoved); moved == 0 {
		t.Error("no message moved to overflow")
	}
	poll.Until(t, 10*time.Second, "every message settled", func() bool { return e.consumerDrained(t) })
}

// A hub's backlog in its overflow shard (a replay or recovery publishes
// there from the start) does not send the hub's own live traffic behind
// it: jobs taken from overflow do not count in the hub's share of live
// work, and those of its backlog parked because a lane was full come back
// to overflow, not live; so its live message is taken at once, not moved
// behind the backlog.
func TestOverflowBacklogDoesNotDelayItsHubsLiveTraffic(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	// Four POSTs at a time per URL of 40 ms each: about 3 s of backlog, so
	// that a loaded machine's pauses do not decide the comparison.
	hooks, urls := hookServers(t, slowly(40*time.Millisecond), slowly(40*time.Millisecond))
	cfg := e.addHub("hub-replaying", urls...)
	e.start(t, fairConfig(e.prefix), newSender(t))

	// 600 jobs in the hub's overflow shard, as a replay publishes them.
	backlog := e.publishBacklog(t, cfg, 0, 300, 10, urls...)
	poll.Until(t, 10*time.Second, "the backlog being delivered", func() bool { return e.records.succeeded(backlog) > 0 })
	live := e.publishJob(t, cfg, urls[0], 1, false)
	poll.Until(t, 10*time.Second, "the live delivery", func() bool { return e.records.final(live.GetDeliveryId()) })
	if done := e.records.succeeded(backlog); done > len(backlog)/2 {
		t.Errorf("the hub's live job was delivered after %d of its %d overflow jobs, want before half", done, len(backlog))
	}
	poll.Until(t, 30*time.Second, "the whole backlog", func() bool { return e.records.succeeded(backlog) == len(backlog) })
	if n := hooks[0].count() + hooks[1].count(); n != len(backlog)+1 {
		t.Errorf("%d POSTs for %d jobs", n, len(backlog)+1)
	}
}

// hubsInShards returns two hub ids whose overflow shards are a < b.
func hubsInShards(t *testing.T) (a, b string) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		for j := 0; j < 1000; j++ {
			a, b = fmt.Sprint("hub-a", i), fmt.Sprint("hub-b", j)
			if eventbus.OverflowShard(a) < eventbus.OverflowShard(b) {
				return a, b
			}
		}
	}
	t.Fatal("no two hubs in increasing shards")
	return "", ""
}

func TestBacklogsOfTwoHubsTakeTurns(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	nameA, nameB := hubsInShards(t)
	_, urlsA := hookServers(t, slowly(5*time.Millisecond))
	_, urlsB := hookServers(t, slowly(5*time.Millisecond))
	hubA, hubB := e.addHub(nameA, urlsA...), e.addHub(nameB, urlsB...)
	// Both backlogs wait in their overflow shards before a deliverer runs:
	// A's shard comes first in a round, and A alone has enough to fill the
	// overflow room every time.
	var jobsA, jobsB []*deliveryv1.DeliveryJob
	for i := range 300 / 20 {
		jobsA = append(jobsA, e.publishOverflow(t, hubA, i*20, 20, urlsA...)...)
	}
	for i := range 300 / 20 {
		jobsB = append(jobsB, e.publishOverflow(t, hubB, i*20, 20, urlsB...)...)
	}
	e.start(t, fairConfig(e.prefix), newSender(t))
	var mu sync.Mutex
	worst := 1.0 // B's progress relative to A's, at its lowest
	poll.Until(t, 30*time.Second, "both backlogs delivered", func() bool {
		a, b := e.records.succeeded(jobsA), e.records.succeeded(jobsB)
		if a >= 60 && a < len(jobsA) {
			mu.Lock()
			worst = min(worst, float64(b)/float64(a))
			mu.Unlock()
		}
		return a == len(jobsA) && b == len(jobsB)
	})
	// In turns, B keeps pace with A; first come, first served, B would
	// have nothing until A's shard is empty.
	t.Logf("B's progress at its lowest: %.0f %% of A's", 100*worst)
	if worst < 0.5 {
		t.Errorf("B's deliveries fell to %.0f %% of A's while A's backlog lasted, want at least 50 %%", 100*worst)
	}
}

// publishOverflow publishes a fan-out batch of n webhook events of cfg's
// hub, from first, straight to the hub's overflow shard.
func (e *testEnv) publishOverflow(t *testing.T, cfg *hubhooksv1.HubConfig, first, n int, urls ...*hubhooksv1.CallbackUrl) []*deliveryv1.DeliveryJob {
	t.Helper()
	var fs []*deliveryv1.DeliveryFanout
	for j := first; j < first+n; j++ {
		fs = append(fs, fanoutOf(t, cfg, j, urls...))
	}
	m, err := eventbus.NewFanoutBatchMsg(cfg.GetHubId(), fs)
	if err != nil {
		t.Fatal(err)
	}
	e.publish(t, eventbus.OverflowCopyOf(cfg.GetHubId(), m.Header, m.Data, ""), nil)
	jobs, err := eventbus.DecodeJobs(m.Header, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

// A URL that never answers fills its lane (its POSTs waiting for the
// timeout, its queue), but that is its lane's share of live work, not its
// hub's: the fan-outs that carry a job for it and one for a healthy URL of
// the same hub keep being taken live, not moved to the hub's overflow shard
// behind a backlog.
func TestDeadURLDoesNotSendItsHubsHealthyURLToOverflow(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	deadHook, dead, _ := hangingServer(t, "url_dead")
	hooks, healthy := hookServers(t, status(204))
	cfg := e.addHub("hub-noisy", dead, healthy[0])
	c := fairConfig(e.prefix)
	c.PerHubConcurrency = 8  // the dead URL's 4 POSTs leave the healthy URL 4 slots
	c.BreakerFailures = 1000 // the dead URL's breaker stays closed
	c.HoldLimit = 5 * time.Second
	// Its POSTs time out every half second, so its lane is never stuck
	// (none answered for a second) and may queue 16 jobs, as a lane may in
	// the second after each batch of its timeouts (and a new lane in its
	// first second); its queue holds the jobs for the test's duration.
	svc, _ := e.start(t, c, newSender(t, webhook.WithTimeout(500*time.Millisecond)))

	// One fan-out at a time: the dead URL's lane fills (4 POSTs hanging,
	// 16 queued, all from live messages: more than 2 x PerHubConcurrency),
	// and stays full; every fan-out is still taken live.
	var jobs []*deliveryv1.DeliveryJob
	most := 0 // the most jobs the replica held
	for i := range 50 {
		fan := e.publishFanout(t, cfg, i, dead, healthy[0])
		jobs = append(jobs, fan[1])
		poll.Until(t, 10*time.Second, "the healthy URL's delivery", func() bool { return e.records.final(fan[1].GetDeliveryId()) })
		most = max(most, svc.held.count())
	}
	if most < 20 {
		t.Errorf("the replica held %d jobs at most, want the dead URL's lane full (20)", most)
	}
	if n := testutil.ToFloat64(svc.metrics.overflowMoved); n > 0 {
		t.Errorf("%.0f of the %d fan-outs moved to overflow, want none", n, len(jobs))
	}
	if got := e.records.succeeded(jobs); got != len(jobs) {
		t.Errorf("%d of %d healthy deliveries succeeded", got, len(jobs))
	}
	if n := hooks[0].count(); n != len(jobs) {
		t.Errorf("the healthy URL got %d POSTs, want %d", n, len(jobs))
	}
	if n := deadHook.count(); n < 4 {
		t.Errorf("the dead URL got %d POSTs, want at least its lane's 4", n)
	}
}
