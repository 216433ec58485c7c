package operations_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/poll"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/internal/settings"
)

// watcher collects a WatchOperationalEvents stream.
type watcher struct {
	mu  sync.Mutex
	got []*hubhooksv1.OperationalEvent
}

func (e *env) watch(t *testing.T, hub string, since *timestamppb.Timestamp) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := e.ops.WatchOperationalEvents(ctx, &hubhooksv1.WatchOperationalEventsRequest{HubId: hub, Since: since})
	if err != nil {
		t.Fatal(err)
	}
	w := &watcher{}
	go func() {
		for {
			ev, err := stream.Recv()
			if err != nil {
				return
			}
			w.mu.Lock()
			w.got = append(w.got, ev)
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *watcher) of(typ hubhooksv1.OperationalEventType) []*hubhooksv1.OperationalEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*hubhooksv1.OperationalEvent
	for _, ev := range w.got {
		if ev.GetType() == typ {
			out = append(out, ev)
		}
	}
	return out
}

// A URL that fails every attempt for the auto-disable period is disabled
// with the reason; its pending retries are cancelled; operational events
// report it (and the dead deliveries) on the watch stream and as webhooks
// to the hub's operational-events URL; re-enabling is one call.
func TestFailingURLIsDisabledAndReported(t *testing.T) {
	e := start(t, func(s *settings.Settings) { s.AutoDisableAfter = time.Second }, 0)
	ctx := ctxT(t)
	failing, opsRecv := newReceiver(t, http.StatusInternalServerError), newReceiver(t, http.StatusOK)
	e.hub(t, "acme", failing.URL+"/hooks")
	// The ops URL takes operational events only: from its creation, its
	// filter keeps the domain webhooks out.
	cfg, err := e.Config.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "acme", Url: opsRecv.URL + "/ops", EventTypes: []string{"JOBS_REQUEST.UPDATED"}})
	if err != nil {
		t.Fatal(err)
	}
	failingID, opsID := cfg.GetCallbackUrls()[0].GetId(), cfg.GetCallbackUrls()[1].GetId()
	if _, err := e.Config.ConfigureCallbackUrl(ctx, &hubhooksv1.ConfigureCallbackUrlRequest{HubId: "acme", Id: opsID, OperationalEvents: proto.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	w := e.watch(t, "acme", timestamppb.Now())
	e.publish(t, "acme", "evt-1", "USER.UPDATED", nil)

	poll.Until(t, 20*time.Second, "the failing URL disabled", func() bool {
		c, err := e.Config.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		u := c.GetCallbackUrls()[0]
		return u.GetDisabled() && strings.Contains(u.GetDisabledReason(), "failed every attempt since")
	})
	poll.Until(t, 20*time.Second, "DELIVERY_DEAD and URL_DISABLED on the watch stream", func() bool {
		return len(w.of(hubhooksv1.OperationalEventType_OPERATIONAL_EVENT_TYPE_DELIVERY_DEAD)) == 1 &&
			len(w.of(hubhooksv1.OperationalEventType_OPERATIONAL_EVENT_TYPE_URL_DISABLED)) == 1
	})
	if ev := w.of(hubhooksv1.OperationalEventType_OPERATIONAL_EVENT_TYPE_URL_DISABLED)[0]; ev.GetUrlId() != failingID || !strings.Contains(ev.GetReason(), "failed every attempt") {
		t.Errorf("URL_DISABLED event: %v", ev)
	}
	if ev := w.of(hubhooksv1.OperationalEventType_OPERATIONAL_EVENT_TYPE_DELIVERY_DEAD)[0]; ev.GetEventType() != "USER.UPDATED" || !strings.Contains(ev.GetReason(), "HTTP 500") {
		t.Errorf("DELIVERY_DEAD event: %v", ev)
	}
	// The ops URL got both as webhooks, and no domain webhook.
	poll.Until(t, 20*time.Second, "two operational webhooks", func() bool { return len(opsRecv.events()) == 2 })
	types := map[string]bool{}
	for _, ev := range opsRecv.events() {
		types[ev.Type] = true
		var data map[string]any
		if err := json.Unmarshal(ev.Data, &data); err != nil || data["hub_id"] != "acme" || !strings.HasPrefix(ev.ID, "ops_") {
			t.Errorf("operational webhook %s: id %q, data %s", ev.Type, ev.ID, ev.Data)
		}
	}
	if !types["OPERATIONAL.URL_DISABLED"] || !types["OPERATIONAL.DELIVERY_DEAD"] {
		t.Errorf("operational webhooks %v", types)
	}

	// Re-enabling is one call; the URL starts with a clean record.
	if _, err := e.Config.ConfigureCallbackUrl(ctx, &hubhooksv1.ConfigureCallbackUrlRequest{HubId: "acme", Id: failingID, Enabled: proto.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	failing.setStatus(http.StatusOK)
	// The change reaches the expander's cache within milliseconds: events
	// from then on are delivered.
	for i := 0; len(e.logs(t, &hubhooksv1.ListEventLogsRequest{HubId: "acme", Status: "succeeded", Url: failing.URL + "/hooks"})) == 0; i++ {
		if i == 100 {
			t.Fatal("nothing delivered to the re-enabled URL")
		}
		e.publish(t, "acme", fmt.Sprintf("evt-again-%d", i), "USER.UPDATED", nil)
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // an auto-disable period
	c, err := e.Config.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if c.GetCallbackUrls()[0].GetDisabled() {
		t.Errorf("a URL that answers was disabled again: %v", c.GetCallbackUrls()[0])
	}
}

// A URL that refuses connections opens its circuit breaker, and closes it
// once it answers again: the watch stream shows CIRCUIT_OPENED, then
// CIRCUIT_CLOSED.
func TestCircuitOpenedIsReported(t *testing.T) {
	e := start(t, func(s *settings.Settings) {
		s.AutoDisableAfter = 0
		s.BreakerFailures = 3
		s.BreakerCooldown = 300 * time.Millisecond
	}, 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/hooks"
	_ = l.Close()
	e.hub(t, "acme", closed)
	w := e.watch(t, "acme", nil)
	for i := range 5 {
		e.publish(t, "acme", fmt.Sprintf("evt-%d", i), "USER.UPDATED", nil)
	}
	poll.Until(t, 20*time.Second, "CIRCUIT_OPENED", func() bool {
		return len(w.of(hubhooksv1.OperationalEventType_OPERATIONAL_EVENT_TYPE_CIRCUIT_OPENED)) >= 1
	})
	if ev := w.of(hubhooksv1.OperationalEventType_OPERATIONAL_EVENT_TYPE_CIRCUIT_OPENED)[0]; ev.GetUrl() != closed {
		t.Errorf("CIRCUIT_OPENED for %q, want %q", ev.GetUrl(), closed)
	}

	// The endpoint is back: after the cool-down a probe succeeds.
	l, err = net.Listen("tcp", l.Addr().String())
	if err != nil {
		t.Fatalf("listen on the URL's address again: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	for i := 0; len(w.of(hubhooksv1.OperationalEventType_OPERATIONAL_EVENT_TYPE_CIRCUIT_CLOSED)) == 0; i++ {
		if i == 100 {
			t.Fatal("no CIRCUIT_CLOSED once the URL answers")
		}
		e.publish(t, "acme", fmt.Sprintf("evt-back-%d", i), "USER.UPDATED", nil)
		time.Sleep(200 * time.Millisecond)
	}
	if ev := w.of(hubhooksv1.OperationalEventType_OPERATIONAL_EVENT_TYPE_CIRCUIT_CLOSED)[0]; ev.GetUrl() != closed {
		t.Errorf("CIRCUIT_CLOSED for %q, want %q", ev.GetUrl(), closed)
	}
}
