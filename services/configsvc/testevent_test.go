package configsvc_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/configsvc"
)

// receiver is an httptest webhook receiver that records what it got.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	got    []receivedReq
}

type receivedReq struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{status: http.StatusOK}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, receivedReq{header: req.Header.Clone(), body: b})
		st := r.status
		r.mu.Unlock()
		w.Header().Set("X-Receiver", "test")
		w.WriteHeader(st)
		_, _ = w.Write([]byte(`{"received":true}`))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) last(t *testing.T) receivedReq {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) == 0 {
		t.Fatal("receiver got nothing")
	}
	return r.got[len(r.got)-1]
}

func (r *receiver) setStatus(s int) {
	r.mu.Lock()
	r.status = s
	r.mu.Unlock()
}

// nextAttempt fetches the next attempt record from HUBHOOKS_ATTEMPTS.
func nextAttempt(t *testing.T, ctx context.Context, cons jetstream.Consumer) *deliveryv1.AttemptRecorded {
	t.Helper()
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		_ = m.Ack()
		recs, err := eventbus.DecodeAttempts(m.Headers(), m.Data())
		if err != nil || len(recs) != 1 {
			t.Fatalf("%d attempt records, %v", len(recs), err)
		}
		return recs[0]
	}
	t.Fatalf("no attempt record: %v", batch.Error())
	return nil
}

func TestSendTestEvent(t *testing.T) {
	e := newEnv(t)
	s := e.startServer(t, "")
	ctx := ctxT(t)
	rcv := newReceiver(t)
	hookURL := rcv.URL + "/hooks/hubhooks"

	cfg, err := s.client.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "th", Url: hookURL})
	if err != nil {
		t.Fatal(err)
	}
	urlID := cfg.GetCallbackUrls()[0].GetId()
	oldSecret := cfg.GetSecret()
	gs, err := s.client.GenerateSecret(ctx, &hubhooksv1.GenerateSecretRequest{HubId: "th"})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := e.js.CreateConsumer(ctx, eventbus.StreamAttempts, jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}

	// Triggers are off: test events are sent all the same.
	resp, err := s.client.SendTestEvent(ctx, &hubhooksv1.SendTestEventRequest{HubId: "th", EventType: "BILLINGPLAN.CREATED", Url: hookURL})
	if err != nil {
		t.Fatal(err)
	}
	got := rcv.last(t)
	for _, secret := range []string{gs.GetSecret(), oldSecret} { // both sign during the grace period
		if err := webhook.Verify(secret, got.header, got.body, 5*time.Minute, time.Now()); err != nil {
			t.Fatalf("signature does not verify: %v", err)
		}
	}
	if got.header.Get(webhook.HeaderSecret) != gs.GetSecret() {
		t.Fatal("x-rapidapi-webhook-secret is not the current secret")
	}
	var evt webhook.Event
	if err := json.Unmarshal(got.body, &evt); err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	if err := json.Unmarshal(evt.Data, &data); err != nil {
		t.Fatal(err)
	}
	if !evt.Test || evt.Type != "BILLINGPLAN.CREATED" || evt.HubID != "th" || !strings.HasPrefix(evt.ID, "msg_") ||
		got.header.Get(webhook.HeaderID) != evt.ID || data["id"] != "billingplan_2a6e9c14" || data["name"] != "Pro" {
		t.Fatalf("event = %+v, data %v", evt, data)
	}
	if resp.GetResponse().GetStatusCode() != 200 || !strings.Contains(resp.GetResponse().GetBody(), "received") ||
		resp.GetRequest().GetUrl() != hookURL || resp.GetRequest().GetBody() != string(got.body) ||
		!strings.HasPrefix(resp.GetEventLogId(), "dlv_") {
		t.Fatalf("response = %v", resp)
	}
	if h := resp.GetRequest().GetHeaders(); strings.Contains(strings.Join(mapValues(h), " "), gs.GetSecret()) {
		t.Fatal("the returned request shows the secret")
	}

	rec := nextAttempt(t, ctx, cons)
	job := rec.GetJob()
	if !job.GetTest() || rec.GetStatus() != hubhooksv1.StatusSucceeded || rec.GetAttempt() != 1 || job.GetAttempt() != 1 ||
		job.GetDeliveryId() != resp.GetEventLogId() || job.GetWebhookEventId() != evt.ID || job.GetHubId() != "th" ||
		job.GetUrlId() != urlID || job.GetUrl() != hookURL || job.GetEventType() != "BILLINGPLAN.CREATED" ||
		string(job.GetBody()) != string(got.body) || rec.GetResponse().GetStatusCode() != 200 || rec.GetStartedAt() == nil {
		t.Fatalf("attempt record = %v", rec)
	}

	// A failing receiver: status failed, and a custom body replaces the sample data.
	rcv.setStatus(http.StatusInternalServerError)
	resp, err = s.client.SendTestEvent(ctx, &hubhooksv1.SendTestEventRequest{HubId: "th", EventType: "USER.DELETED", Url: hookURL, Body: `{"id":"user_42","custom":true}`})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetResponse().GetStatusCode() != 500 {
		t.Fatalf("response = %v", resp.GetResponse())
	}
	if err := json.Unmarshal(rcv.last(t).body, &evt); err != nil || string(evt.Data) != `{"id":"user_42","custom":true}` {
		t.Fatalf("custom body: data %s, %v", evt.Data, err)
	}
	rec = nextAttempt(t, ctx, cons)
	if rec.GetStatus() != hubhooksv1.StatusFailed || !rec.GetJob().GetTest() || rec.GetJob().GetDeliveryId() != resp.GetEventLogId() {
		t.Fatalf("attempt record = %v", rec)
	}
	if v := counter(t, s, "hubhooks_configsvc_test_events_total", "failed"); v != 1 {
		t.Fatalf("failed test events = %v", v)
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func TestSendTestEventRejectsBadInput(t *testing.T) {
	e := newEnv(t)
	s := e.startServer(t, "")
	ctx := ctxT(t)
	rcv := newReceiver(t)
	if _, err := s.client.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "tb", Url: rcv.URL}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  *hubhooksv1.SendTestEventRequest
		want codes.Code
	}{
		{"bad hub", &hubhooksv1.SendTestEventRequest{HubId: "t b", EventType: "API.CREATED", Url: rcv.URL}, codes.InvalidArgument},
		{"no event type", &hubhooksv1.SendTestEventRequest{HubId: "tb", Url: rcv.URL}, codes.InvalidArgument},
		{"domain-only subject", &hubhooksv1.SendTestEventRequest{HubId: "tb", EventType: "BASE_URL.CREATED", Url: rcv.URL}, codes.InvalidArgument},
		{"unknown event type", &hubhooksv1.SendTestEventRequest{HubId: "tb", EventType: "PIZZA.BAKED", Url: rcv.URL}, codes.InvalidArgument},
		{"no url", &hubhooksv1.SendTestEventRequest{HubId: "tb", EventType: "API.CREATED"}, codes.InvalidArgument},
		{"url not of hub", &hubhooksv1.SendTestEventRequest{HubId: "tb", EventType: "API.CREATED", Url: "https://example.com/other"}, codes.NotFound},
		{"unconfigured hub", &hubhooksv1.SendTestEventRequest{HubId: "nobody", EventType: "API.CREATED", Url: rcv.URL}, codes.NotFound},
		{"body array", &hubhooksv1.SendTestEventRequest{HubId: "tb", EventType: "API.CREATED", Url: rcv.URL, Body: `[1,2]`}, codes.InvalidArgument},
		{"body not json", &hubhooksv1.SendTestEventRequest{HubId: "tb", EventType: "API.CREATED", Url: rcv.URL, Body: `{"a":`}, codes.InvalidArgument},
		{"body null", &hubhooksv1.SendTestEventRequest{HubId: "tb", EventType: "API.CREATED", Url: rcv.URL, Body: `null`}, codes.InvalidArgument},
		{"body too large", &hubhooksv1.SendTestEventRequest{HubId: "tb", EventType: "API.CREATED", Url: rcv.URL, Body: `{"a":"` + strings.Repeat("x", configsvc.MaxTestBodyLen) + `"}`}, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.client.SendTestEvent(ctx, tt.req)
			wantCode(t, err, tt.want)
		})
	}
	info, err := e.js.Stream(ctx, eventbus.StreamAttempts)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 0 {
		t.Fatalf("bad requests published %d attempt records", n)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.got) != 0 {
		t.Fatalf("bad requests reached the receiver %d times", len(rcv.got))
	}
}

func TestSamplePayloadForEveryEventType(t *testing.T) {
	e := newEnv(t)
	s := e.startServer(t, "")
	resp, err := s.client.ListEventTypes(ctxT(t), &hubhooksv1.ListEventTypesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, typ := range resp.GetWebhookEventTypes() {
		t.Run(typ, func(t *testing.T) {
			p := configsvc.SamplePayload(typ, "hub-1", now)
			id, _ := p["id"].(string)
			if id == "" || strings.HasSuffix(id, "_sample") {
				t.Fatalf("no realistic sample for %s: %v", typ, p)
			}
			if strings.HasSuffix(typ, ".DELETED") && p["deletedAt"] == nil {
				t.Fatalf("%s sample lacks deletedAt", typ)
			}
			if _, err := json.Marshal(p); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSendTestEventRateLimited: a hub's test events are bounded per
// minute across every replica; other hubs and the next minute are not
// affected.
func TestSendTestEventRateLimited(t *testing.T) {
	e := newEnv(t)
	perMinute := func(c *configsvc.Config, rdb *redis.Client) *redis.Client { c.TestEventsPerMinute = 3; return rdb }
	a, b := e.startServer(t, "", perMinute), e.startServer(t, "", perMinute)
	ctx := ctxT(t)
	rcv := newReceiver(t)
	for _, hub := range []string{"busy", "calm"} {
		if _, err := a.client.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: hub, Url: rcv.URL}); err != nil {
			t.Fatal(err)
		}
	}
	send := func(s *server, hub string) error {
		_, err := s.client.SendTestEvent(ctx, &hubhooksv1.SendTestEventRequest{HubId: hub, EventType: "API.CREATED", Url: rcv.URL})
		return err
	}
	for i, s := range []*server{a, b, a} {
		if err := send(s, "busy"); err != nil {
			t.Fatalf("test event %d: %v", i+1, err)
		}
	}
	err := send(b, "busy")
	wantCode(t, err, codes.ResourceExhausted)
	if !strings.Contains(err.Error(), "3 test events this minute") || !strings.Contains(err.Error(), "try again in") {
		t.Errorf("refusal %q does not say the limit and when to retry", err)
	}
	if err := send(a, "calm"); err != nil {
		t.Fatalf("another hub: %v", err)
	}
	e.clock.Advance(time.Minute)
	if err := send(a, "busy"); err != nil {
		t.Fatalf("the next minute: %v", err)
	}
	rcv.mu.Lock()
	n := len(rcv.got)
	rcv.mu.Unlock()
	if n != 5 {
		t.Errorf("receiver got %d test events, want 5", n)
	}
}
