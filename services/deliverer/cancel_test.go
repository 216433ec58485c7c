package deliverer

import (
	"context"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/poll"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

func TestCancelPendingRetries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(*hubhooksv1.HubConfig)
	}{
		{"URL removed", func(c *hubhooksv1.HubConfig) { c.CallbackUrls = c.CallbackUrls[1:] }},
		{"triggers disabled", func(c *hubhooksv1.HubConfig) { c.EventsEnabled = false }},
		{"URL disabled", func(c *hubhooksv1.HubConfig) { c.CallbackUrls[0].Disabled = true }},
		{"type taken away", func(c *hubhooksv1.HubConfig) { c.CallbackUrls[0].EventTypes = []string{"API.UPDATED"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t)
			h := &hook{respond: status(500)}
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			ua := &hubhooksv1.CallbackUrl{Id: "url_a", Url: srv.URL + "/a"}
			ub := &hubhooksv1.CallbackUrl{Id: "url_b", Url: srv.URL + "/b"}
			cfg := e.addHub("hub1", ua, ub)
			// Long enough that the retry is still pending when the config changes.
			e.start(t, baseConfig(e.prefix, 0, 30*time.Second, 30*time.Second), newSender(t))
			job := e.publishJob(t, cfg, ua, 1, false)
			poll.Until(t, 10*time.Second, "first attempt recorded", func() bool {
				return slices.Equal(e.records.statuses(job.GetDeliveryId()), []hubhooksv1.DeliveryStatus{hubhooksv1.StatusRetrying})
			})
			poll.Until(t, 5*time.Second, "retry stored", func() bool {
				n, _ := e.newStore().pending(context.Background())
				return n == 1
			})

			e.configs.set("hub1", tc.change)

			poll.Until(t, 10*time.Second, "cancelled record", func() bool { return e.records.final(job.GetDeliveryId()) })
			recs := e.records.of(job.GetDeliveryId())
			last := recs[len(recs)-1]
			if last.GetStatus() != hubhooksv1.StatusCancelled || last.GetAttempt() != 2 {
				t.Fatalf("last record %s attempt %d, want cancelled attempt 2", last.GetStatus(), last.GetAttempt())
			}
			// Nothing left anywhere that could POST again.
			poll.Until(t, 5*time.Second, "retry and outbox empty", func() bool {
				n1, _ := e.rdb.ZCard(context.Background(), e.prefix+"{retry}:due").Result()
				n2, _ := e.rdb.ZCard(context.Background(), e.prefix+"{retry}:cancel:due").Result()
				n3, _ := e.rdb.HLen(context.Background(), e.prefix+"{retry}:cancel:jobs").Result()
				n4, _ := e.rdb.HLen(context.Background(), e.prefix+"{retry}:hub:hub1").Result()
				return n1+n2+n3+n4 == 0
			})
			poll.Until(t, 5*time.Second, "job acked", func() bool { return e.consumerDrained(t) })
			if h.count() != 1 {
				t.Fatalf("POSTs %d, want 1", h.count())
			}
		})
	}
}

func TestJobForRemovedURLIsCancelled(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := &hook{}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ua := &hubhooksv1.CallbackUrl{Id: "url_a", Url: srv.URL}
	cfg := e.addHub("hub1", ua)
	e.configs.set("hub1", func(c *hubhooksv1.HubConfig) { c.CallbackUrls = nil })
	e.start(t, baseConfig(e.prefix, 0, 10*ms), newSender(t))
	job := e.publishJob(t, cfg, ua, 1, false)
	poll.Until(t, 10*time.Second, "terminal record", func() bool { return e.records.final(job.GetDeliveryId()) })
	if got := e.records.statuses(job.GetDeliveryId()); !slices.Equal(got, []hubhooksv1.DeliveryStatus{hubhooksv1.StatusCancelled}) {
		t.Fatalf("statuses %v", got)
	}
	if h.count() != 0 {
		t.Fatalf("POSTs %d, want 0", h.count())
	}
}

// A job whose domain event arrived before the triggers were last switched
// on is cancelled (they were off after it arrived), unless it is a test
// event or a redelivery; jobs without an arrival time are not judged by it.
func TestCancelReasonTriggersOffAfterArrival(t *testing.T) {
	on := time.Unix(1764158400, 0)
	cfg := &hubhooksv1.HubConfig{EventsEnabled: true, EventsEnabledAt: timestamppb.New(on),
		CallbackUrls: []*hubhooksv1.CallbackUrl{{Id: "url_1", Url: "https://a.example/hook"}}}
	job := func(arrived time.Time, mutate func(*deliveryv1.DeliveryJob)) *deliveryv1.DeliveryJob {
		j := &deliveryv1.DeliveryJob{UrlId: "url_1", Url: "https://a.example/hook"}
		if !arrived.IsZero() {
			j.EventArrivedAt = timestamppb.New(arrived)
		}
		if mutate != nil {
			mutate(j)
		}
		return j
	}
	for _, tc := range []struct {
		name string
		job  *deliveryv1.DeliveryJob
		want bool
	}{
		{"arrived before the triggers went on", job(on.Add(-time.Second), nil), true},
		{"arrived after", job(on.Add(time.Second), nil), false},
		{"no arrival time", job(time.Time{}, nil), false},
		{"redelivery", job(on.Add(-time.Hour), func(j *deliveryv1.DeliveryJob) { j.RedeliveryOf = "dlv_x" }), false},
		{"test event", job(on.Add(-time.Hour), func(j *deliveryv1.DeliveryJob) { j.Test = true }), false},
	} {
		if got := cancelReason(cfg, tc.job) != ""; got != tc.want {
			t.Errorf("%s: cancelled %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A job for a URL that is now disabled, or no longer takes the job's type,
// is cancelled; a test job is not.
func TestCancelReasonURLControls(t *testing.T) {
	cfg := &hubhooksv1.HubConfig{EventsEnabled: true, CallbackUrls: []*hubhooksv1.CallbackUrl{
		{Id: "url_off", Url: "https://a.example/", Disabled: true, DisabledReason: "failing"},
		{Id: "url_plans", Url: "https://b.example/", EventTypes: []string{"BILLINGPLAN.CREATED"}},
	}}
	for _, tc := range []struct {
		name, url, typ string
		test           bool
		want           string
	}{
		{"disabled URL", "url_off", "API.CREATED", false, "the URL is disabled: failing"},
		{"type the URL takes", "url_plans", "BILLINGPLAN.CREATED", false, ""},
		{"type the URL no longer takes", "url_plans", "API.CREATED", false, "the URL receives only [BILLINGPLAN.CREATED]"},
		{"test to a disabled URL", "url_off", "API.CREATED", true, ""},
	} {
		job := &deliveryv1.DeliveryJob{UrlId: tc.url, EventType: tc.typ, Test: tc.test}
		if got := cancelReason(cfg, job); got != tc.want {
			t.Errorf("%s: reason %q, want %q", tc.name, got, tc.want)
		}
	}
}

// needsCancel notes a hub when a change takes something away from a URL:
// the URL itself, its enabled state, or a type it took.
func TestNeedsCancel(t *testing.T) {
	url := func(types ...string) *hubhooksv1.CallbackUrl {
		return &hubhooksv1.CallbackUrl{Id: "u", EventTypes: types}
	}
	hub := func(u *hubhooksv1.CallbackUrl) *hubhooksv1.HubConfig {
		return &hubhooksv1.HubConfig{EventsEnabled: true, CallbackUrls: []*hubhooksv1.CallbackUrl{u}}
	}
	off := url()
	off.Disabled = true
	for _, tc := range []struct {
		name     string
		old, cur *hubhooksv1.CallbackUrl
		want     bool
	}{
		{"nothing changed", url("A.B"), url("A.B"), false},
		{"a type added", url("A.B"), url("A.B", "C.D"), false},
		{"every type again", url("A.B"), url(), false},
		{"a filter set", url(), url("A.B"), true},
		{"a type taken away", url("A.B", "C.D"), url("C.D"), true},
		{"disabled", url(), off, true},
		{"enabled", off, url(), false},
	} {
		if got := needsCancel(hub(tc.old), hub(tc.cur)); got != tc.want {
			t.Errorf("%s: needsCancel = %v, want %v", tc.name, got, tc.want)
		}
	}
}
