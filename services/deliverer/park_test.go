package deliverer

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// Attempts that outlive the hold limit leave the stream (their messages
// are acknowledged, an entry in Redis stands for them) and still end once,
// with their outcome, when the POST returns.
func TestLongAttemptsLeaveTheStream(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	slow, u, unblock := hangingServer(t, "url_slow")
	cfg := e.addHub("hub1", u)
	c := baseConfig(e.prefix, 0, 50*ms)
	c.HoldLimit = 200 * ms
	c.PerURLConcurrency = 2 // 2 in flight, 2 queued
	svc, _ := e.start(t, c, newSender(t, webhook.WithTimeout(time.Minute)))

	var ids []string
	for i := range 4 {
		ids = append(ids, e.publishJob(t, cfg, u, i, false).GetDeliveryId())
	}
	poll.Until(t, 5*time.Second, "two POSTs in flight", func() bool { return slow.count() == 2 })
	// Queued jobs cycle between Redis and the lane's queue while the lane
	// is full; at some moment all four are out of the stream.
	poll.Until(t, 5*time.Second, "every message acknowledged, 4 entries in Redis, while the POSTs hang", func() bool {
		n, err := svc.retries.pending(context.Background())
		return err == nil && n == 4 && e.consumerDrained(t)
	})
	for _, id := range ids {
		if got := e.records.statuses(id); len(got) != 0 {
			t.Fatalf("%s recorded %v while its POST hangs", id, got)
		}
	}

	unblock()
	poll.Until(t, 20*time.Second, "every delivery succeeded", func() bool {
		for _, id := range ids {
			if !slices.Equal(e.records.statuses(id), []hubhooksv1.DeliveryStatus{hubhooksv1.StatusSucceeded}) {
				return false
			}
		}
		return true
	})
	poll.Until(t, 5*time.Second, "no entry left in the retry store", func() bool {
		n, err := svc.retries.pending(context.Background())
		return err == nil && n == 0
	})
	time.Sleep(300 * ms) // nothing may come back
	if n := slow.count(); n != 4 {
		t.Fatalf("%d POSTs, want 4 (one per delivery)", n)
	}
}

// A parked attempt whose deliverer dies before recording it is made again
// by the next deliverer, when its entry falls due.
func TestParkedAttemptSurvivesItsDeliverer(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	var hang sync.Map // while set, the endpoint hangs
	hang.Store("on", true)
	h := &hook{respond: func(_ int, w http.ResponseWriter, r *http.Request) {
		if _, ok := hang.Load("on"); ok {
			<-r.Context().Done()
		}
	}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u := &hubhooksv1.CallbackUrl{Id: "url_1", Url: srv.URL}
	cfg := e.addHub("hub1", u)
	c := baseConfig(e.prefix, 0, 50*ms)
	c.HoldLimit = 200 * ms
	c.ShutdownTimeout = 100 * ms // the POST is abandoned at shutdown
	c.SendTimeout = time.Second
	c.OpTimeout = time.Second // the parked entry is due ~3s after parking
	_, stop := e.start(t, c, newSender(t, webhook.WithTimeout(time.Minute)))

	id := e.publishJob(t, cfg, u, 0, false).GetDeliveryId()
	poll.Until(t, 5*time.Second, "message acknowledged while the POST hangs", func() bool { return h.count() == 1 && e.consumerDrained(t) })
	stop()
	if got := e.records.statuses(id); len(got) != 0 {
		t.Fatalf("abandoned attempt recorded %v", got)
	}

	hang.Delete("on")
	e.start(t, c, newSender(t))
	poll.Until(t, 15*time.Second, "the attempt made again and recorded", func() bool {
		return slices.Equal(e.records.statuses(id), []hubhooksv1.DeliveryStatus{hubhooksv1.StatusSucceeded})
	})
	if n := h.count(); n != 2 {
		t.Fatalf("%d POSTs, want 2 (the abandoned one and the new one)", n)
	}
}

// TestSendTimeoutFollowsTheSender: a parked attempt's entry is sized by the
// sender's own timeout unless Config.SendTimeout says otherwise.
func TestSendTimeoutFollowsTheSender(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for _, tc := range []struct {
		set, want time.Duration
		sender    webhook.Sender
	}{
		{0, 42 * time.Second, newSender(t, webhook.WithTimeout(42*time.Second))},
		{3 * time.Second, 3 * time.Second, newSender(t, webhook.WithTimeout(42*time.Second))},
		{0, webhook.DefaultTimeout, timelessSender{}},
	} {
		c := baseConfig(e.prefix, 0, 20*ms)
		c.SendTimeout = tc.set
		svc, err := New(c, e.js, e.rdb, e.configs, e.eventLog, tc.sender)
		if err != nil {
			t.Fatal(err)
		}
		if svc.cfg.SendTimeout != tc.want {
			t.Errorf("SendTimeout %s with Config.SendTimeout %s: want %s", svc.cfg.SendTimeout, tc.set, tc.want)
		}
	}
}

// timelessSender is a webhook.Sender that does not report a timeout.
type timelessSender struct{}
