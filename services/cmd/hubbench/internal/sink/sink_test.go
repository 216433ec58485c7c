package sink

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestEventIDRoundTrip(t *testing.T) {
	sent := time.Unix(1_800_000_000, 123456789)
	id := EventID("r1a2b", 42, sent)
	class, seq, got, ok := ParseEventID(id)
	if !ok || class != "r1a2b" || seq != 42 || !got.Equal(sent) {
		t.Fatalf("ParseEventID(%q) = %q %d %v %v", id, class, seq, got, ok)
	}
	for _, bad := range []string{"", "evt-1", "-1-2", "r-x-2", "r-1-y", "r-1"} {
		if _, _, _, ok := ParseEventID(bad); ok {
			t.Errorf("ParseEventID(%q) ok, want not ok", bad)
		}
	}
}

func post(t *testing.T, url, webhookID, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("webhook-id", webhookID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestSinkCounts(t *testing.T) {
	s := New(0, "run", "warm")
	urls, err := s.Listen(2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	sent := time.Now().Add(-5 * time.Millisecond)
	ev := func(class string, seq int64) string {
		return `{"id":"msg_x","domain_event":{"id":"` + EventID(class, seq, sent) + `"}}`
	}
	// The same webhook to two URLs is two deliveries; again to the first URL is a duplicate.
	for _, c := range []struct{ url, id, body string }{
		{urls[0], "msg_1", ev("run", 1)},
		{urls[1], "msg_1", ev("run", 1)},
		{urls[0], "msg_1", ev("run", 1)},
		{urls[0], "msg_2", ev("run", 2)},
		{urls[0], "msg_w", ev("warm", 1)},
		{urls[0], "msg_o", ev("other", 1)},
	} {
		if got := post(t, c.url, c.id, c.body); got != http.StatusOK {
			t.Fatalf("status %d", got)
		}
	}
	if got := post(t, urls[0], "", ev("run", 3)); got != http.StatusBadRequest {
		t.Errorf("no webhook-id: status %d, want 400", got)
	}
	if got := post(t, urls[0], "msg_3", "not json"); got != http.StatusBadRequest {
		t.Errorf("bad body: status %d, want 400", got)
	}
	run := s.Class("run").Counts()
	if run.Received != 4 || run.Unique != 3 || run.Duplicates != 1 {
		t.Errorf("run counts = %+v, want received 4 unique 3 duplicates 1", run)
	}
	if run.First.IsZero() || run.Last.Before(run.First) {
		t.Errorf("first/last = %v/%v", run.First, run.Last)
	}
	if w := s.Class("warm").Counts(); w.Unique != 1 {
		t.Errorf("warm unique = %d, want 1", w.Unique)
	}
	if s.Unknown() != 1 || s.Errors() != 2 {
		t.Errorf("unknown=%d errors=%d, want 1 and 2", s.Unknown(), s.Errors())
	}
	lat := s.Class("run").Latency()
	if lat.Count != 3 || lat.MinMs < 5 {
		t.Errorf("latency = %+v, want 3 samples of at least 5ms", lat)
	}
	if s.Class("nope") != nil {
		t.Errorf("uncounted class has counters")
	}
}

func TestSinkStatus(t *testing.T) {
	s := New(http.StatusServiceUnavailable, "run")
	urls, err := s.Listen(1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	body := `{"domain_event":{"id":"` + EventID("run", 1, time.Now()) + `"}}`
	if got := post(t, urls[0], "msg_1", body); got != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", got)
	}
}

func TestSinkClassesAndDestinations(t *testing.T) {
	s := New(0)
	urls, err := s.Listen(2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	body := func(class string, seq int64, sent time.Time) string {
		return `{"domain_event":{"id":"` + EventID(class, seq, sent) + `"}}`
	}
	// Before the class is added its webhooks are unknown.
	post(t, urls[0], "msg_0", body("q", 0, time.Now()))
	if s.Unknown() != 1 || s.Class("q") != nil {
		t.Fatalf("unknown=%d, class %v: want 1 and no counters", s.Unknown(), s.Class("q"))
	}
	q := s.AddClass("q")
	if again := s.AddClass("q"); again != q {
		t.Errorf("AddClass twice made new counters")
	}
	now := time.Now()
	post(t, urls[0], "msg_1", body("q", 1, now.Add(-50*time.Millisecond)))
	post(t, urls[0], "msg_2", body("q", 2, now.Add(-50*time.Millisecond)))
	post(t, urls[1], "msg_1", body("q", 1, now.Add(-5*time.Millisecond)))
	dest := func(u string) string { return strings.TrimPrefix(u, "http://") }
	if n := q.ReceivedAt(dest(urls[0])); n != 2 {
		t.Errorf("ReceivedAt(first URL) = %d, want 2", n)
	}
	by := q.LatencyByDestination()
	if len(by) != 2 {
		t.Fatalf("LatencyByDestination has %d destinations, want 2: %v", len(by), by)
	}
	if a, b := by[dest(urls[0])], by[dest(urls[1])]; a.Count != 2 || b.Count != 1 || a.MinMs < 50 || b.MaxMs >= a.MinMs {
		t.Errorf("per destination: first %+v, second %+v: want 2 samples of >= 50ms and 1 sample below them", a, b)
	}
}

func TestSinkAnswerDelay(t *testing.T) {
	s := New(0, "run")
	urls, err := s.Listen(2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	if err := s.SetAnswerDelay(urls[:1], 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	took := func(url string, seq int64) time.Duration {
		start := time.Now()
		post(t, url, fmt.Sprint("msg_", seq), `{"domain_event":{"id":"`+EventID("run", seq, start)+`"}}`)
		return time.Since(start)
	}
	if d := took(urls[0], 1); d < 200*time.Millisecond {
		t.Errorf("the delayed listener answered after %s, want 200ms or more", d)
	}
	if d := took(urls[1], 2); d >= 200*time.Millisecond {
		t.Errorf("the other listener answered after %s, want at once", d)
	}
	if lat := s.Class("run").Latency(); lat.MaxMs >= 200 {
		t.Errorf("latency up to %.1f ms, want it taken on arrival, before the delay", lat.MaxMs)
	}
	if err := s.SetAnswerDelay(nil, 0); err != nil {
		t.Fatal(err)
	}
	if d := took(urls[0], 3); d >= 200*time.Millisecond {
		t.Errorf("after the delay was removed the listener answered after %s", d)
	}
}
