package deliverer

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/natstest"
	"github.com/hubhooks/hubhooks/pkg/redistest"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
)

// newScheduler is a deliverer that is not run, on an embedded NATS and a
// Redis of its own (whose command counts and script cache are the test's):
// the test calls its scheduler itself.
func newScheduler(t testing.TB) (*Service, *redistest.Server) {
	t.Helper()
	_, _, js := natstest.Start(t)
	rs := redistest.StartServer(t)
	ctx := context.Background()
	if err := eventbus.Ensure(ctx, js, eventbus.DeliveriesStreamConfig(eventbus.Options{}), eventbus.AttemptsStreamConfig(eventbus.Options{})); err != nil {
		t.Fatal(err)
	}
	sender, err := webhook.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig("t:")
	cfg.ClaimLease = 20 * time.Second
	s, err := New(cfg, js, rs.Client(t), newTestConfigs(), emptyEventLog, sender)
	if err != nil {
		t.Fatal(err)
	}
	return s, rs
}

// storeDue stores n retries of hub due now, numbered from first.
func storeDue(t testing.TB, s *Service, hub string, first, n int, body []byte) []*deliveryv1.DeliveryJob {
	t.Helper()
	jobs := make([]*deliveryv1.DeliveryJob, n)
	for i := range n {
		jobs[i] = &deliveryv1.DeliveryJob{HubId: hub, DeliveryId: fmt.Sprintf("dlv_%012d", first+i), UrlId: "url_1", Attempt: 2, Body: body}
		if err := s.retries.store(context.Background(), jobs[i], time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	return jobs
}

// TestSchedulerRepublishesDueRetries: every due retry is republished once,
// as its own job (its Nats-Msg-Id the delivery's and attempt's), and its
// entry removed, in batches of ClaimBatch; the same after Redis lost its
// scripts (they go by text then).
func TestSchedulerRepublishesDueRetries(t *testing.T) {
	t.Parallel()
	s, rs := newScheduler(t)
	ctx := context.Background()
	check := func(when string, want, counted int) {
		t.Helper()
		for s.scheduleOnce(ctx, false) {
		}
		if left, err := s.retries.pending(ctx); err != nil || left != 0 {
			t.Fatalf("%s: %d retries pending (%v), want none", when, left, err)
		}
		info, err := s.js.Stream(ctx, eventbus.StreamDeliveries)
		if err != nil {
			t.Fatal(err)
		}
		if n := int(info.CachedInfo().State.Msgs); n != want {
			t.Fatalf("%s: %d jobs in the stream, want %d", when, n, want)
		}
		if n := int(testutil.ToFloat64(s.metrics.retriesPublished)); n != counted {
			t.Fatalf("%s: %d retries counted republished, want %d", when, n, counted)
		}
	}
	storeDue(t, s, "h1", 0, 150, nil)
	storeDue(t, s, "h2", 150, 100, nil)
	check("250 due", 250, 250)

	if err := rs.Client(t).ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	storeDue(t, s, "h1", 250, 30, nil)
	check("30 more after SCRIPT FLUSH", 280, 280)

	// The same retries due again (a lease ran out after the publish): their
	// jobs are dropped as duplicates, and the entries still removed.
	storeDue(t, s, "h2", 150, 20, nil)
	check("20 republished again", 280, 300)
}

// TestRepublishKeepsTheEntriesOfJobsNotStored: a job that JetStream does not
// store keeps its entry (to be claimed again when its lease ends), and the
// others of its batch are removed.
func TestRepublishKeepsTheEntriesOfJobsNotStored(t *testing.T) {
	t.Parallel()
	s, _ := newScheduler(t)
	ctx := context.Background()
	storeDue(t, s, "h1", 0, 5, nil)
	entries, err := s.retries.claim(ctx, false, time.Now(), s.cfg.ClaimLease, 10)
	if err != nil || len(entries) != 5 {
		t.Fatalf("claimed %d (%v), want 5", len(entries), err)
	}
	due := make([]dueRetry, len(entries))
	for i, e := range entries {
		due[i] = dueRetry{entry: e, msg: s.scheduleEntry(ctx, false, e)}
	}
	due[2].msg = &nats.Msg{Subject: "not.a.stream", Data: due[2].msg.Data, Header: due[2].msg.Header}
	s.republish(ctx, due)
	if left, err := s.retries.pending(ctx); err != nil || left != 1 {
		t.Fatalf("%d retries pending (%v), want the one not stored", left, err)
	}
	if v, err := s.retries.rdb.HGet(ctx, s.retries.hubKey("h1"), entries[2].field).Result(); err != nil || v != entries[2].value {
		t.Fatalf("the entry not stored holds %q (%v), want its claimed value", v, err)
	}
	if n := int(testutil.ToFloat64(s.metrics.retriesPublished)); n != 4 {
		t.Fatalf("%d retries counted republished, want 4", n)
	}
}

// BenchmarkRepublishDueRetries: the scheduler republishing retries that are
// all due (a URL that came back, a replay of failures), a batch of
// ClaimBatch at a time, each job with a 512 B body, on an embedded NATS and
// a Redis of its own. redis-cpu-µs/retry is that server's CPU per retry
// (INFO cpu), which ns/op leaves out.
func BenchmarkRepublishDueRetries(b *testing.B) {
	s, rs := newScheduler(b)
	rdb := rs.Client(b)
	ctx := context.Background()
	body := []byte(`{"data":"` + strings.Repeat("x", 500) + `"}`)
	var redisCPU float64
	for i := 0; i < b.N; i += s.cfg.ClaimBatch {
		b.StopTimer()
		storeDue(b, s, fmt.Sprint("h", i%10), i, min(s.cfg.ClaimBatch, b.N-i), body)
		before := redistest.CPUMicros(b, rdb)
		b.StartTimer()
		s.scheduleOnce(ctx, false)
		b.StopTimer()
		redisCPU += redistest.CPUMicros(b, rdb) - before
	}
	if left, err := s.retries.pending(ctx); err != nil || left != 0 {
		b.Fatalf("%d retries left (%v), want none", left, err)
	}
	b.ReportMetric(redisCPU/float64(b.N), "redis-cpu-µs/retry")
}
