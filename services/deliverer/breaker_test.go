package deliverer

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/hubhooks/hubhooks/pkg/poll"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

func TestBreakerOpensAndFailsFast(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	// An endpoint that refuses connections: every attempt is a transport failure.
	srv := httptest.NewServer(http.NotFoundHandler())
	deadURL := srv.URL
	srv.Close()
	u := &hubhooksv1.CallbackUrl{Id: "url_a", Url: deadURL}
	cfg := e.addHub("hub1", u)
	c := baseConfig(e.prefix, 0, 10*ms, 10*ms, 10*ms)
	c.BreakerFailures = 2
	c.BreakerCooldown = 400 * ms
	e.start(t, c, newSender(t))
	job := e.publishJob(t, cfg, u, 1, false)
	poll.Until(t, 10*time.Second, "dead", func() bool { return e.records.final(job.GetDeliveryId()) })
	recs := e.records.of(job.GetDeliveryId())
	if got := e.records.statuses(job.GetDeliveryId()); !slices.Equal(got, []hubhooksv1.DeliveryStatus{hubhooksv1.StatusRetrying, hubhooksv1.StatusRetrying, hubhooksv1.StatusRetrying, hubhooksv1.StatusDead}) {
		t.Fatalf("statuses %v", got)
	}
	for _, rec := range recs[:2] {
		if rec.GetResponse().GetError() == ErrCircuitOpen.Error() {
			t.Errorf("attempt %d failed fast before the breaker could open", rec.GetAttempt())
		}
	}
	// Attempt 3 fails fast; attempt 4 waits for the cool-down (not the 10 ms
	// of the schedule) and is the half-open probe: a real, failed POST.
	if recs[2].GetResponse().GetError() != ErrCircuitOpen.Error() {
		t.Errorf("attempt 3 error %q, want %q", recs[2].GetResponse().GetError(), ErrCircuitOpen)
	}
	if gap := recs[3].GetStartedAt().AsTime().Sub(recs[2].GetStartedAt().AsTime()); gap < 300*ms {
		t.Errorf("attempt 4 came %s after the failed-fast attempt 3, want at least the cool-down (400 ms, jittered)", gap)
	}
	if recs[3].GetResponse().GetError() == ErrCircuitOpen.Error() {
		t.Errorf("attempt 4 failed fast; want the half-open probe")
	}
}

func TestPromptErrorAnswersDoNotOpenTheBreaker(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := &hook{respond: status(500)}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u := &hubhooksv1.CallbackUrl{Id: "url_a", Url: srv.URL}
	cfg := e.addHub("hub1", u)
	c := baseConfig(e.prefix, 0, 10*ms, 10*ms, 10*ms)
	c.BreakerFailures = 2
	c.BreakerCooldown = time.Hour
	e.start(t, c, newSender(t))
	job := e.publishJob(t, cfg, u, 1, false)
	poll.Until(t, 10*time.Second, "dead", func() bool { return e.records.final(job.GetDeliveryId()) })
	if h.count() != 4 {
		t.Fatalf("POSTs %d, want 4: a prompt 500 is retried on the schedule, not failed fast", h.count())
	}
}
