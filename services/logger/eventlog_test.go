package logger_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/natstest"
	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/redistest"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/logger"
	"github.com/hubhooks/hubhooks/services/logger/logstore"
)

type env struct {
	svc    *logger.Service
	js     jetstream.JetStream
	rdb    *redis.Client
	store  *logstore.Store
	client hubhooksv1.EventLogServiceClient
	reg    *prometheus.Registry
	// addr is the gRPC server's address.
	addr string
}

// start runs a logger (consumer and gRPC server on 127.0.0.1:0) against an
// embedded JetStream and the real Redis, and stops it when the test ends,
// failing the test if Run does not drain and return.
func start(t *testing.T, cfg logger.Config) *env {
	t.Helper()
	_, _, js := natstest.Start(t)
	rdb, prefix := redistest.New(t)
	reg := prometheus.NewRegistry()
	cfg.RedisPrefix = prefix
	cfg.Registerer = reg
	cfg.Log = slog.New(slog.DiscardHandler)
	if cfg.FetchWait == 0 {
		cfg.FetchWait = 200 * time.Millisecond
	}
	svc, err := logger.New(cfg, js, rdb)
	if err != nil {
		t.Fatalf("logger.New: %v", err)
	}
	gs := grpc.NewServer()
	svc.Register(gs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after its context ended, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of its context ending")
		}
	})
	poll.Until(t, 10*time.Second, "logger ready", func() bool { return svc.Ready(context.Background()) == nil })

	store, err := logstore.New(rdb, logstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return &env{svc: svc, js: js, rdb: rdb, store: store, client: hubhooksv1.NewEventLogServiceClient(conn), reg: reg, addr: lis.Addr().String()}
}

func newJob(hub, id string, created time.Time) *deliveryv1.DeliveryJob {
	return &deliveryv1.DeliveryJob{
		DeliveryId:      id,
		HubId:           hub,
		WebhookEventId:  "msg_" + id,
		EventType:       "BILLINGPLAN.CREATED",
		UrlId:           "url_1",
		Url:             "https://example.com/hook",
		Body:            []byte(`{"id":"msg_` + id + `"}`),
		CreatedAt:       timestamppb.New(created),
		DomainEventId:   "dom_1",
		DomainEventType: "BILLINGPLAN.CREATED",
		Attempt:         1,
		ConfigVersion:   4,
	}
}

func record(job *deliveryv1.DeliveryJob, attempt int32, st hubhooksv1.DeliveryStatus, code int32) *deliveryv1.AttemptRecorded {
	return &deliveryv1.AttemptRecorded{
		Job:     job,
		Attempt: attempt,
		Status:  st,
		Request: &hubhooksv1.HttpRequest{
			Url: job.Url, Method: "POST", Body: string(job.Body),
			Headers: map[string]string{"x-rapidapi-webhook-secret": "whsec_livesecretvalue", "webhook-id": job.WebhookEventId},
		},
		Response:  &hubhooksv1.HttpResponse{StatusCode: code, DurationMs: 5},
		StartedAt: timestamppb.New(job.CreatedAt.AsTime().Add(time.Duration(attempt) * time.Second)),
	}
}

func publish(t *testing.T, js jetstream.JetStream, rec *deliveryv1.AttemptRecorded, msgID string) {
	t.Helper()
	m, err := eventbus.NewAttemptMsg(rec)
	if err != nil {
		t.Fatal(err)
	}
	if msgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// counter reads a counter from reg; label is the value of its only label, if any.
func counter(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" || (len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestConsumerStoresShuffledDuplicatedRecordsBeforeAck(t *testing.T) {
	e := start(t, logger.Config{BatchSize: 2})
	job := newJob("hub1", "dlv_c1", time.Now().Add(-time.Minute))
	r1 := record(job, 1, hubhooksv1.StatusRetrying, 500)
	r2 := record(job, 2, hubhooksv1.StatusRetrying, 502)
	r3 := record(job, 3, hubhooksv1.StatusSucceeded, 200)
	for i, r := range []*deliveryv1.AttemptRecorded{r3, r1, r3, r2, r1} {
		// Distinct msg ids so JetStream keeps the duplicates.
		publish(t, e.js, r, fmt.Sprintf("dup-%d", i))
	}
	poll.Until(t, 10*time.Second, "every record acked", func() bool {
		if streamMsgs(t, e.js, eventbus.StreamAttempts) != 0 {
			return false
		}
		return true
	})
	// Acked means written: no waiting here.
	got, err := e.client.GetEventLog(context.Background(), &hubhooksv1.GetEventLogRequest{HubId: "hub1", Id: "dlv_c1"})
	if err != nil {
		t.Fatalf("GetEventLog right after the records were acked: %v", err)
	}
	if got.EventLog.Status != hubhooksv1.StatusSucceeded.APIName() || got.EventLog.Attempts != 3 || len(got.Attempts) != 3 {
		t.Fatalf("entry = %s, %d attempts, %d attempt details; want succeeded, 3, 3", got.EventLog.Status, got.EventLog.Attempts, len(got.Attempts))
	}
	if n := counter(t, e.reg, "hubhooks_logger_records_written_total", ""); n != 5 {
		t.Errorf("records written = %v, want 5", n)
	}
}

func TestConsumerAcksOnlyWhatIsStored(t *testing.T) {
	e := start(t, logger.Config{BatchSize: 1})
	// Watch the stream: whenever it is empty, every record published before
	// must be readable.
	for i := range 20 {
		id := fmt.Sprintf("dlv_w%02d", i)
		publish(t, e.js, record(newJob("hub1", id, time.Now()), 1, hubhooksv1.StatusSucceeded, 200), "")
	}
	poll.Until(t, 10*time.Second, "stream drained", func() bool { return streamMsgs(t, e.js, eventbus.StreamAttempts) == 0 })
	for i := range 20 {
		if _, err := e.store.Get(context.Background(), "hub1", fmt.Sprintf("dlv_w%02d", i)); err != nil {
			t.Fatalf("record %d acked but not stored: %v", i, err)
		}
	}
}

func TestConsumerTerminatesUndecodableAndGoesOn(t *testing.T) {
	e := start(t, logger.Config{})
	ctx := context.Background()
	garbage := nats.NewMsg(eventbus.AttemptSubject("hub1"))
	garbage.Header.Set(eventbus.HeaderContentType, eventbus.ContentTypeProtobuf)
	garbage.Data = []byte{0xff, 0xff, 0xff, 0x01}
	if _, err := e.js.PublishMsg(ctx, garbage); err != nil {
		t.Fatal(err)
	}
	noJob, _ := proto.Marshal(&deliveryv1.AttemptRecorded{Attempt: 1, Status: hubhooksv1.StatusSucceeded})
	if _, err := e.js.Publish(ctx, eventbus.AttemptSubject("hub1"), noJob); err != nil {
		t.Fatal(err)
	}
	publish(t, e.js, record(newJob("hub1", "dlv_ok", time.Now()), 1, hubhooksv1.StatusSucceeded, 200), "")

	poll.Until(t, 10*time.Second, "valid record stored", func() bool {
		_, err := e.store.Get(ctx, "hub1", "dlv_ok")
		return err == nil
	})
	poll.Until(t, 10*time.Second, "bad records terminated", func() bool {
		return counter(t, e.reg, "hubhooks_logger_records_undecodable_total", "decode") == 1 &&
			counter(t, e.reg, "hubhooks_logger_records_undecodable_total", "invalid") == 1
	})
	// Terminated records are not redelivered: nothing stays pending.
	cons, err := e.js.Consumer(ctx, eventbus.StreamAttempts, eventbus.ConsumerLogger)
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "nothing pending", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	if n := counter(t, e.reg, "hubhooks_logger_records_written_total", ""); n != 1 {
		t.Errorf("records written = %v, want 1", n)
	}
}

// TestConsumerRefusesRecordsOnAnotherHubsSubject: records travel on their
// own hub's subject; one that claims another hub is dropped as invalid,
// not filed into that hub's log.
func TestConsumerRefusesRecordsOnAnotherHubsSubject(t *testing.T) {
	e := start(t, logger.Config{})
	ctx := context.Background()
	m, err := eventbus.NewAttemptMsg(record(newJob("victim", "dlv_forged", time.Now()), 1, hubhooksv1.StatusSucceeded, 200))
	if err != nil {
		t.Fatal(err)
	}
	m.Subject = eventbus.AttemptSubject("attacker")
	if _, err := e.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	publish(t, e.js, record(newJob("victim", "dlv_ok", time.Now()), 1, hubhooksv1.StatusSucceeded, 200), "")
	poll.Until(t, 10*time.Second, "the record on its own subject stored", func() bool {
		_, err := e.store.Get(ctx, "victim", "dlv_ok")
		return err == nil
	})
	poll.Until(t, 10*time.Second, "the other one refused", func() bool {
		return counter(t, e.reg, "hubhooks_logger_records_undecodable_total", "invalid") == 1
	})
	if _, err := e.store.Get(ctx, "victim", "dlv_forged"); !errors.Is(err, logstore.ErrNotFound) {
		t.Fatalf("the record on another hub's subject: %v, want not found", err)
	}
}

func TestGetEventLogMasksSecretAndScopesByHub(t *testing.T) {
	e := start(t, logger.Config{})
	ctx := context.Background()
	publish(t, e.js, record(newJob("hub1", "dlv_m", time.Now()), 1, hubhooksv1.StatusRetrying, 500), "")
	var got *hubhooksv1.GetEventLogResponse
	poll.Until(t, 10*time.Second, "entry stored", func() bool {
		var err error
		got, err = e.client.GetEventLog(ctx, &hubhooksv1.GetEventLogRequest{HubId: "hub1", Id: "dlv_m"})
		return err == nil
	})
	if len(got.Attempts) != 1 {
		t.Fatalf("%d attempts, want 1", len(got.Attempts))
	}
	h := got.Attempts[0].Request.Headers
	if h["x-rapidapi-webhook-secret"] != webhook.MaskSecret {
		t.Fatalf("secret header = %q, want %q", h["x-rapidapi-webhook-secret"], webhook.MaskSecret)
	}
	if got.RequestBody != `{"id":"msg_dlv_m"}` || got.Attempts[0].Request.Body != "" || got.EventLog.Status != hubhooksv1.StatusRetrying.APIName() {
		t.Fatalf("request body %q, attempt request body %q, status %s; want the body once", got.RequestBody, got.Attempts[0].Request.Body, got.EventLog.Status)
	}
	_, err := e.client.GetEventLog(ctx, &hubhooksv1.GetEventLogRequest{HubId: "hub2", Id: "dlv_m"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("another hub's entry: %v, want NotFound", err)
	}
	_, err = e.client.Redeliver(ctx, &hubhooksv1.RedeliverRequest{HubId: "hub2", Id: "dlv_m"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("redeliver another hub's entry: %v, want NotFound", err)
	}
}

// TestGetEventLogSendsTheBodyOnce: an entry with a 1 MiB body and eight
// attempts answers in little more than 1 MiB (it was the body eight times,
// over a client's default 4 MiB limit).
func TestGetEventLogSendsTheBodyOnce(t *testing.T) {
	e := start(t, logger.Config{})
	ctx := context.Background()
	job := newJob("hub1", "dlv_big", time.Now())
	job.Body = []byte(`{"pad":"` + strings.Repeat("x", 1<<20) + `"}`)
	var recs []*deliveryv1.AttemptRecorded
	for a := int32(1); a <= 8; a++ {
		recs = append(recs, record(job, a, hubhooksv1.StatusRetrying, 500))
	}
	if _, err := e.store.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	got, err := e.client.GetEventLog(ctx, &hubhooksv1.GetEventLogRequest{HubId: "hub1", Id: "dlv_big"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Attempts) != 8 || got.RequestBody != string(job.Body) {
		t.Fatalf("%d attempts, body of %d bytes; want 8 and the body", len(got.Attempts), len(got.RequestBody))
	}
	if n := proto.Size(got); n > len(job.Body)+64<<10 {
		t.Fatalf("response of %d bytes for a %d-byte body: the body is sent more than once", n, len(job.Body))
	}
}

// TestPurgeEventLogs purges before a time, then everything; other hubs
// keep their entries and bad requests are refused.
func TestPurgeEventLogs(t *testing.T) {
	e := start(t, logger.Config{})
	ctx := context.Background()
	base := time.Now().Add(-time.Hour)
	var recs []*deliveryv1.AttemptRecorded
	for i := range 10 {
		recs = append(recs, record(newJob("hub1", fmt.Sprintf("dlv_%d", i), base.Add(time.Duration(i)*time.Minute)), 1, hubhooksv1.StatusSucceeded, 200))
	}
	recs = append(recs, record(newJob("hub2", "dlv_other", base), 1, hubhooksv1.StatusSucceeded, 200))
	if _, err := e.store.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	resp, err := e.client.PurgeEventLogs(ctx, &hubhooksv1.PurgeEventLogsRequest{HubId: "hub1", Before: timestamppb.New(base.Add(4 * time.Minute))})
	if err != nil || resp.Purged != 4 {
		t.Fatalf("purge before +4m = %v, %v; want 4 purged", resp, err)
	}
	for range 2 {
		resp, err = e.client.PurgeEventLogs(ctx, &hubhooksv1.PurgeEventLogsRequest{HubId: "hub1"})
		if err != nil {
			t.Fatal(err)
		}
	}
	if resp.Purged != 0 {
		t.Fatalf("second purge of everything purged %d, want 0", resp.Purged)
	}
	list, err := e.client.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: "hub1"})
	if err != nil || len(list.EventLogs) != 0 {
		t.Fatalf("hub1 after purging: %v, %v", list, err)
	}
	list, err = e.client.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: "hub2"})
	if err != nil || len(list.EventLogs) != 1 {
		t.Fatalf("hub2 after purging hub1: %v, %v", list, err)
	}
	for _, req := range []*hubhooksv1.PurgeEventLogsRequest{
		{HubId: ""}, {HubId: "a b"}, {HubId: "hub1", Before: &timestamppb.Timestamp{Seconds: -1}},
		{HubId: "hub1", Before: &timestamppb.Timestamp{Nanos: 2e9}},
	} {
		if _, err := e.client.PurgeEventLogs(ctx, req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("PurgeEventLogs(%v) = %v, want InvalidArgument", req, err)
		}
	}
}

func TestListEventLogsOverGRPC(t *testing.T) {
	e := start(t, logger.Config{})
	ctx := context.Background()
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var recs []*deliveryv1.AttemptRecorded
	for i := range 120 {
		job := newJob("hub1", fmt.Sprintf("dlv_%03d", i), base.Add(time.Duration(i)*time.Second))
		if i%2 == 1 {
			job.EventType = "API.UPDATED"
			job.Url = "https://other.example/h"
		}
		job.WebhookEventId = fmt.Sprintf("msg_%d", i/4)
		st := hubhooksv1.StatusSucceeded
		if i%3 == 0 {
			st = hubhooksv1.StatusDead
		}
		recs = append(recs, record(job, 1, st, 200))
	}
	if _, err := e.store.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	listAll := func(req *hubhooksv1.ListEventLogsRequest) ([]string, []int) {
		t.Helper()
		var ids []string
		var sizes []int
		for {
			resp, err := e.client.ListEventLogs(ctx, req)
			if err != nil {
				t.Fatalf("ListEventLogs: %v", err)
			}
			sizes = append(sizes, len(resp.EventLogs))
			for _, l := range resp.EventLogs {
				ids = append(ids, l.Id)
			}
			if resp.NextPageToken == "" {
				return ids, sizes
			}
			req = proto.Clone(req).(*hubhooksv1.ListEventLogsRequest)
			req.PageToken = resp.NextPageToken
		}
	}
	want := func(pred func(i int) bool) []string {
		var out []string
		for i := 119; i >= 0; i-- {
			if pred(i) {
				out = append(out, fmt.Sprintf("dlv_%03d", i))
			}
		}
		return out
	}
	ids, sizes := listAll(&hubhooksv1.ListEventLogsRequest{HubId: "hub1", PageSize: 50})
	if !slices.Equal(sizes, []int{50, 50, 20}) || !slices.Equal(ids, want(func(int) bool { return true })) {
		t.Fatalf("pages %v, ids %v", sizes, ids)
	}
	ids, _ = listAll(&hubhooksv1.ListEventLogsRequest{HubId: "hub1"})
	if len(ids) != 120 {
		t.Fatalf("default page size: %d ids", len(ids))
	}
	tests := []struct {
		name string
		req  *hubhooksv1.ListEventLogsRequest
		want []string
	}{
		{"event_type", &hubhooksv1.ListEventLogsRequest{EventType: "API.UPDATED"}, want(func(i int) bool { return i%2 == 1 })},
		{"status", &hubhooksv1.ListEventLogsRequest{Status: "dead"}, want(func(i int) bool { return i%3 == 0 })},
		{"url", &hubhooksv1.ListEventLogsRequest{Url: "https://example.com/hook"}, want(func(i int) bool { return i%2 == 0 })},
		{"event_id", &hubhooksv1.ListEventLogsRequest{EventId: "msg_7"}, want(func(i int) bool { return i/4 == 7 })},
		{"since until", &hubhooksv1.ListEventLogsRequest{Since: timestamppb.New(base.Add(100 * time.Second)), Until: timestamppb.New(base.Add(109 * time.Second))},
			want(func(i int) bool { return i >= 100 && i <= 109 })},
		{"status and type", &hubhooksv1.ListEventLogsRequest{Status: "dead", EventType: "API.UPDATED", PageSize: 3},
			want(func(i int) bool { return i%3 == 0 && i%2 == 1 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.HubId = "hub1"
			got, _ := listAll(tt.req)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestRedeliver(t *testing.T) {
	e := start(t, logger.Config{})
	ctx := context.Background()
	old := newJob("hub1", "dlv_orig", time.Now().Add(-time.Hour))
	if _, err := e.store.Write(ctx, []*deliveryv1.AttemptRecorded{record(old, 8, hubhooksv1.StatusDead, 500)}); err != nil {
		t.Fatal(err)
	}
	resp, err := e.client.Redeliver(ctx, &hubhooksv1.RedeliverRequest{HubId: "hub1", Id: "dlv_orig"})
	if err != nil {
		t.Fatalf("Redeliver: %v", err)
	}
	nl := resp.EventLog
	if nl.Id == "dlv_orig" || !strings.HasPrefix(nl.Id, "dlv_") || nl.Status != hubhooksv1.StatusPending.APIName() ||
		nl.RedeliveryOf != "dlv_orig" || nl.EventId != old.WebhookEventId || nl.Url != old.Url || nl.Attempts != 0 {
		t.Fatalf("new entry = %v", nl)
	}
	stream, err := e.js.Stream(ctx, eventbus.StreamDeliveries)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := stream.GetLastMsgForSubject(ctx, eventbus.DeliverySubject("hub1"))
	if err != nil {
		t.Fatalf("no job on the deliveries stream: %v", err)
	}
	jobs, err := eventbus.DecodeJobs(raw.Header, raw.Data)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("%d jobs, %v", len(jobs), err)
	}
	job := jobs[0]
	if job.DeliveryId != nl.Id || job.WebhookEventId != old.WebhookEventId || job.RedeliveryOf != "dlv_orig" ||
		job.Attempt != 1 || job.ConfigVersion != 0 || string(job.Body) != string(old.Body) ||
		job.UrlId != old.UrlId || job.Url != old.Url || job.EventType != old.EventType || job.DomainEventId != old.DomainEventId {
		t.Fatalf("published job = %v", job)
	}
	got, err := e.client.GetEventLog(ctx, &hubhooksv1.GetEventLogRequest{HubId: "hub1", Id: nl.Id})
	if err != nil || got.EventLog.Status != hubhooksv1.StatusPending.APIName() {
		t.Fatalf("new entry: %v, %v", got, err)
	}
	list, err := e.client.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: "hub1", Status: "pending"})
	if err != nil || len(list.EventLogs) != 1 || list.EventLogs[0].Id != nl.Id {
		t.Fatalf("pending list: %v, %v", list, err)
	}
	// The deliverer's first attempt record takes over from pending.
	publish(t, e.js, record(job, 1, hubhooksv1.StatusSucceeded, 200), "")
	poll.Until(t, 10*time.Second, "redelivery succeeded", func() bool {
		g, err := e.client.GetEventLog(ctx, &hubhooksv1.GetEventLogRequest{HubId: "hub1", Id: nl.Id})
		return err == nil && g.EventLog.Status == hubhooksv1.StatusSucceeded.APIName() && g.EventLog.Attempts == 1
	})
	if _, err := e.client.Redeliver(ctx, &hubhooksv1.RedeliverRequest{HubId: "hub1", Id: "dlv_nope"}); status.Code(err) != codes.NotFound {
		t.Fatalf("redeliver missing: %v, want NotFound", err)
	}
}

func TestInvalidRequests(t *testing.T) {
	e := start(t, logger.Config{})
	ctx := context.Background()
	now := time.Now()
	tests := []struct {
		name string
		call func() error
	}{
		{"list without hub", func() error { _, err := e.client.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{}); return err }},
		{"list bad hub", func() error {
			_, err := e.client.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: "a.b"})
			return err
		}},
		{"list bad status", func() error {
			_, err := e.client.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: "h", Status: "ok"})
			return err
		}},
		{"list since after until", func() error {
			_, err := e.client.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: "h", Since: timestamppb.New(now), Until: timestamppb.New(now.Add(-time.Second))})
			return err
		}},
		{"list negative page size", func() error {
			_, err := e.client.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: "h", PageSize: -1})
			return err
		}},
		{"list bad token", func() error {
			_, err := e.client.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: "h", PageToken: "garbage"})
			return err
		}},
		{"list bad response class", func() error {
			_, err := e.client.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: "h", ResponseClass: "200"})
			return err
		}},
		{"list huge domain event id", func() error {
			_, err := e.client.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: "h", DomainEventId: strings.Repeat("x", 300)})
			return err
		}},
		{"list huge url", func() error {
			_, err := e.client.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: "h", Url: strings.Repeat("x", 5000)})
			return err
		}},
		{"get without id", func() error {
			_, err := e.client.GetEventLog(ctx, &hubhooksv1.GetEventLogRequest{HubId: "h"})
			return err
		}},
		{"get bad id", func() error {
			_, err := e.client.GetEventLog(ctx, &hubhooksv1.GetEventLogRequest{HubId: "h", Id: "dlv:1"})
			return err
		}},
		{"get without hub", func() error {
			_, err := e.client.GetEventLog(ctx, &hubhooksv1.GetEventLogRequest{Id: "dlv_1"})
			return err
		}},
		{"redeliver without id", func() error {
			_, err := e.client.Redeliver(ctx, &hubhooksv1.RedeliverRequest{HubId: "h"})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("got %v, want InvalidArgument", err)
			}
			if msg := status.Convert(err).Message(); msg == "" {
				t.Fatal("empty error message")
			}
		})
	}
	// Oversized pages are clamped, not refused.
	if _, err := e.client.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: "h", PageSize: 100000}); err != nil {
		t.Fatalf("page_size above the maximum: %v, want it clamped", err)
	}
}

func TestTrimmingThroughConsumer(t *testing.T) {
	e := start(t, logger.Config{MaxEntriesPerHub: 5, BatchSize: 4})
	base := time.Now().Add(-time.Minute)
	for i := range 12 {
		publish(t, e.js, record(newJob("hub1", fmt.Sprintf("dlv_t%02d", i), base.Add(time.Duration(i)*time.Second)), 1, hubhooksv1.StatusSucceeded, 200), "")
	}
	poll.Until(t, 10*time.Second, "records written", func() bool { return counter(t, e.reg, "hubhooks_logger_records_written_total", "") == 12 })
	resp, err := e.client.ListEventLogs(context.Background(), &hubhooksv1.ListEventLogsRequest{HubId: "hub1"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range resp.EventLogs {
		got = append(got, l.Id)
	}
	if want := []string{"dlv_t11", "dlv_t10", "dlv_t09", "dlv_t08", "dlv_t07"}; !slices.Equal(got, want) {
		t.Fatalf("kept %v, want %v", got, want)
	}
	if n := counter(t, e.reg, "hubhooks_logger_entries_trimmed_total", ""); n != 7 {
		t.Fatalf("trimmed metric = %v, want 7", n)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     logger.Config
		wantErr []string
	}{
		{"zero is valid", logger.Config{}, nil},
		{"negatives", logger.Config{Retention: -1, BatchSize: -1}, []string{"Retention", "BatchSize"}},
		{"scan limit below page", logger.Config{ListScanLimit: 10}, []string{"ListScanLimit"}},
		{"fetch wait not below ack wait", logger.Config{FetchWait: time.Minute, AckWait: time.Second}, []string{"FetchWait"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err != nil) != (len(tt.wantErr) > 0) {
				t.Fatalf("Validate = %v, want errors about %v", err, tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
		})
	}
}

func TestNewRejectsNilDependencies(t *testing.T) {
	rdb, _ := redistest.New(t)
	_, _, js := natstest.Start(t)
	if _, err := logger.New(logger.Config{}, nil, rdb); err == nil {
		t.Error("nil JetStream accepted")
	}
	if _, err := logger.New(logger.Config{}, js, nil); err == nil {
		t.Error("nil Redis accepted")
	}
	svc, err := logger.New(logger.Config{}, js, rdb)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Ready(context.Background()); !errors.Is(err, logger.ErrNotReady) {
		t.Errorf("Ready before Run = %v, want ErrNotReady", err)
	}
}

// TestConsumerStoresBatchMessages: a batch message (the deliverer's
// eventbus.NewAttemptBatchMsg) is stored record by record; an invalid record
// of a batch is counted and dropped without losing the others, and a batch
// that is not decodable is terminated.
func TestConsumerStoresBatchMessages(t *testing.T) {
	e := start(t, logger.Config{})
	ctx := context.Background()
	var recs []*deliveryv1.AttemptRecorded
	var sizes []int
	for i := range 3 {
		rec := record(newJob("hub1", fmt.Sprintf("dlv_b%d", i), time.Now()), 1, hubhooksv1.StatusSucceeded, 200)
		if i == 1 {
			rec.Status = hubhooksv1.DeliveryStatus(99)
		}
		recs, sizes = append(recs, rec), append(sizes, rec.SizeVT())
	}
	batch, err := eventbus.NewAttemptBatchMsg("hub1", recs, sizes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.PublishMsg(ctx, batch); err != nil {
		t.Fatal(err)
	}
	broken, err := eventbus.NewAttemptBatchMsg("hub1", recs, sizes)
	if err != nil {
		t.Fatal(err)
	}
	broken.Data = broken.Data[:len(broken.Data)-3]
	if _, err := e.js.PublishMsg(ctx, broken); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "stream drained", func() bool { return streamMsgs(t, e.js, eventbus.StreamAttempts) == 0 })
	for _, id := range []string{"dlv_b0", "dlv_b2"} {
		got, err := e.store.Get(ctx, "hub1", id)
		if err != nil {
			t.Fatalf("%s acked but not stored: %v", id, err)
		}
		if got.Log.GetStatus() != hubhooksv1.StatusSucceeded.APIName() {
			t.Fatalf("%s status %q", id, got.Log.GetStatus())
		}
		for _, a := range got.Attempts {
			if v := a.GetRequest().GetHeaders()["x-rapidapi-webhook-secret"]; v != "whsec_********" {
				t.Fatalf("%s: secret header stored as %q", id, v)
			}
		}
	}
	if _, err := e.store.Get(ctx, "hub1", "dlv_b1"); err == nil {
		t.Fatal("invalid record of the batch stored")
	}
	if n := counter(t, e.reg, "hubhooks_logger_records_undecodable_total", "invalid"); n != 1 {
		t.Errorf("invalid records = %v, want 1", n)
	}
	if n := counter(t, e.reg, "hubhooks_logger_records_undecodable_total", "decode"); n != 1 {
		t.Errorf("undecodable messages = %v, want 1", n)
	}
}

func TestConsumerFetchesMessagesLargerThanBatchBytes(t *testing.T) {
	e := start(t, logger.Config{BatchBytes: 600})
	ctx := context.Background()
	for i, size := range []int{10, 4000, 10, 10} {
		job := newJob("hub1", fmt.Sprintf("dlv_s%d", i), time.Now())
		job.Body = []byte(`{"pad":"` + strings.Repeat("x", size) + `"}`)
		msg, err := eventbus.NewAttemptMsg(record(job, 1, hubhooksv1.StatusSucceeded, 200))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 10*time.Second, "stream drained", func() bool { return streamMsgs(t, e.js, eventbus.StreamAttempts) == 0 })
	for i := range 4 {
		if _, err := e.store.Get(ctx, "hub1", fmt.Sprintf("dlv_s%d", i)); err != nil {
			t.Fatalf("dlv_s%d acked but not stored: %v", i, err)
		}
	}
}

// TestConsumerDeletedWhileRunning: the logger's consumer deleted under it
// is made again, loudly, and the records published after are stored.
func TestConsumerDeletedWhileRunning(t *testing.T) {
	e := start(t, logger.Config{})
	ctx := context.Background()
	publish(t, e.js, record(newJob("hub1", "dlv_first", time.Now()), 1, hubhooksv1.StatusSucceeded, 200), "")
	poll.Until(t, 10*time.Second, "first record stored", func() bool { _, err := e.store.Get(ctx, "hub1", "dlv_first"); return err == nil })
	if err := e.js.DeleteConsumer(ctx, eventbus.StreamAttempts, eventbus.ConsumerLogger); err != nil {
		t.Fatal(err)
	}
	publish(t, e.js, record(newJob("hub1", "dlv_second", time.Now()), 1, hubhooksv1.StatusSucceeded, 200), "")
	poll.Until(t, 20*time.Second, "the record after the deletion stored", func() bool {
		_, err := e.store.Get(ctx, "hub1", "dlv_second")
		return err == nil
	})
	if n := counter(t, e.reg, "hubhooks_logger_consumer_lost_total", ""); n != 1 {
		t.Errorf("consumer lost counted %v times, want 1", n)
	}
}

// TestConsumerDeletesHubs: a HubDeleted on the attempts stream removes the
// hub's event log, and the records of its deliveries created before the
// deletion that arrive afterwards are dropped; another hub keeps its log.
func TestConsumerDeletesHubs(t *testing.T) {
	e := start(t, logger.Config{})
	ctx := context.Background()
	base := time.Now().Add(-time.Hour)
	for i := range 5 {
		publish(t, e.js, record(newJob("gone", fmt.Sprintf("dlv_g%d", i), base.Add(time.Duration(i)*time.Minute)), 1, hubhooksv1.StatusRetrying, 500), "")
		publish(t, e.js, record(newJob("kept", fmt.Sprintf("dlv_k%d", i), base.Add(time.Duration(i)*time.Minute)), 1, hubhooksv1.StatusSucceeded, 200), "")
	}
	count := func(hub string) int {
		resp, err := e.client.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: hub})
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.GetEventLogs())
	}
	poll.Until(t, 10*time.Second, "records stored", func() bool { return count("gone") == 5 && count("kept") == 5 })

	deleted := time.Now()
	m, err := eventbus.NewHubDeletedMsg("gone", deleted)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the deleted hub's log gone", func() bool { return count("gone") == 0 })
	// Late records of deliveries under way at the deletion (a retry's
	// cancellation), then a delivery of the hub id configured again.
	publish(t, e.js, record(newJob("gone", "dlv_g1", base.Add(time.Minute)), 2, hubhooksv1.StatusCancelled, 0), "")
	publish(t, e.js, record(newJob("gone", "dlv_new", deleted.Add(time.Second)), 1, hubhooksv1.StatusSucceeded, 200), "")
	poll.Until(t, 10*time.Second, "the new delivery stored", func() bool { return count("gone") == 1 })
	if _, err := e.client.GetEventLog(ctx, &hubhooksv1.GetEventLogRequest{HubId: "gone", Id: "dlv_g1"}); status.Code(err) != codes.NotFound {
		t.Fatalf("late record of a deleted hub: %v, want NotFound", err)
	}
	if n := count("kept"); n != 5 {
		t.Fatalf("the other hub lists %d entries, want 5", n)
	}
	// A deletion that names no hub is dropped, not retried.
	bad := nats.NewMsg(eventbus.AttemptSubject("gone"))
	bad.Header.Set(eventbus.HeaderContentType, eventbus.ContentTypeHubDeleted)
	bad.Data = []byte{0x0a, 0x00}
	if _, err := e.js.PublishMsg(ctx, bad); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "bad deletion counted", func() bool {
		return counter(t, e.reg, "hubhooks_logger_records_undecodable_total", "decode") >= 1
	})
}
