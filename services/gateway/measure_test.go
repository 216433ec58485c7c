package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/logger/logstore"
)

// TestMeasureLogPages measures what the Event logs tab asks of the server at
// a hub's cap of 100,000 entries: the first page, every page of a walk
// through all of them, and filtered pages, over HTTP (gateway, gRPC, Redis).
// HUBHOOKS_MEASURE=1 runs it (docs/performance.md has the figures).
func TestMeasureLogPages(t *testing.T) {
	if os.Getenv("HUBHOOKS_MEASURE") != "1" {
		t.Skip("a measurement: HUBHOOKS_MEASURE=1 runs it")
	}
	const n = 100_000
	h := startHubd(t)
	store, err := logstore.New(h.rdb, logstore.Options{Prefix: h.prefix})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-24 * time.Hour)
	types := []string{"API.CREATED", "API.UPDATED", "BILLINGPLAN.CREATED", "USER.CREATED"}
	statuses := []hubhooksv1.DeliveryStatus{hubhooksv1.StatusSucceeded, hubhooksv1.StatusSucceeded, hubhooksv1.StatusSucceeded, hubhooksv1.StatusFailed}
	for b := 0; b < n; b += 500 {
		var recs []*deliveryv1.AttemptRecorded
		for i := b; i < b+500; i++ {
			id := fmt.Sprintf("dlv_m%06d", i)
			created := start.Add(time.Duration(i) * 500 * time.Millisecond)
			job := &deliveryv1.DeliveryJob{
				DeliveryId: id, HubId: "big", WebhookEventId: "msg_" + id, EventType: types[i%4],
				UrlId: "url_1", Url: "https://example.com/hooks", Body: []byte(`{"id":"` + id + `","data":{"name":"Weather"}}`),
				CreatedAt: timestamppb.New(created), DomainEventId: fmt.Sprintf("evt_%d", i/5), DomainEventType: "API.CREATED", Attempt: 1,
			}
			code := int32(200)
			if statuses[i%4] == hubhooksv1.StatusFailed {
				code = 500
			}
			recs = append(recs, &deliveryv1.AttemptRecorded{
				Job: job, Attempt: 1, Status: statuses[i%4], StartedAt: timestamppb.New(created),
				Request:  &hubhooksv1.HttpRequest{Url: job.Url, Method: "POST", Body: string(job.Body)},
				Response: &hubhooksv1.HttpResponse{StatusCode: code, DurationMs: 12, Body: `{"ok":true}`},
			})
		}
		if _, err := store.Write(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}
	page := func(query string) (time.Duration, int, string) {
		t0 := time.Now()
		r := h.call(t, "GET", "/v1/hubs/big/event-logs?"+query, adminToken, nil)
		took := time.Since(t0)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", query, r.status, r.body)
		}
		var p struct {
			Logs []json.RawMessage `json:"event_logs"`
			Next string            `json:"next_page_token"`
		}
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		return took, len(p.Logs), p.Next
	}
	stats := func(name string, ds []time.Duration) {
		slices.Sort(ds)
		t.Logf("%-46s n=%4d  min %6.2f ms  median %6.2f ms  p95 %6.2f ms  max %6.2f ms", name, len(ds),
			ms(ds[0]), ms(ds[len(ds)/2]), ms(ds[len(ds)*95/100]), ms(ds[len(ds)-1]))
	}
	var first []time.Duration
	for range 50 {
		d, got, _ := page("page_size=50")
		if got != 50 {
			t.Fatalf("first page: %d entries", got)
		}
		first = append(first, d)
	}
	stats("first page, 50 entries", first)
	var walk []time.Duration
	total, token := 0, ""
	for {
		d, got, next := page("page_size=50&page_token=" + url.QueryEscape(token))
		walk, total = append(walk, d), total+got
		if token = next; token == "" || len(walk) == 2000 {
			break
		}
	}
	stats(fmt.Sprintf("every page of a walk (%d entries)", total), walk)
	for _, f := range []string{"event_type=BILLINGPLAN.CREATED", "status=failed", "response_class=5xx", "domain_event_id=evt_19000", "status=dead"} {
		var ds []time.Duration
		for range 20 {
			d, _, _ := page("page_size=50&" + f)
			ds = append(ds, d)
		}
		stats("filtered: "+f, ds)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
