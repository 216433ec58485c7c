package logstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/redistest"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/logger/logstore"
)

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func newStore(t testing.TB, o logstore.Options) (*logstore.Store, *redis.Client, string) {
	t.Helper()
	rdb, prefix := redistest.New(t)
	o.Prefix = prefix
	if o.Now == nil {
		o.Now = func() time.Time { return t0.Add(time.Hour) }
	}
	s, err := logstore.New(rdb, o)
	if err != nil {
		t.Fatalf("logstore.New: %v", err)
	}
	return s, rdb, prefix
}

type jobOpt func(*deliveryv1.DeliveryJob)

func newJob(hub, id string, created time.Time, opts ...jobOpt) *deliveryv1.DeliveryJob {
	j := &deliveryv1.DeliveryJob{
		DeliveryId:      id,
		HubId:           hub,
		WebhookEventId:  "msg_" + id,
		EventType:       "API.CREATED",
		UrlId:           "url_1",
		Url:             "https://example.com/hook",
		Body:            []byte(`{"id":"msg_` + id + `","type":"API.CREATED"}`),
		CreatedAt:       timestamppb.New(created),
		DomainEventId:   "dom_" + id,
		DomainEventType: "API.CREATED",
		Attempt:         1,
	}
	for _, o := range opts {
		o(j)
	}
	return j
}

func record(job *deliveryv1.DeliveryJob, attempt int32, status hubhooksv1.DeliveryStatus, code int32) *deliveryv1.AttemptRecorded {
	r := &deliveryv1.AttemptRecorded{
		Job:     job,
		Attempt: attempt,
		Status:  status,
		Request: &hubhooksv1.HttpRequest{
			Url:     job.GetUrl(),
			Method:  "POST",
			Body:    string(job.GetBody()),
			Headers: map[string]string{"X-RapidAPI-Webhook-Secret": "whsec_realsecret", "webhook-id": job.GetWebhookEventId()},
		},
		Response:  &hubhooksv1.HttpResponse{StatusCode: code, Body: fmt.Sprintf("answer %d", attempt), DurationMs: 12},
		StartedAt: timestamppb.New(job.GetCreatedAt().AsTime().Add(time.Duration(attempt) * time.Minute)),
	}
	if status == hubhooksv1.StatusRetrying {
		r.NextAttemptAt = timestamppb.New(r.StartedAt.AsTime().Add(time.Minute))
	}
	return r
}

func write(t testing.TB, s *logstore.Store, recs ...*deliveryv1.AttemptRecorded) logstore.WriteResult {
	t.Helper()
	res, err := s.Write(context.Background(), recs)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return res
}

func TestWriteIsIdempotentAndOrderIndependent(t *testing.T) {
	job := newJob("hub1", "dlv_a", t0)
	r1 := record(job, 1, hubhooksv1.StatusRetrying, 500)
	r2 := record(job, 2, hubhooksv1.StatusRetrying, 503)
	r3 := record(job, 3, hubhooksv1.StatusSucceeded, 200)
	shuffled := []*deliveryv1.AttemptRecorded{r1, r2, r3, r1, r2, r3, r3}
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	tests := []struct {
		name    string
		batches [][]*deliveryv1.AttemptRecorded
	}{
		{"in order, one by one", [][]*deliveryv1.AttemptRecorded{{r1}, {r2}, {r3}}},
		{"in order, one batch", [][]*deliveryv1.AttemptRecorded{{r1, r2, r3}}},
		{"reversed", [][]*deliveryv1.AttemptRecorded{{r3}, {r2}, {r1}}},
		{"shuffled with duplicates", [][]*deliveryv1.AttemptRecorded{shuffled}},
		{"duplicated after the end", [][]*deliveryv1.AttemptRecorded{{r1, r2}, {r3}, {r3, r1}, {r2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, _ := newStore(t, logstore.Options{})
			for _, b := range tt.batches {
				write(t, s, b...)
			}
			e, err := s.Get(context.Background(), "hub1", "dlv_a")
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if e.Log.Status != hubhooksv1.StatusSucceeded.APIName() || e.Log.Attempts != 3 || e.Log.ResponseStatusCode != 200 {
				t.Fatalf("summary = %s/%d attempts/%d, want succeeded/3/200", e.Log.Status, e.Log.Attempts, e.Log.ResponseStatusCode)
			}
			if e.Log.NextAttemptAt != nil {
				t.Errorf("next_attempt_at = %v on a succeeded entry", e.Log.NextAttemptAt)
			}
			if !e.Log.UpdatedAt.AsTime().Equal(r3.StartedAt.AsTime()) {
				t.Errorf("updated_at = %v, want %v", e.Log.UpdatedAt.AsTime(), r3.StartedAt.AsTime())
			}
			if len(e.Attempts) != 3 {
				t.Fatalf("attempts = %d, want 3", len(e.Attempts))
			}
			if string(e.Job.GetBody()) != string(job.Body) {
				t.Errorf("job body = %q, want %q", e.Job.GetBody(), job.Body)
			}
			for i, a := range e.Attempts {
				if a.Number != int32(i+1) {
					t.Errorf("attempt %d has number %d", i, a.Number)
				}
				if a.Request.Body != "" {
					t.Errorf("attempt %d request body = %q, want it left out (it is the job body, sent once)", i, a.Request.Body)
				}
				if got := a.Request.Headers["X-RapidAPI-Webhook-Secret"]; got != webhook.MaskSecret {
					t.Errorf("attempt %d secret header = %q, want masked", i, got)
				}
			}
			if e.Attempts[0].Status != hubhooksv1.StatusRetrying.APIName() || e.Attempts[0].NextAttemptAt == nil {
				t.Errorf("attempt 1 = %s next %v, want retrying with next_attempt_at", e.Attempts[0].Status, e.Attempts[0].NextAttemptAt)
			}
		})
	}
}

func TestSummaryStatuses(t *testing.T) {
	tests := []struct {
		name         string
		recs         func(job *deliveryv1.DeliveryJob) []*deliveryv1.AttemptRecorded
		wantStatus   string
		wantAttempts int32
		wantNext     bool
	}{
		{"retrying", func(j *deliveryv1.DeliveryJob) []*deliveryv1.AttemptRecorded {
			return []*deliveryv1.AttemptRecorded{record(j, 1, hubhooksv1.StatusRetrying, 500)}
		}, hubhooksv1.StatusRetrying.APIName(), 1, true},
		{"cancelled before attempt 3", func(j *deliveryv1.DeliveryJob) []*deliveryv1.AttemptRecorded {
			c := record(j, 3, hubhooksv1.StatusCancelled, 0)
			c.Request, c.Response = nil, nil
			return []*deliveryv1.AttemptRecorded{c, record(j, 2, hubhooksv1.StatusRetrying, 500), record(j, 1, hubhooksv1.StatusRetrying, 500)}
		}, hubhooksv1.StatusCancelled.APIName(), 2, false},
		{"cancellation numbered 0 uses the job's attempt", func(j *deliveryv1.DeliveryJob) []*deliveryv1.AttemptRecorded {
			jj := newJob(j.HubId, j.DeliveryId, j.CreatedAt.AsTime(), func(x *deliveryv1.DeliveryJob) { x.Attempt = 2 })
			c := record(jj, 0, hubhooksv1.StatusCancelled, 0)
			return []*deliveryv1.AttemptRecorded{c, record(j, 1, hubhooksv1.StatusRetrying, 500)}
		}, hubhooksv1.StatusCancelled.APIName(), 1, false},
		{"dead after 8", func(j *deliveryv1.DeliveryJob) []*deliveryv1.AttemptRecorded {
			return []*deliveryv1.AttemptRecorded{record(j, 8, hubhooksv1.StatusDead, 500), record(j, 7, hubhooksv1.StatusRetrying, 500)}
		}, hubhooksv1.StatusDead.APIName(), 8, false},
		{"pending then attempt", func(j *deliveryv1.DeliveryJob) []*deliveryv1.AttemptRecorded {
			return []*deliveryv1.AttemptRecorded{record(j, 1, hubhooksv1.StatusFailed, 410), {Job: j, Status: hubhooksv1.StatusPending}}
		}, hubhooksv1.StatusFailed.APIName(), 1, false},
		{"pending only", func(j *deliveryv1.DeliveryJob) []*deliveryv1.AttemptRecorded {
			return []*deliveryv1.AttemptRecorded{{Job: j, Status: hubhooksv1.StatusPending}}
		}, hubhooksv1.StatusPending.APIName(), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, _ := newStore(t, logstore.Options{})
			job := newJob("hub1", "dlv_s", t0)
			for _, r := range tt.recs(job) {
				write(t, s, r)
			}
			e, err := s.Get(context.Background(), "hub1", "dlv_s")
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if e.Log.Status != tt.wantStatus || e.Log.Attempts != tt.wantAttempts || (e.Log.NextAttemptAt != nil) != tt.wantNext {
				t.Fatalf("summary = %s, %d attempts, next %v; want %s, %d, next %v",
					e.Log.Status, e.Log.Attempts, e.Log.NextAttemptAt, tt.wantStatus, tt.wantAttempts, tt.wantNext)
			}
		})
	}
}

func TestValidateRecord(t *testing.T) {
	good := func() *deliveryv1.AttemptRecorded {
		return record(newJob("hub1", "dlv_v", t0), 1, hubhooksv1.StatusSucceeded, 200)
	}
	tests := []struct {
		name   string
		mutate func(r *deliveryv1.AttemptRecorded)
		ok     bool
	}{
		{"good", func(*deliveryv1.AttemptRecorded) {}, true},
		{"no job", func(r *deliveryv1.AttemptRecorded) { r.Job = nil }, false},
		{"bad hub", func(r *deliveryv1.AttemptRecorded) { r.Job.HubId = "a.b" }, false},
		{"bad id", func(r *deliveryv1.AttemptRecorded) { r.Job.DeliveryId = "x:y" }, false},
		{"unknown status", func(r *deliveryv1.AttemptRecorded) { r.Status = hubhooksv1.DeliveryStatus(99) }, false},
		{"succeeded without number", func(r *deliveryv1.AttemptRecorded) { r.Attempt = 0; r.Job.Attempt = 0 }, false},
		{"no times", func(r *deliveryv1.AttemptRecorded) { r.Job.CreatedAt = nil; r.StartedAt = nil }, false},
		{"created from started_at", func(r *deliveryv1.AttemptRecorded) { r.Job.CreatedAt = nil }, true},
		{"body_shared outside a batch", func(r *deliveryv1.AttemptRecorded) { r.BodyShared = true }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good()
			tt.mutate(r)
			err := logstore.ValidateRecord(r)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateRecord = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, logstore.ErrInvalidRecord) {
				t.Fatalf("error %v does not wrap ErrInvalidRecord", err)
			}
		})
	}
}

func TestGetOtherHubIsNotFound(t *testing.T) {
	s, _, _ := newStore(t, logstore.Options{})
	write(t, s, record(newJob("hub1", "dlv_x", t0), 1, hubhooksv1.StatusSucceeded, 200))
	if _, err := s.Get(context.Background(), "hub2", "dlv_x"); !errors.Is(err, logstore.ErrNotFound) {
		t.Fatalf("Get from another hub: %v, want ErrNotFound", err)
	}
	if _, err := s.Get(context.Background(), "hub1", "dlv_missing"); !errors.Is(err, logstore.ErrNotFound) {
		t.Fatalf("Get missing: %v, want ErrNotFound", err)
	}
}

// fixture writes n entries of hub1, one a second from t0 (entry i created at
// t0+i s), with types, URLs, statuses and event ids in rotation.
func fixture(t testing.TB, s *logstore.Store, n int) {
	t.Helper()
	types := []string{"API.CREATED", "API.UPDATED", "APP.DELETED"}
	urls := []string{"https://a.example/h", "https://b.example/h"}
	statuses := []hubhooksv1.DeliveryStatus{hubhooksv1.StatusSucceeded, hubhooksv1.StatusRetrying, hubhooksv1.StatusFailed, hubhooksv1.StatusDead}
	var recs []*deliveryv1.AttemptRecorded
	for i := range n {
		job := newJob("hub1", fmt.Sprintf("dlv_%04d", i), t0.Add(time.Duration(i)*time.Second), func(j *deliveryv1.DeliveryJob) {
			j.EventType = types[i%len(types)]
			j.Url = urls[i%len(urls)]
			j.WebhookEventId = fmt.Sprintf("msg_%d", i/5)
		})
		recs = append(recs, record(job, 1, statuses[i%len(statuses)], 200))
	}
	// A neighbouring hub must never leak into hub1's lists.
	recs = append(recs, record(newJob("hub2", "dlv_0001", t0), 1, hubhooksv1.StatusSucceeded, 200))
	write(t, s, recs...)
}

func ids(logs []*hubhooksv1.EventLog) []string {
	out := make([]string, len(logs))
	for i, l := range logs {
		out[i] = l.Id
	}
	return out
}

// listAll follows page tokens to the end.
func listAll(t *testing.T, s *logstore.Store, q logstore.Query) (all []string, pages int) {
	t.Helper()
	for {
		p, err := s.List(context.Background(), q)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		pages++
		all = append(all, ids(p.Logs)...)
		if p.NextPageToken == "" {
			return all, pages
		}
		if pages > 1000 {
			t.Fatal("no end to pages")
		}
		q.PageToken = p.NextPageToken
	}
}

func TestListFilters(t *testing.T) {
	s, _, _ := newStore(t, logstore.Options{})
	const n = 60
	fixture(t, s, n)
	want := func(pred func(i int) bool) []string {
		var out []string
		for i := n - 1; i >= 0; i-- {
			if pred(i) {
				out = append(out, fmt.Sprintf("dlv_%04d", i))
			}
		}
		return out
	}
	tests := []struct {
		name string
		q    logstore.Query
		want []string
	}{
		{"all", logstore.Query{}, want(func(int) bool { return true })},
		{"event_type", logstore.Query{EventType: "API.UPDATED"}, want(func(i int) bool { return i%3 == 1 })},
		{"status", logstore.Query{Status: hubhooksv1.StatusRetrying.APIName()}, want(func(i int) bool { return i%4 == 1 })},
		{"url", logstore.Query{URL: "https://b.example/h"}, want(func(i int) bool { return i%2 == 1 })},
		{"event_id", logstore.Query{EventID: "msg_3"}, want(func(i int) bool { return i/5 == 3 })},
		{"since", logstore.Query{Since: t0.Add(50 * time.Second)}, want(func(i int) bool { return i >= 50 })},
		{"until", logstore.Query{Until: t0.Add(9 * time.Second)}, want(func(i int) bool { return i <= 9 })},
		{"since and until", logstore.Query{Since: t0.Add(10 * time.Second), Until: t0.Add(20 * time.Second)}, want(func(i int) bool { return i >= 10 && i <= 20 })},
		{"type and url and status", logstore.Query{EventType: "API.CREATED", URL: "https://a.example/h", Status: hubhooksv1.StatusSucceeded.APIName()},
			want(func(i int) bool { return i%3 == 0 && i%2 == 0 && i%4 == 0 })},
		{"nothing matches", logstore.Query{EventType: "NOPE"}, nil},
		{"other hub", logstore.Query{HubID: "hub2"}, []string{"dlv_0001"}},
	}
	for _, tt := range tests {
		for _, size := range []int{500, 7} {
			t.Run(fmt.Sprintf("%s/page%d", tt.name, size), func(t *testing.T) {
				q := tt.q
				if q.HubID == "" {
					q.HubID = "hub1"
				}
				q.PageSize = size
				got, _ := listAll(t, s, q)
				if !slices.Equal(got, tt.want) {
					t.Fatalf("got %v\nwant %v", got, tt.want)
				}
			})
		}
	}
}

func TestListPagination(t *testing.T) {
	s, _, _ := newStore(t, logstore.Options{})
	fixture(t, s, 120)
	var sizes []int
	var all []string
	q := logstore.Query{HubID: "hub1", PageSize: 50}
	for {
		p, err := s.List(context.Background(), q)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		sizes = append(sizes, len(p.Logs))
		all = append(all, ids(p.Logs)...)
		if p.NextPageToken == "" {
			break
		}
		q.PageToken = p.NextPageToken
	}
	if !slices.Equal(sizes, []int{50, 50, 20}) {
		t.Fatalf("page sizes = %v, want [50 50 20]", sizes)
	}
	for i, id := range all {
		if want := fmt.Sprintf("dlv_%04d", 119-i); id != want {
			t.Fatalf("position %d = %s, want %s (newest first, no gaps or duplicates)", i, id, want)
		}
	}
}

func TestListSameCreatedAtPaginates(t *testing.T) {
	s, _, _ := newStore(t, logstore.Options{})
	var recs []*deliveryv1.AttemptRecorded
	for i := range 30 {
		recs = append(recs, record(newJob("hub1", fmt.Sprintf("dlv_%02d", i), t0), 1, hubhooksv1.StatusSucceeded, 200))
	}
	write(t, s, recs...)
	got, pages := listAll(t, s, logstore.Query{HubID: "hub1", PageSize: 4})
	slices.Sort(got)
	if len(got) != 30 || len(slices.Compact(got)) != 30 || pages != 8 {
		t.Fatalf("got %d ids (%d distinct) in %d pages, want 30 distinct in 8", len(got), len(slices.Compact(got)), pages)
	}
}

func TestListScanLimitContinues(t *testing.T) {
	s, _, _ := newStore(t, logstore.Options{ScanLimit: 10})
	fixture(t, s, 100)
	// Every 4th entry is dead: a scan of 10 finds 2 or 3, and tokens carry on.
	p, err := s.List(context.Background(), logstore.Query{HubID: "hub1", Status: hubhooksv1.StatusDead.APIName(), PageSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Logs) >= 50 || p.NextPageToken == "" {
		t.Fatalf("first page: %d entries, token %q; want a short page with a token", len(p.Logs), p.NextPageToken)
	}
	got, _ := listAll(t, s, logstore.Query{HubID: "hub1", Status: hubhooksv1.StatusDead.APIName(), PageSize: 50})
	if len(got) != 25 || len(slices.Compact(slices.Sorted(slices.Values(got)))) != 25 {
		t.Fatalf("got %d dead entries, want 25 distinct", len(got))
	}
}

func TestListBadPageToken(t *testing.T) {
	s, _, _ := newStore(t, logstore.Options{})
	for _, tok := range []string{"!!!", "Zm9v", "YzE6MDAwMDAwMDAwMDAwMDAwMGRsdl8x:"} {
		if _, err := s.List(context.Background(), logstore.Query{HubID: "hub1", PageSize: 5, PageToken: tok}); !errors.Is(err, logstore.ErrBadPageToken) {
			t.Errorf("token %q: %v, want ErrBadPageToken", tok, err)
		}
	}
}

// TestTrimMaxEntriesPerHub trims in boundScript (entries name their filter
// indexes in "x", in an entry string or an entry hash): nothing of a
// trimmed entry stays.
func TestTrimMaxEntriesPerHub(t *testing.T) {
	for _, form := range []string{"string", "hash"} {
		t.Run(form, func(t *testing.T) {
			ctx := context.Background()
			s, rdb, prefix := newStore(t, logstore.Options{MaxEntriesPerHub: 10})
			var trimmed int
			for i := range 25 {
				id := fmt.Sprintf("dlv_%04d", i)
				job := newJob("hub1", id, t0.Add(time.Duration(i)*time.Second))
				rec := record(job, 1, hubhooksv1.StatusSucceeded, 200)
				trimmed += write(t, s, rec).Trimmed
				key := prefix + "log:{hub1}:e:" + id
				if form == "hash" {
					// A second record of an entry turns it into a hash.
					trimmed += write(t, s, rec).Trimmed
					if typ := rdb.Type(ctx, key).Val(); typ != "hash" {
						t.Fatalf("entry after two records is a %s, want a hash", typ)
					}
				}
			}
			if trimmed != 15 {
				t.Errorf("trimmed = %d, want 15", trimmed)
			}
			got, _ := listAll(t, s, logstore.Query{HubID: "hub1", PageSize: 100})
			want := []string{}
			for i := 24; i >= 15; i-- {
				want = append(want, fmt.Sprintf("dlv_%04d", i))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("after trimming: %v, want %v", got, want)
			}
			byType, _ := listAll(t, s, logstore.Query{HubID: "hub1", EventType: "API.CREATED", PageSize: 100})
			if !slices.Equal(byType, want) {
				t.Fatalf("type index after trimming: %v, want %v", byType, want)
			}
			if _, err := s.Get(ctx, "hub1", "dlv_0000"); !errors.Is(err, logstore.ErrNotFound) {
				t.Fatalf("trimmed entry: %v, want ErrNotFound", err)
			}
			// No key or filter-index member of a trimmed entry is left (no leak).
			assertHubHolds(t, rdb, prefix, "hub1", 10)
		})
	}
}

// assertHubHolds checks that hub has n entry keys, n members in its hub
// index and in each kind of filter index, and a byte count that is the sum
// of its entries' (none for no entries).
func assertHubHolds(t *testing.T, rdb *redis.Client, prefix, hub string, n int) {
	t.Helper()
	ctx := context.Background()
	base := prefix + "log:{" + hub + "}:"
	entries, err := rdb.Keys(ctx, base+"e:*").Result()
	if err != nil || len(entries) != n {
		t.Fatalf("entry keys %d, %v; want %d", len(entries), err, n)
	}
	if got := rdb.ZCard(ctx, base+"i").Val(); got != int64(n) {
		t.Fatalf("hub index holds %d members, want %d", got, n)
	}
	for _, kind := range []string{"t", "u", "v", "d"} {
		keys, err := rdb.Keys(ctx, base+kind+":*").Result()
		if err != nil {
			t.Fatal(err)
		}
		var members int64
		for _, k := range keys {
			members += rdb.ZCard(ctx, k).Val()
		}
		if members != int64(n) {
			t.Fatalf("%s indexes hold %d members, want %d", kind, members, n)
		}
	}
	var sum int64
	for _, key := range entries {
		if rdb.Type(ctx, key).Val() == "string" {
			sum += rdb.StrLen(ctx, key).Val()
			continue
		}
		z, err := strconv.ParseInt(rdb.HGet(ctx, key, "z").Val(), 10, 64)
		if err != nil {
			t.Fatalf("%s: field z: %v", key, err)
		}
		sum += z
	}
	total, err := rdb.Get(ctx, base+"b").Int64()
	if n == 0 {
		if !errors.Is(err, redis.Nil) {
			t.Fatalf("byte count %d, %v of an empty hub; want none", total, err)
		}
		return
	}
	if err != nil || total != sum {
		t.Fatalf("byte count %d, %v; want %d, the sum of its entries' bytes", total, err, sum)
	}
}

// TestWriteSendsScriptsOnlyWhenRedisLacksThem: Write names its scripts by
// digest (EVALSHA) and sends their text (EVAL) only when Redis lacks them:
// on a fresh Redis, after SCRIPT FLUSH (a restart or failover does the
// same), and when Redis has some of them only. Each time the write goes on,
// and the hub's byte count stays the sum of its entries: a batch whose
// boundScript ran before the others were missing is not counted twice.
func TestWriteSendsScriptsOnlyWhenRedisLacksThem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.StartServer(t).Client(t)
	const prefix = "t:"
	s, err := logstore.New(rdb, logstore.Options{Prefix: prefix, MaxEntriesPerHub: 2, Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	// Each batch has an entry that exists by its second record, so it runs
	// all three of Write's scripts (boundScript, toHashScript,
	// updateScript); from the third on it also trims the oldest entry,
	// counted once whichever pass made it.
	writeJob := func(i int) {
		t.Helper()
		job := newJob("hub1", fmt.Sprintf("dlv_%d", i), t0.Add(time.Duration(i)*time.Second))
		res := write(t, s, record(job, 1, hubhooksv1.StatusRetrying, 500), record(job, 2, hubhooksv1.StatusSucceeded, 200))
		if i >= 2 && res.Trimmed != 1 {
			t.Errorf("batch %d trimmed %d entries, want 1 (the cap is 2)", i, res.Trimmed)
		}
	}
	check := func(when string, evals, evalshas int) {
		t.Helper()
		if got, got2 := redistest.CommandCalls(t, rdb, "eval"), redistest.CommandCalls(t, rdb, "evalsha"); got != evals || got2 != evalshas {
			t.Errorf("%s: %d EVAL and %d EVALSHA, want %d and %d", when, got, got2, evals, evalshas)
		}
	}
	flush := func() {
		t.Helper()
		if err := rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	writeJob(0)
	// Redis counts the refused EVALSHAs too.
	check("a fresh Redis", 3, 3)
	writeJob(1)
	writeJob(2)
	check("two more batches", 3, 9)
	flush()
	writeJob(3)
	check("after SCRIPT FLUSH", 6, 12)
	flush()
	if err := logstore.BoundScript.Load(ctx, rdb).Err(); err != nil {
		t.Fatal(err)
	}
	writeJob(4)
	check("with boundScript alone", 9, 15)
	got, _ := listAll(t, s, logstore.Query{HubID: "hub1", PageSize: 10})
	if !slices.Equal(got, []string{"dlv_4", "dlv_3"}) {
		t.Fatalf("entries %v, want [dlv_4 dlv_3] (the others trimmed)", got)
	}
	e, err := s.Get(ctx, "hub1", "dlv_4")
	if err != nil || e.Log.GetStatus() != hubhooksv1.StatusSucceeded.APIName() || len(e.Attempts) != 2 {
		t.Fatalf("Get = %v, %v; want succeeded with 2 attempts", e, err)
	}
	assertHubHolds(t, rdb, prefix, "hub1", 2)
}

// TestTrimIsBoundedPerWrite lowers the cap under 1,500 entries: one write
// trims at most 1,000 (Redis is not blocked by one huge trim), the next the
// rest.
func TestTrimIsBoundedPerWrite(t *testing.T) {
	ctx := context.Background()
	s, rdb, prefix := newStore(t, logstore.Options{})
	recs := make([]*deliveryv1.AttemptRecorded, 1500)
	for i := range recs {
		recs[i] = record(newJob("hub1", fmt.Sprintf("dlv_%04d", i), t0.Add(time.Duration(i)*time.Second)), 1, hubhooksv1.StatusSucceeded, 200)
	}
	write(t, s, recs...)
	small, err := logstore.New(rdb, logstore.Options{Prefix: prefix, MaxEntriesPerHub: 10, Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for i := range 2 {
		job := newJob("hub1", fmt.Sprintf("dlv_new%d", i), t0.Add(time.Duration(2000+i)*time.Second))
		got = append(got, write(t, small, record(job, 1, hubhooksv1.StatusSucceeded, 200)).Trimmed)
	}
	if !slices.Equal(got, []int{1000, 492}) {
		t.Fatalf("trimmed %v, want [1000 492]", got)
	}
	if n := rdb.ZCard(ctx, prefix+"log:{hub1}:i").Val(); n != 10 {
		t.Fatalf("hub index has %d members, want 10", n)
	}
}

func TestRetention(t *testing.T) {
	now := t0.Add(30 * 24 * time.Hour)
	s, rdb, prefix := newStore(t, logstore.Options{Retention: time.Hour, Now: func() time.Time { return now }})
	write(t, s,
		record(newJob("hub1", "dlv_new", now.Add(-time.Minute)), 1, hubhooksv1.StatusSucceeded, 200),
		record(newJob("hub1", "dlv_old", now.Add(-2*time.Hour)), 1, hubhooksv1.StatusSucceeded, 200),
	)
	// Keys outlive the retention by a tenth: an entry is still there when
	// a write removes it for its age.
	ttl := rdb.TTL(context.Background(), prefix+"log:{hub1}:e:dlv_new").Val()
	if ttl <= 65*time.Minute || ttl > 66*time.Minute {
		t.Errorf("entry TTL = %v, want about 1h6m", ttl)
	}
	ttl = rdb.TTL(context.Background(), prefix+"log:{hub1}:i").Val()
	if ttl <= 65*time.Minute || ttl > 66*time.Minute {
		t.Errorf("index TTL = %v, want about 1h6m", ttl)
	}
	got, _ := listAll(t, s, logstore.Query{HubID: "hub1", PageSize: 10})
	if !slices.Equal(got, []string{"dlv_new"}) {
		t.Fatalf("listed %v, want only the entry created within retention", got)
	}
}

func TestListSkipsAndRemovesStaleMembers(t *testing.T) {
	s, rdb, prefix := newStore(t, logstore.Options{})
	fixture(t, s, 10)
	ctx := context.Background()
	if err := rdb.Del(ctx, prefix+"log:{hub1}:e:dlv_0005").Err(); err != nil {
		t.Fatal(err)
	}
	got, _ := listAll(t, s, logstore.Query{HubID: "hub1", PageSize: 3})
	if slices.Contains(got, "dlv_0005") || len(got) != 9 {
		t.Fatalf("listed %v, want 9 entries without the deleted one", got)
	}
	if n := rdb.ZCard(ctx, prefix+"log:{hub1}:i").Val(); n != 9 {
		t.Fatalf("hub index has %d members after the list, want 9 (stale member removed)", n)
	}
}

func BenchmarkWriteBatch(b *testing.B) {
	s, _, _ := newStore(b, logstore.Options{})
	const batch = 256
	recs := make([]*deliveryv1.AttemptRecorded, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; b.Loop(); n++ {
		for i := range recs {
			job := newJob(fmt.Sprintf("hub%d", i%8), fmt.Sprintf("dlv_%d_%d", n, i), t0.Add(time.Duration(n*batch+i)*time.Millisecond))
			recs[i] = record(job, 1, hubhooksv1.StatusSucceeded, 200)
		}
		if _, err := s.Write(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
	}
	_ = batch
}

func BenchmarkListEventLogs(b *testing.B) {
	s, _, _ := newStore(b, logstore.Options{})
	fixture(b, s, 2000)
	for _, bc := range []struct {
		name string
		q    logstore.Query
	}{
		{"newest50", logstore.Query{HubID: "hub1", PageSize: 50}},
		{"type50", logstore.Query{HubID: "hub1", EventType: "API.UPDATED", PageSize: 50}},
		{"status50", logstore.Query{HubID: "hub1", Status: hubhooksv1.StatusDead.APIName(), PageSize: 50}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p, err := s.List(context.Background(), bc.q)
				if err != nil || len(p.Logs) != 50 {
					b.Fatalf("List: %d entries, %v", len(p.Logs), err)
				}
			}
		})
	}
}

func TestGetMasksSecretOnRead(t *testing.T) {
	s, rdb, prefix := newStore(t, logstore.Options{})
	job := newJob("hub1", "dlv_r", t0)
	rec := record(job, 1, hubhooksv1.StatusRetrying, 500)
	write(t, s, rec)
	write(t, s, rec) // a second record: the entry is a hash
	// An attempt stored unmasked by some other writer is still masked on read.
	raw, err := proto.Marshal(&hubhooksv1.Attempt{Number: 2, Status: hubhooksv1.StatusSucceeded.APIName(),
		Request: &hubhooksv1.HttpRequest{Headers: map[string]string{"X-RAPIDAPI-WEBHOOK-SECRET": "whsec_leak"}}})
	if err != nil {
		t.Fatal(err)
	}
	field := fmt.Sprintf("a:%016x:000002:3", t0.UnixMicro())
	if err := rdb.HSet(context.Background(), prefix+"log:{hub1}:e:dlv_r", field, raw).Err(); err != nil {
		t.Fatal(err)
	}
	e, err := s.Get(context.Background(), "hub1", "dlv_r")
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Attempts) != 2 {
		t.Fatalf("%d attempts, want 2", len(e.Attempts))
	}
	for _, a := range e.Attempts {
		for k, v := range a.Request.Headers {
			if strings.EqualFold(k, logstore.SecretHeader) && v != webhook.MaskSecret {
				t.Fatalf("attempt %d: %s = %q, want masked", a.Number, k, v)
			}
		}
	}
}

func TestRecorded(t *testing.T) {
	s, _, _ := newStore(t, logstore.Options{})
	ctx := context.Background()
	retrying := newJob("hub1", "dlv_retrying", t0)
	done := newJob("hub1", "dlv_done", t0)
	if _, err := s.Write(ctx, []*deliveryv1.AttemptRecorded{
		record(retrying, 2, hubhooksv1.StatusRetrying, 500),
		record(done, 1, hubhooksv1.StatusSucceeded, 200),
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		hub, id string
		attempt int32
		want    bool
	}{
		{"hub1", "dlv_retrying", 1, true},  // an earlier attempt
		{"hub1", "dlv_retrying", 2, true},  // this attempt
		{"hub1", "dlv_retrying", 3, false}, // the next one is still to make
		{"hub1", "dlv_done", 2, true},      // final status
		{"hub1", "dlv_missing", 1, false},
		{"hub2", "dlv_done", 1, false}, // keys are per hub
		{"hub1", "not an id!", 1, false},
	} {
		got, err := s.RecordedAll(ctx, tc.hub, []string{tc.id}, []int32{tc.attempt})
		if err != nil || len(got) != 1 || got[0] != tc.want {
			t.Errorf("RecordedAll(%s, [%s], [%d]) = %v, %v; want [%v]", tc.hub, tc.id, tc.attempt, got, err, tc.want)
		}
	}
	// All of a hub's answers in one call, in the order asked.
	got, err := s.RecordedAll(ctx, "hub1", []string{"dlv_missing", "dlv_retrying", "not an id!", "dlv_done", "dlv_retrying"}, []int32{1, 2, 1, 5, 3})
	if want := []bool{false, true, false, true, false}; err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("RecordedAll = %v, %v; want %v", got, err, want)
	}
	if _, err := s.RecordedAll(ctx, "hub1", []string{"dlv_done"}, nil); err == nil {
		t.Error("RecordedAll took 1 id with 0 attempt numbers")
	}
	if got, err := s.RecordedAll(ctx, "hub1", []string{"bad id"}, []int32{1}); err != nil || len(got) != 1 || got[0] {
		t.Errorf("RecordedAll of an invalid id only = %v, %v", got, err)
	}
}

// BenchmarkWriteAtCap writes records the way the pipeline does (one hub,
// five URLs per webhook event, six webhook events per domain event, a 750 B
// body, the deliverer's request headers) into a hub held at its entry cap,
// so every write also trims: in batches of 256 as at full rate, and one
// record a batch as at a moderate rate. redis-cpu-µs/entry is the Redis
// server's CPU time per entry (INFO cpu), the cost the Go-side ns/op leaves
// out.
func BenchmarkWriteAtCap(b *testing.B) {
	for _, batch := range []int{256, 1} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchmarkWriteAtCap(b, batch) })
	}
}

func benchmarkWriteAtCap(b *testing.B, batch int) {
	const maxEntries = 5000
	s, rdb, _ := newStore(b, logstore.Options{MaxEntriesPerHub: maxEntries})
	ctx := context.Background()
	body := []byte(`{"id":"` + strings.Repeat("x", 700) + `"}`)
	recs := make([]*deliveryv1.AttemptRecorded, batch)
	seq := 0
	writeBatch := func() {
		for i := range recs {
			ev, url := seq/5, seq%5
			job := newJob("hub1", fmt.Sprintf("dlv_%012d", seq), t0.Add(time.Duration(seq)*time.Millisecond), func(j *deliveryv1.DeliveryJob) {
				j.WebhookEventId = fmt.Sprintf("msg_%012d", ev)
				j.DomainEventId = fmt.Sprintf("evt_%012d", ev/6) // an API.CREATED: six webhook events
				j.Url = fmt.Sprintf("http://127.0.0.1:4000%d/hook/%d", url, url)
				j.UrlId = fmt.Sprintf("url_%d", url)
				j.Body = body
			})
			r := record(job, 1, hubhooksv1.StatusSucceeded, 200)
			r.Request.Headers = map[string]string{
				"Content-Type": "application/json", "User-Agent": "hubhooks/dev", "X-RapidAPI-Webhook-Secret": "whsec_realsecret",
				"webhook-id": job.GetWebhookEventId(), "webhook-timestamp": "1795750000",
				"webhook-signature": "v1," + strings.Repeat("s", 44),
			}
			r.Response.Headers = map[string]string{"Date": "Fri, 27 Nov 2026 04:24:27 GMT", "Content-Length": "0"}
			recs[i] = r
			seq++
		}
		if _, err := s.Write(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	for seq < maxEntries+batch {
		writeBatch()
	}
	before := redistest.CPUMicros(b, rdb)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		writeBatch()
	}
	b.StopTimer()
	b.ReportMetric((redistest.CPUMicros(b, rdb)-before)/float64(b.N*batch), "redis-cpu-µs/entry")
}

// TestEntryForms: an entry with one record is a string; a second record
// turns it into a hash of the same fields with the same TTL; every read
// (Get, List by each filter, RecordedAll) answers the same for both forms,
// also when the summary is longer than what a list reads ahead.
func TestEntryForms(t *testing.T) {
	for _, longURL := range []bool{false, true} {
		t.Run(fmt.Sprintf("longURL=%v", longURL), func(t *testing.T) {
			ctx := context.Background()
			s, rdb, prefix := newStore(t, logstore.Options{})
			url := "https://example.com/hook"
			if longURL {
				url += "/" + strings.Repeat("p", 1500)
			}
			job := newJob("hub1", "dlv_f", t0, func(j *deliveryv1.DeliveryJob) { j.Url = url })
			r1 := record(job, 1, hubhooksv1.StatusRetrying, 500)
			key := prefix + "log:{hub1}:e:dlv_f"

			read := func(wantStatus string, wantAttempts int) {
				t.Helper()
				e, err := s.Get(ctx, "hub1", "dlv_f")
				if err != nil || e.Log.GetStatus() != wantStatus || len(e.Attempts) != wantAttempts || e.Log.GetUrl() != url {
					t.Fatalf("Get = %v, %v; want %s with %d attempts", e, err, wantStatus, wantAttempts)
				}
				for _, q := range []logstore.Query{
					{HubID: "hub1"}, {HubID: "hub1", URL: url}, {HubID: "hub1", EventType: job.EventType},
					{HubID: "hub1", EventID: job.WebhookEventId}, {HubID: "hub1", Status: wantStatus},
				} {
					q.PageSize = 10
					p, err := s.List(ctx, q)
					if err != nil || len(p.Logs) != 1 || p.Logs[0].GetStatus() != wantStatus || p.Logs[0].GetUrl() != url {
						t.Fatalf("List(%+v) = %v, %v", q, p, err)
					}
				}
				got, err := s.RecordedAll(ctx, "hub1", []string{"dlv_f", "dlv_f"}, []int32{int32(wantAttempts), int32(wantAttempts + 1)})
				if err != nil || !got[0] || got[1] != (wantStatus == hubhooksv1.StatusSucceeded.APIName()) {
					t.Fatalf("RecordedAll = %v, %v", got, err)
				}
			}

			write(t, s, r1)
			if typ := rdb.Type(ctx, key).Val(); typ != "string" {
				t.Fatalf("entry with one record is a %s, want a string", typ)
			}
			read(hubhooksv1.StatusRetrying.APIName(), 1)
			raw, err := rdb.Get(ctx, key).Bytes()
			if err != nil {
				t.Fatal(err)
			}
			fields, err := logstore.EntryFields(raw)
			if err != nil {
				t.Fatal(err)
			}
			if err := rdb.Expire(ctx, key, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}

			// The same record again: the entry becomes a hash of the same
			// fields, its TTL renewed (shortened above to see it renewed).
			write(t, s, r1)
			if typ := rdb.Type(ctx, key).Val(); typ != "hash" {
				t.Fatalf("entry after a second record is a %s, want a hash", typ)
			}
			h := rdb.HGetAll(ctx, key).Val()
			if h["n"] != "1" || h["z"] == "" {
				t.Errorf("hash fields n = %q, z = %q; want 1 attempt made and the bytes", h["n"], h["z"])
			}
			delete(h, "n")
			delete(h, "z")
			if len(h) != len(fields) {
				t.Fatalf("hash fields %q, want the string's %q", h, fields)
			}
			for name, v := range fields {
				if !strings.HasPrefix(name, "a:") {
					if h[name] != v {
						t.Errorf("hash field %s = %q, want the string's %q", name, h[name], v)
					}
					continue
				}
				// Written again: the same attempt, its header map maybe in another order.
				var got, want hubhooksv1.Attempt
				if proto.Unmarshal([]byte(h[name]), &got) != nil || proto.Unmarshal([]byte(v), &want) != nil || !proto.Equal(&got, &want) {
					t.Errorf("hash field %s holds another attempt than the string's", name)
				}
			}
			if ttl := rdb.TTL(ctx, key).Val(); ttl < 7*24*time.Hour-time.Minute {
				t.Errorf("TTL %v after a write, want the retention renewed", ttl)
			}
			read(hubhooksv1.StatusRetrying.APIName(), 1)

			write(t, s, record(job, 2, hubhooksv1.StatusSucceeded, 200))
			read(hubhooksv1.StatusSucceeded.APIName(), 2)
		})
	}
}
