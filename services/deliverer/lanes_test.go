package deliverer

import (
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

func TestStuckEndpointFailsFast(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	hang, u, _ := hangingServer(t, "url_hang")
	cfg := e.addHub("hub1", u)
	c := baseConfig(e.prefix, 0, time.Hour)
	c.PerURLConcurrency = 2
	c.PerURLQueue = 2
	e.start(t, c, newSender(t, webhook.WithTimeout(time.Minute)))
	var first []*deliveryJob
	for i := range 4 { // two POSTs hang, two wait in the queue
		first = append(first, e.publishJob(t, cfg, u, i, false))
	}
	poll.Until(t, 10*time.Second, "the hanging endpoint's slots taken", func() bool { return hang.count() == 2 })
	time.Sleep(1200 * time.Millisecond) // the lane has finished nothing for a second: stuck
	job := e.publishJob(t, cfg, u, 99, false)
	poll.Until(t, 10*time.Second, "the stuck URL's next job recorded", func() bool { return len(e.records.of(job.GetDeliveryId())) == 1 })
	rec := e.records.of(job.GetDeliveryId())[0]
	if rec.GetStatus() != hubhooksv1.StatusRetrying || rec.GetResponse().GetError() != ErrEndpointStuck.Error() {
		t.Fatalf("record: status %q error %q, want retrying with %q", rec.GetStatus(), rec.GetResponse().GetError(), ErrEndpointStuck)
	}
	if hang.count() != 2 {
		t.Fatalf("POSTs %d, want 2: the stuck URL's next job must not be POSTed", hang.count())
	}
	// The two that waited in the queue fail fast too once they reach the
	// hold limit, rather than go round through the retry store.
	for _, j := range first[2:] {
		poll.Until(t, 10*time.Second, "a queued job of the stuck URL recorded", func() bool { return len(e.records.of(j.GetDeliveryId())) == 1 })
		if rec := e.records.of(j.GetDeliveryId())[0]; rec.GetResponse().GetError() != ErrEndpointStuck.Error() {
			t.Errorf("queued job recorded with error %q, want %q", rec.GetResponse().GetError(), ErrEndpointStuck)
		}
	}
}

func TestHangingEndpointDoesNotDelayHealthyOne(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	hang, ua, unblock := hangingServer(t, "url_hang")
	healthy := &hook{respond: status(204)}
	okSrv := httptest.NewServer(healthy)
	t.Cleanup(okSrv.Close)
	ub := &hubhooksv1.CallbackUrl{Id: "url_ok", Url: okSrv.URL}
	cfg := e.addHub("hub1", ua, ub)
	c := baseConfig(e.prefix, 0, 10*ms)
	c.Concurrency = 8
	c.PerURLConcurrency = 2
	c.PerURLQueue = 2
	c.PerHubConcurrency = 4
	e.start(t, c, newSender(t, webhook.WithTimeout(time.Minute)))

	// The hanging URL's jobs go first, more than its slots and queue hold.
	var hung []string
	for i := range 10 {
		hung = append(hung, e.publishJob(t, cfg, ua, i, false).GetDeliveryId())
	}
	poll.Until(t, 10*time.Second, "the hanging endpoint's slots taken", func() bool { return hang.count() == 2 })
	var ok []string
	for i := range 20 {
		ok = append(ok, e.publishJob(t, cfg, ub, i, false).GetDeliveryId())
	}
	poll.Until(t, 20*time.Second, "every healthy delivery succeeded", func() bool {
		for _, id := range ok {
			if !slices.Equal(e.records.statuses(id), []hubhooksv1.DeliveryStatus{hubhooksv1.StatusSucceeded}) {
				return false
			}
		}
		return true
	})
	// The hanging endpoint still holds its first POSTs: none of its
	// deliveries has been recorded, and no more than its slots were used.
	for _, id := range hung {
		if got := e.records.statuses(id); len(got) != 0 {
			t.Fatalf("hanging delivery %s recorded %v before release", id, got)
		}
	}
	if n := hang.count(); n != 2 {
		t.Fatalf("hanging endpoint got %d concurrent POSTs, want its limit 2", n)
	}

	unblock()
	poll.Until(t, 20*time.Second, "hanging deliveries completed after release", func() bool {
		for _, id := range hung {
			if !e.records.final(id) {
				return false
			}
		}
		return true
	})
}
