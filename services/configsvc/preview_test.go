package configsvc_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/hubhooks/hubhooks/pkg/webhook"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// The preview is the request a test event sends: signed with the hub's
// secret (masked in the headers), the sample or the given body, nothing sent.
func TestPreviewTestEvent(t *testing.T) {
	e := newEnv(t)
	s := e.startServer(t, "")
	ctx := ctxT(t)
	cfg, err := s.client.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "acme", Url: "http://127.0.0.1:9/hooks"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.client.PreviewTestEvent(ctx, &hubhooksv1.SendTestEventRequest{HubId: "acme", EventType: "BILLINGPLAN.CREATED", Url: "http://127.0.0.1:9/hooks"})
	if err != nil {
		t.Fatalf("PreviewTestEvent: %v", err)
	}
	req := resp.GetRequest()
	if req.GetMethod() != "POST" || req.GetUrl() != "http://127.0.0.1:9/hooks" || req.GetHeaders()[webhook.HeaderSecret] != webhook.MaskSecret {
		t.Fatalf("preview = %s %s, secret header %q", req.GetMethod(), req.GetUrl(), req.GetHeaders()[webhook.HeaderSecret])
	}
	var body struct {
		Type string `json:"type"`
		Test bool   `json:"test"`
	}
	if err := json.Unmarshal([]byte(req.GetBody()), &body); err != nil || body.Type != "BILLINGPLAN.CREATED" {
		t.Fatalf("preview body %s (%v)", req.GetBody(), err)
	}
	h := http.Header{}
	for k, v := range req.GetHeaders() {
		h.Set(k, v)
	}
	ts, _ := strconv.ParseInt(h.Get(webhook.HeaderTimestamp), 10, 64)
	if err := webhook.Verify(cfg.GetSecret(), h, []byte(req.GetBody()), time.Hour, time.Unix(ts, 0)); err != nil {
		t.Fatalf("preview signature does not verify with the hub's secret: %v", err)
	}

	custom, err := s.client.PreviewTestEvent(ctx, &hubhooksv1.SendTestEventRequest{HubId: "acme", EventType: "API.CREATED", Url: "http://127.0.0.1:9/hooks", Body: `{"id":"api_mine"}`})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal([]byte(custom.GetRequest().GetBody()), &got); err != nil || got.Data["id"] != "api_mine" {
		t.Fatalf("preview with a body: %s", custom.GetRequest().GetBody())
	}
	_, err = s.client.PreviewTestEvent(ctx, &hubhooksv1.SendTestEventRequest{HubId: "acme", EventType: "API.CREATED", Url: "http://127.0.0.1:9/other"})
	wantCode(t, err, codes.NotFound)
	_, err = s.client.PreviewTestEvent(ctx, &hubhooksv1.SendTestEventRequest{HubId: "acme", EventType: "API.CREATED", Url: "http://127.0.0.1:9/hooks", Body: `[1]`})
	wantCode(t, err, codes.InvalidArgument)
}

// The preview of a row's Test event is the requests SendTestDomainEvent
// sends: one per webhook event of the cascade, in order, under one test
// domain event of the row's type, signed, the secret masked, nothing sent.
func TestPreviewTestDomainEvent(t *testing.T) {
	e := newEnv(t)
	s := e.startServer(t, "")
	ctx := ctxT(t)
	rcv := newReceiver(t)
	cfg, err := s.client.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "ptd", Url: rcv.URL + "/in"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.client.PreviewTestDomainEvent(ctx, &hubhooksv1.SendTestDomainEventRequest{HubId: "ptd", DomainEventType: "API.CREATED", Url: rcv.URL + "/in"})
	if err != nil {
		t.Fatalf("PreviewTestDomainEvent: %v", err)
	}
	want := []string{"API.CREATED", "API.UPDATED", "API_VERSION.CREATED", "BILLINGPLAN.CREATED", "SUBSCRIPTION.CREATED", "TARGET_GROUP.CREATED"}
	if len(resp.GetRequests()) != len(want) {
		t.Fatalf("%d requests, want %d", len(resp.GetRequests()), len(want))
	}
	domainID := ""
	for i, req := range resp.GetRequests() {
		var evt webhook.Event
		if err := json.Unmarshal([]byte(req.GetBody()), &evt); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			domainID = evt.DomainEvent.ID
		}
		if evt.Type != want[i] || !evt.Test || evt.DomainEvent.Type != "API.CREATED" || evt.DomainEvent.ID != domainID || domainID == "" {
			t.Errorf("request %d: %s test=%v domain %+v; want %s of one API.CREATED test domain event", i, evt.Type, evt.Test, evt.DomainEvent, want[i])
		}
		if req.GetMethod() != "POST" || req.GetUrl() != rcv.URL+"/in" || req.GetHeaders()[webhook.HeaderSecret] != webhook.MaskSecret {
			t.Errorf("request %d: %s %s, secret header %q", i, req.GetMethod(), req.GetUrl(), req.GetHeaders()[webhook.HeaderSecret])
		}
		h := http.Header{}
		for k, v := range req.GetHeaders() {
			h.Set(k, v)
		}
		ts, _ := strconv.ParseInt(h.Get(webhook.HeaderTimestamp), 10, 64)
		if err := webhook.Verify(cfg.GetSecret(), h, []byte(req.GetBody()), time.Hour, time.Unix(ts, 0)); err != nil {
			t.Errorf("request %d: the signature does not verify with the hub's secret: %v", i, err)
		}
	}
	_, err = s.client.PreviewTestDomainEvent(ctx, &hubhooksv1.SendTestDomainEventRequest{HubId: "ptd", DomainEventType: "API.CREATED", Url: rcv.URL + "/other"})
	wantCode(t, err, codes.NotFound)
	_, err = s.client.PreviewTestDomainEvent(ctx, &hubhooksv1.SendTestDomainEventRequest{HubId: "ptd", DomainEventType: "API_VERSION.DELETED", Url: rcv.URL + "/in"})
	wantCode(t, err, codes.InvalidArgument)
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.got) != 0 {
		t.Fatalf("the receiver got %d requests from previews", len(rcv.got))
	}
}
