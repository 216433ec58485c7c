package configsvc_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// TestSendTestDomainEvent: testing a row of the List of events ("API
// Created") sends each webhook event it triggers, in cascade order, with
// sample data, and logs each as a test event of one domain event.
func TestSendTestDomainEvent(t *testing.T) {
	e := newEnv(t)
	s := e.startServer(t, "")
	ctx := ctxT(t)
	rcv := newReceiver(t)
	if _, err := s.client.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "td", Url: rcv.URL + "/in"}); err != nil {
		t.Fatal(err)
	}
	cons, err := e.js.CreateConsumer(ctx, eventbus.StreamAttempts, jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.client.SendTestDomainEvent(ctx, &hubhooksv1.SendTestDomainEventRequest{HubId: "td", DomainEventType: "API.CREATED", Url: rcv.URL + "/in"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"API.CREATED", "API.UPDATED", "API_VERSION.CREATED", "BILLINGPLAN.CREATED", "SUBSCRIPTION.CREATED", "TARGET_GROUP.CREATED"}
	if len(resp.GetResults()) != len(want) {
		t.Fatalf("%d results, want %d", len(resp.GetResults()), len(want))
	}
	rcv.mu.Lock()
	got := slices.Clone(rcv.got)
	rcv.mu.Unlock()
	for i, typ := range want {
		r := resp.GetResults()[i]
		if r.GetResponse().GetStatusCode() != 200 || r.GetEventLogId() == "" {
			t.Errorf("result %d: %v", i, r)
		}
		var evt webhook.Event
		if err := json.Unmarshal(got[i].body, &evt); err != nil {
			t.Fatal(err)
		}
		var data map[string]any
		if err := json.Unmarshal(evt.Data, &data); err != nil || len(data) == 0 {
			t.Errorf("%s: sample data %s", typ, evt.Data)
		}
		if evt.Type != typ || !evt.Test || evt.DomainEvent.ID != resp.GetDomainEventId() || evt.DomainEvent.Type != "API.CREATED" {
			t.Errorf("webhook %d: %s test=%v domain %+v; want %s of the test domain event", i, evt.Type, evt.Test, evt.DomainEvent, typ)
		}
		rec := nextAttempt(t, ctx, cons)
		if j := rec.GetJob(); !j.GetTest() || j.GetDomainEventId() != resp.GetDomainEventId() || j.GetDomainEventType() != "API.CREATED" || j.GetEventType() != typ {
			t.Errorf("record %d: %v", i, j)
		}
	}
	for _, tt := range []struct {
		name string
		req  *hubhooksv1.SendTestDomainEventRequest
		want codes.Code
	}{
		{"no type", &hubhooksv1.SendTestDomainEventRequest{HubId: "td", Url: rcv.URL + "/in"}, codes.InvalidArgument},
		{"a webhook event type only", &hubhooksv1.SendTestDomainEventRequest{HubId: "td", DomainEventType: "TARGET_GROUP.CREATED", Url: rcv.URL + "/in"}, codes.InvalidArgument},
		{"triggers nothing", &hubhooksv1.SendTestDomainEventRequest{HubId: "td", DomainEventType: "API_VERSION.DELETED", Url: rcv.URL + "/in"}, codes.InvalidArgument},
		{"not a URL of the hub", &hubhooksv1.SendTestDomainEventRequest{HubId: "td", DomainEventType: "API.CREATED", Url: "https://elsewhere.example.com"}, codes.NotFound},
		{"bad hub", &hubhooksv1.SendTestDomainEventRequest{HubId: "t d", DomainEventType: "API.CREATED", Url: rcv.URL + "/in"}, codes.InvalidArgument},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.client.SendTestDomainEvent(ctx, tt.req)
			wantCode(t, err, tt.want)
		})
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.got) != len(want) {
		t.Fatalf("the receiver got %d requests, want %d (refused calls send nothing)", len(rcv.got), len(want))
	}
}

// TestTestEventBodyBounds: an edited body of up to 64 KiB is sent as the
// sample data; beyond it, or not a JSON object, it is refused with the
// reason.
func TestTestEventBodyBounds(t *testing.T) {
	e := newEnv(t)
	s := e.startServer(t, "")
	ctx := ctxT(t)
	rcv := newReceiver(t)
	if _, err := s.client.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "tbb", Url: rcv.URL}); err != nil {
		t.Fatal(err)
	}
	pad := func(n int) string { return `{"note":"` + strings.Repeat("x", n-len(`{"note":""}`)) + `"}` }
	if _, err := s.client.SendTestEvent(ctx, &hubhooksv1.SendTestEventRequest{HubId: "tbb", EventType: "API.CREATED", Url: rcv.URL, Body: pad(64 << 10)}); err != nil {
		t.Fatalf("a 64 KiB body: %v", err)
	}
	var evt webhook.Event
	if err := json.Unmarshal(rcv.last(t).body, &evt); err != nil || len(evt.Data) != 64<<10 {
		t.Fatalf("sent data of %d bytes, %v; want the 64 KiB body", len(evt.Data), err)
	}
	_, err := s.client.SendTestEvent(ctx, &hubhooksv1.SendTestEventRequest{HubId: "tbb", EventType: "API.CREATED", Url: rcv.URL, Body: pad(64<<10 + 1)})
	wantCode(t, err, codes.InvalidArgument)
	_, err = s.client.SendTestEvent(ctx, &hubhooksv1.SendTestEventRequest{HubId: "tbb", EventType: "API.CREATED", Url: rcv.URL, Body: `{"a":1,}`})
	wantCode(t, err, codes.InvalidArgument)
	if msg := status.Convert(err).Message(); !strings.Contains(msg, "not valid JSON") {
		t.Errorf("refusal %q does not say why", msg)
	}
}
