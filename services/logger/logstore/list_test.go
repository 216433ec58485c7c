package logstore_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/logger/logstore"
)

// TestListByCause: the filters that find what one domain event caused, by
// response class and by the test flag, alone and combined, on every page
// size.
func TestListByCause(t *testing.T) {
	s, _, _ := newStore(t, logstore.Options{})
	const n = 48
	codes := []int32{200, 301, 404, 503, 0, 204}
	var recs []*deliveryv1.AttemptRecorded
	for i := range n {
		job := newJob("hub1", fmt.Sprintf("dlv_%04d", i), t0.Add(time.Duration(i)*time.Second), func(j *deliveryv1.DeliveryJob) {
			j.DomainEventId = fmt.Sprintf("evt_%d", i/6) // six deliveries per domain event
			j.EventType = []string{"API.CREATED", "API.UPDATED"}[i%2]
			j.Test = i%8 == 0
			j.Url = []string{"https://A.example/h", "https://a.example:443/h"}[i%2] // one URL, two spellings
		})
		code := codes[i%len(codes)]
		st := hubhooksv1.StatusSucceeded
		if code < 200 || code >= 300 {
			st = hubhooksv1.StatusRetrying
		}
		recs = append(recs, record(job, 1, st, code))
	}
	write(t, s, recs...)
	yes, no := true, false
	want := func(pred func(i int) bool) []string {
		var out []string
		for i := n - 1; i >= 0; i-- {
			if pred(i) {
				out = append(out, fmt.Sprintf("dlv_%04d", i))
			}
		}
		return out
	}
	class := func(i int) int32 { return codes[i%len(codes)] }
	tests := []struct {
		name string
		q    logstore.Query
		want []string
	}{
		{"domain event", logstore.Query{DomainEventID: "evt_3"}, want(func(i int) bool { return i/6 == 3 })},
		{"2xx", logstore.Query{ResponseClass: logstore.Response2xx}, want(func(i int) bool { return class(i) == 200 || class(i) == 204 })},
		{"3xx", logstore.Query{ResponseClass: logstore.Response3xx}, want(func(i int) bool { return class(i) == 301 })},
		{"4xx", logstore.Query{ResponseClass: logstore.Response4xx}, want(func(i int) bool { return class(i) == 404 })},
		{"5xx", logstore.Query{ResponseClass: logstore.Response5xx}, want(func(i int) bool { return class(i) == 503 })},
		{"no response", logstore.Query{ResponseClass: logstore.ResponseNone}, want(func(i int) bool { return class(i) == 0 })},
		{"tests", logstore.Query{Test: &yes}, want(func(i int) bool { return i%8 == 0 })},
		{"not tests", logstore.Query{Test: &no}, want(func(i int) bool { return i%8 != 0 })},
		{"url in another spelling", logstore.Query{URL: "https://a.EXAMPLE/h"}, want(func(int) bool { return true })},
		{"domain event and 2xx and type", logstore.Query{DomainEventID: "evt_1", ResponseClass: logstore.Response2xx, EventType: "API.CREATED"},
			want(func(i int) bool { return i/6 == 1 && (class(i) == 200 || class(i) == 204) && i%2 == 0 })},
		{"tests and 2xx", logstore.Query{Test: &yes, ResponseClass: logstore.Response2xx}, want(func(i int) bool { return i%8 == 0 && (class(i) == 200 || class(i) == 204) })},
	}
	for _, tt := range tests {
		for _, size := range []int{500, 3} {
			t.Run(fmt.Sprintf("%s/page%d", tt.name, size), func(t *testing.T) {
				q := tt.q
				q.HubID, q.PageSize = "hub1", size
				got, _ := listAll(t, s, q)
				if !slices.Equal(got, tt.want) {
					t.Fatalf("got %v\nwant %v", got, tt.want)
				}
			})
		}
	}
}

// TestListTokenStableWhileWriting pages through a hub while entries keep
// arriving (newer ones, and ones whose time falls among those already
// listed): every entry that existed before the first page is listed
// exactly once, and nothing is listed twice.
func TestListTokenStableWhileWriting(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t, logstore.Options{})
	const before = 200
	var recs []*deliveryv1.AttemptRecorded
	for i := range before {
		recs = append(recs, record(newJob("hub1", fmt.Sprintf("dlv_old%04d", i), t0.Add(time.Duration(2*i)*time.Second)), 1, hubhooksv1.StatusSucceeded, 200))
	}
	write(t, s, recs...)

	var wg sync.WaitGroup
	var written atomic.Int64
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// Newer than everything, and between two existing entries.
			newer := record(newJob("hub1", fmt.Sprintf("dlv_new%04d", i), t0.Add(time.Hour+time.Duration(i)*time.Millisecond)), 1, hubhooksv1.StatusSucceeded, 200)
			between := record(newJob("hub1", fmt.Sprintf("dlv_mid%04d", i), t0.Add(time.Duration(2*(i%before)+1)*time.Second)), 1, hubhooksv1.StatusSucceeded, 200)
			// And a later attempt of an entry already there.
			again := record(newJob("hub1", fmt.Sprintf("dlv_old%04d", i%before), t0.Add(time.Duration(2*(i%before))*time.Second)), 2, hubhooksv1.StatusSucceeded, 200)
			if _, err := s.Write(ctx, []*deliveryv1.AttemptRecorded{newer, between, again}); err != nil {
				t.Error(err)
				return
			}
			written.Add(1)
		}
	}()
	seen := map[string]int{}
	q := logstore.Query{HubID: "hub1", PageSize: 7}
	for pages := 0; ; pages++ {
		p, err := s.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range p.Logs {
			seen[l.Id]++
		}
		if p.NextPageToken == "" || pages > 10000 {
			break
		}
		q.PageToken = p.NextPageToken
		// At least one write between two pages.
		for w, deadline := written.Load(), time.Now().Add(10*time.Second); written.Load() == w; {
			if time.Now().After(deadline) {
				t.Fatal("the writer stopped writing")
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	close(stop)
	wg.Wait()
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s listed %d times", id, n)
		}
	}
	for i := range before {
		if id := fmt.Sprintf("dlv_old%04d", i); seen[id] != 1 {
			t.Errorf("%s, there before the first page, listed %d times", id, seen[id])
		}
	}
}
