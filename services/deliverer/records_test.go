package deliverer

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// TestRecordBatcher: records published concurrently by many workers arrive
// exactly once, in messages on their own hub's subject that the logger
// decodes, several records per message. (pkg/batch tests the batching
// itself: limits, and each publish getting its own message's outcome.)
func TestRecordBatcher(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{} // delivery id -> times sent
	var msgs int
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{metrics: m, records: newRecordBatcher(func(m *nats.Msg) error {
		time.Sleep(time.Millisecond) // a round trip, so records pile up
		recs, err := eventbus.DecodeAttempts(m.Header, m.Data)
		if err != nil {
			t.Error(err)
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		msgs++
		for _, r := range recs {
			if m.Subject != eventbus.AttemptSubject(r.GetJob().GetHubId()) {
				t.Errorf("record of %s on %s", r.GetJob().GetHubId(), m.Subject)
			}
			got[r.GetJob().GetDeliveryId()]++
		}
		return nil
	}, 0)}
	const workers, per = 50, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				rec := &deliveryv1.AttemptRecorded{
					Job:     &deliveryv1.DeliveryJob{DeliveryId: fmt.Sprintf("dlv_%d_%d", w, i), HubId: fmt.Sprintf("hub-%d", w%3)},
					Attempt: 1, Status: hubhooksv1.StatusSucceeded,
				}
				if err := s.publishRecord(rec); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if len(got) != workers*per {
		t.Fatalf("%d records sent, want %d", len(got), workers*per)
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("%s sent %d times", id, n)
		}
	}
	if msgs >= workers*per {
		t.Errorf("%d messages for %d records: nothing was batched", msgs, workers*per)
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
