package deliverer

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/urlguard"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

func TestRetryAfterHonouredWithinBounds(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := &hook{respond: func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(429)
		}
	}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u := &hubhooksv1.CallbackUrl{Id: "url_a", Url: srv.URL}
	cfg := e.addHub("hub1", u)
	c := baseConfig(e.prefix, 0, 10*ms, 10*ms)
	c.MaxRetryAfter = 700 * ms
	e.start(t, c, newSender(t))
	job := e.publishJob(t, cfg, u, 1, false)
	poll.Until(t, 10*time.Second, "success", func() bool { return e.records.final(job.GetDeliveryId()) })
	recs := e.records.of(job.GetDeliveryId())
	if got := e.records.statuses(job.GetDeliveryId()); !slices.Equal(got, []hubhooksv1.DeliveryStatus{hubhooksv1.StatusRetrying, hubhooksv1.StatusSucceeded}) {
		t.Fatalf("statuses %v", got)
	}
	first := recs[0]
	wait := first.GetNextAttemptAt().AsTime().Sub(first.GetStartedAt().AsTime())
	// Retry-After (1h) beats the schedule (10ms) but is capped at 700ms.
	if wait < 700*ms || wait > 700*ms+time.Duration(first.GetResponse().GetDurationMs())*ms+200*ms {
		t.Fatalf("next attempt %s after the first, want about 700ms", wait)
	}
	if second := recs[1].GetStartedAt().AsTime(); second.Before(first.GetNextAttemptAt().AsTime()) {
		t.Fatalf("second attempt at %s, before next_attempt_at %s", second, first.GetNextAttemptAt().AsTime())
	}
}

func TestRestartResumesPendingRetries(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := &hook{respond: func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(503)
		}
	}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u := &hubhooksv1.CallbackUrl{Id: "url_a", Url: srv.URL}
	cfg := e.addHub("hub1", u)
	c := baseConfig(e.prefix, 0, 2*time.Second)
	c.Jitter = -1
	_, stop := e.start(t, c, newSender(t))
	job := e.publishJob(t, cfg, u, 1, false)
	poll.Until(t, 10*time.Second, "retrying", func() bool {
		return slices.Equal(e.records.statuses(job.GetDeliveryId()), []hubhooksv1.DeliveryStatus{hubhooksv1.StatusRetrying})
	})
	stop()
	if n, err := e.newStore().pending(context.Background()); err != nil || n != 1 {
		t.Fatalf("after stop: pending retries %d (%v), want 1", n, err)
	}
	if !e.consumerDrained(t) {
		t.Fatal("job of attempt 1 not acked before stop returned")
	}

	e.start(t, c, newSender(t))
	poll.Until(t, 10*time.Second, "success after restart", func() bool { return e.records.final(job.GetDeliveryId()) })
	if got := e.records.statuses(job.GetDeliveryId()); !slices.Equal(got, []hubhooksv1.DeliveryStatus{hubhooksv1.StatusRetrying, hubhooksv1.StatusSucceeded}) {
		t.Fatalf("statuses %v", got)
	}
	if h.count() != 2 {
		t.Fatalf("POSTs %d, want 2", h.count())
	}
}

func TestOutcomeDelays(t *testing.T) {
	s := &Service{cfg: Config{Schedule: []time.Duration{0, time.Minute, time.Hour}, Jitter: 0.2, MaxRetryAfter: 2 * time.Hour}.WithDefaults()}
	now := time.Unix(1000, 0)
	job := func(attempt int32) *deliveryJob { return &deliveryJob{Attempt: attempt} }
	tests := []struct {
		name     string
		attempt  int32
		res      webhook.Result
		want     hubhooksv1.DeliveryStatus
		min, max time.Duration
	}{
		{"first failure uses schedule[1] with jitter", 1, webhook.Result{StatusCode: 500}, hubhooksv1.StatusRetrying, 48 * time.Second, 72 * time.Second},
		{"429 Retry-After longer than the schedule", 1, webhook.Result{StatusCode: 429, RetryAfter: 10 * time.Minute}, hubhooksv1.StatusRetrying, 10 * time.Minute, 10 * time.Minute},
		{"503 Retry-After capped", 1, webhook.Result{StatusCode: 503, RetryAfter: 100 * time.Hour}, hubhooksv1.StatusRetrying, 2 * time.Hour, 2 * time.Hour},
		{"Retry-After shorter than the schedule", 2, webhook.Result{StatusCode: 503, RetryAfter: time.Second}, hubhooksv1.StatusRetrying, 48 * time.Minute, 72 * time.Minute},
		{"Retry-After ignored on 500", 1, webhook.Result{StatusCode: 500, RetryAfter: 10 * time.Hour}, hubhooksv1.StatusRetrying, 48 * time.Second, 72 * time.Second},
		{"last attempt dead", 3, webhook.Result{StatusCode: 500}, hubhooksv1.StatusDead, 0, 0},
		{"beyond the schedule dead", 9, webhook.Result{StatusCode: 500}, hubhooksv1.StatusDead, 0, 0},
		{"2xx", 3, webhook.Result{StatusCode: 201}, hubhooksv1.StatusSucceeded, 0, 0},
		{"410", 1, webhook.Result{StatusCode: 410}, hubhooksv1.StatusFailed, 0, 0},
		{"guard", 1, webhook.Result{Err: fmt.Errorf("dial: %w", urlguard.ErrBlocked)}, hubhooksv1.StatusFailed, 0, 0},
		{"circuit open retried", 1, webhook.Result{Err: ErrCircuitOpen}, hubhooksv1.StatusRetrying, 48 * time.Second, 72 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, next := s.outcome(job(tt.attempt), tt.res, now)
			if got != tt.want {
				t.Fatalf("status %s, want %s", got, tt.want)
			}
			if got != hubhooksv1.StatusRetrying {
				return
			}
			if d := next.Sub(now); d < tt.min || d > tt.max {
				t.Fatalf("delay %s, want in [%s, %s]", d, tt.min, tt.max)
			}
		})
	}
}
