package logstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/logger/logstore"
)

// rerun is job made again in a later run: the same delivery id, created
// (its domain event stored by JetStream) at created, with its own body.
func rerun(job *deliveryv1.DeliveryJob, created time.Time) *deliveryv1.DeliveryJob {
	return newJob(job.HubId, job.DeliveryId, created, func(j *deliveryv1.DeliveryJob) {
		j.Body = []byte(fmt.Sprintf(`{"id":"%s","created_at":"%s"}`, job.WebhookEventId, created.Format(time.RFC3339)))
	})
}

// TestOneRowPerDeliveryEveryAttemptKept: a delivery made again in a later
// run (its domain event published again past the de-duplication window)
// stays one row, at the time of its first run, with every attempt of both
// runs numbered in order with its own time; in whatever order and however
// often the records arrive.
func TestOneRowPerDeliveryEveryAttemptKept(t *testing.T) {
	first := newJob("hub1", "dlv_twice", t0)
	second := rerun(first, t0.Add(13*time.Minute))
	r1 := record(first, 1, hubhooksv1.StatusRetrying, 500)
	r2 := record(first, 2, hubhooksv1.StatusSucceeded, 200)
	s1 := record(second, 1, hubhooksv1.StatusSucceeded, 204)
	tests := []struct {
		name    string
		batches [][]*deliveryv1.AttemptRecorded
	}{
		{"in order", [][]*deliveryv1.AttemptRecorded{{r1}, {r2}, {s1}}},
		{"one batch", [][]*deliveryv1.AttemptRecorded{{r1, r2, s1}}},
		{"later run first", [][]*deliveryv1.AttemptRecorded{{s1}, {r2}, {r1}}},
		{"later run first, one batch", [][]*deliveryv1.AttemptRecorded{{s1, r1, r2}}},
		{"duplicates", [][]*deliveryv1.AttemptRecorded{{r1, r1}, {s1, r2}, {s1, r1, r2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, rdb, prefix := newStore(t, logstore.Options{})
			for _, b := range tt.batches {
				write(t, s, b...)
			}
			for _, q := range []logstore.Query{
				{HubID: "hub1"}, {HubID: "hub1", EventType: first.EventType}, {HubID: "hub1", URL: first.Url},
				{HubID: "hub1", EventID: first.WebhookEventId}, {HubID: "hub1", DomainEventID: first.DomainEventId},
			} {
				q.PageSize = 10
				p, err := s.List(ctx, q)
				if err != nil || len(p.Logs) != 1 {
					t.Fatalf("List(%+v) = %v, %v; want one row", q, p, err)
				}
				l := p.Logs[0]
				if !l.CreatedAt.AsTime().Equal(t0) || l.Attempts != 3 || l.Status != hubhooksv1.StatusSucceeded.APIName() || l.ResponseStatusCode != 204 {
					t.Fatalf("List(%+v) row: created %v, %d attempts, %s %d; want %v, 3, succeeded 204 (the latest run)",
						q, l.CreatedAt.AsTime(), l.Attempts, l.Status, l.ResponseStatusCode, t0)
				}
			}
			e, err := s.Get(ctx, "hub1", "dlv_twice")
			if err != nil {
				t.Fatal(err)
			}
			if !e.Log.CreatedAt.AsTime().Equal(t0) || e.Log.Attempts != 3 {
				t.Fatalf("Get: created %v, %d attempts; want %v, 3", e.Log.CreatedAt.AsTime(), e.Log.Attempts, t0)
			}
			want := []struct {
				started time.Time
				code    int32
				body    string
			}{
				{r1.StartedAt.AsTime(), 500, string(first.Body)},
				{r2.StartedAt.AsTime(), 200, string(first.Body)},
				{s1.StartedAt.AsTime(), 204, ""}, // the latest run's body: e.Job's, sent once
			}
			if len(e.Attempts) != len(want) {
				t.Fatalf("%d attempts, want %d", len(e.Attempts), len(want))
			}
			for i, a := range e.Attempts {
				w := want[i]
				if a.Number != int32(i+1) || !a.StartedAt.AsTime().Equal(w.started) || a.Response.StatusCode != w.code || a.Request.Body != w.body {
					t.Errorf("attempt %d: number %d, started %v, status %d, body %q; want %d, %v, %d, %q",
						i, a.Number, a.StartedAt.AsTime(), a.Response.StatusCode, a.Request.Body, i+1, w.started, w.code, w.body)
				}
			}
			if string(e.Job.Body) != string(second.Body) {
				t.Errorf("job body %q, want the latest run's %q", e.Job.Body, second.Body)
			}
			assertHubHolds(t, rdb, prefix, "hub1", 1)
		})
	}
}

// TestRowTimeIsTheJobsCreatedAt: the list orders, filters and shows rows by
// the job's created_at (the time hubhooks accepted the domain event),
// whatever the attempts' times, and a record's own created_at cannot move a
// row it did not create.
func TestRowTimeIsTheJobsCreatedAt(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t, logstore.Options{})
	var recs []*deliveryv1.AttemptRecorded
	for i := range 5 {
		job := newJob("hub1", fmt.Sprintf("dlv_%d", i), t0.Add(time.Duration(i)*time.Minute))
		r := record(job, 1, hubhooksv1.StatusSucceeded, 200)
		r.StartedAt = timestamppb.New(t0.Add(time.Duration(10-i) * time.Hour)) // attempts in the reverse order
		recs = append(recs, r)
	}
	write(t, s, recs...)
	got, _ := listAll(t, s, logstore.Query{HubID: "hub1", PageSize: 2, Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)})
	if !slices.Equal(got, []string{"dlv_3", "dlv_2", "dlv_1"}) {
		t.Fatalf("listed %v, want [dlv_3 dlv_2 dlv_1] (by created_at, newest first)", got)
	}
	p, err := s.List(ctx, logstore.Query{HubID: "hub1", PageSize: 1})
	if err != nil || !p.Logs[0].CreatedAt.AsTime().Equal(t0.Add(4*time.Minute)) {
		t.Fatalf("newest row %v, %v; want created at %v", p, err, t0.Add(4*time.Minute))
	}
}
