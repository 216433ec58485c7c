package e2e_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hubhooks/hubhooks/pkg/poll"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// TestDeleteHub deletes one of two hubs whose deliveries are retrying:
// the deleted hub loses its configuration, tokens, pending retries and
// event log, and gets nothing more; the other keeps all of them.
func TestDeleteHub(t *testing.T) {
	h := startHub(t, 0, time.Hour) // a failed first attempt waits an hour in Redis
	ctx := ctxT(t)
	r := newReceiver(t)
	r.mu.Lock()
	r.status = http.StatusServiceUnavailable
	r.mu.Unlock()
	hubs := []string{"del-gone", "del-kept"}
	for _, hub := range hubs {
		if _, err := h.config.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: hub, Url: r.URL + "/" + hub}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.config.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: hub, Enabled: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.config.CreateHubToken(ctx, &hubhooksv1.CreateHubTokenRequest{HubId: hub}); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			h.publish(t, domainEvent(t, hub, fmt.Sprintf("evt-%s-%d", hub, i), "USER.UPDATED", map[string]any{"user": map[string]any{"id": i}}), true)
		}
	}
	retrying := func(hub string) int {
		resp, err := h.logs.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: hub, Status: "retrying"})
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.GetEventLogs())
	}
	pending := func(hub string) int64 {
		return h.rdb.HLen(ctx, h.prefix+"{retry}:hub:"+hub).Val()
	}
	for _, hub := range hubs {
		poll.Until(t, 20*time.Second, hub+": 3 retrying deliveries, retries pending", func() bool { return retrying(hub) == 3 && pending(hub) == 3 })
	}

	resp, err := h.config.DeleteHub(ctx, &hubhooksv1.DeleteHubRequest{HubId: "del-gone"})
	if err != nil || resp.GetTokensRevoked() != 1 {
		t.Fatalf("DeleteHub: %v, %v", resp, err)
	}
	poll.Until(t, 20*time.Second, "the deleted hub's retries and log gone", func() bool {
		list, err := h.logs.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: "del-gone"})
		return err == nil && len(list.GetEventLogs()) == 0 && pending("del-gone") == 0 &&
			h.rdb.ZCard(ctx, h.prefix+"{retry}:cancel:due").Val() == 0
	})
	cfg, err := h.config.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: "del-gone"})
	if err != nil || len(cfg.GetCallbackUrls()) != 0 || cfg.GetEventsEnabled() || cfg.GetSecret() != "" {
		t.Fatalf("deleted hub's config: %v, %v", cfg, err)
	}
	if toks, err := h.config.ListHubTokens(ctx, &hubhooksv1.ListHubTokensRequest{HubId: "del-gone"}); err != nil || len(toks.GetTokens()) != 0 {
		t.Fatalf("deleted hub's tokens: %v, %v", toks, err)
	}
	if keys := h.rdb.Keys(ctx, h.prefix+"log:{del-gone}:e:*").Val(); len(keys) != 0 {
		t.Fatalf("the deleted hub's log keeps %v", keys)
	}
	// A domain event for the deleted hub sends nothing.
	before := len(r.all())
	h.publish(t, domainEvent(t, "del-gone", "evt-after", "USER.UPDATED", map[string]any{"user": map[string]any{"id": 9}}), true)
	poll.Until(t, 20*time.Second, "the event after the deletion expanded", func() bool {
		return h.counter(t, `hubhooks_expander_events_skipped_total{reason="disabled"}`) >= 1
	})
	for _, g := range r.all()[before:] {
		if strings.Contains(g.Event.HubID, "gone") {
			t.Fatalf("the deleted hub got a webhook: %s", g.Body)
		}
	}

	// The other hub keeps everything.
	if n, p := retrying("del-kept"), pending("del-kept"); n != 3 || p != 3 {
		t.Fatalf("the other hub: %d retrying entries, %d pending retries; want 3 and 3", n, p)
	}
	if toks, err := h.config.ListHubTokens(ctx, &hubhooksv1.ListHubTokensRequest{HubId: "del-kept"}); err != nil || len(toks.GetTokens()) != 1 {
		t.Fatalf("the other hub's tokens: %v, %v", toks, err)
	}
	// Idempotent.
	if _, err := h.config.DeleteHub(ctx, &hubhooksv1.DeleteHubRequest{HubId: "del-gone"}); err != nil {
		t.Fatal(err)
	}
}

// TestUpdateCallbackUrlTakesRetriesAlong: a delivery retrying at a URL
// whose address is edited in place is delivered to the new address; its
// entry keeps every attempt, each with the address it went to.
func TestUpdateCallbackUrlTakesRetriesAlong(t *testing.T) {
	h := startHub(t, 0, 2*time.Second, 2*time.Second, 2*time.Second)
	ctx := ctxT(t)
	const hub = "moving"
	oldR, newR := newReceiver(t), newReceiver(t)
	oldR.mu.Lock()
	oldR.status = http.StatusServiceUnavailable
	oldR.mu.Unlock()
	cfg, err := h.config.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: hub, Url: oldR.URL + "/in"})
	if err != nil {
		t.Fatal(err)
	}
	id := cfg.GetCallbackUrls()[0].GetId()
	if _, err := h.config.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: hub, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	h.publish(t, domainEvent(t, hub, "evt-move", "USER.UPDATED", map[string]any{"user": map[string]any{"id": 1}}), true)
	poll.Until(t, 20*time.Second, "first attempt failed at the old address", func() bool { return len(oldR.byDomainEvent("evt-move")) >= 1 })
	if _, err := h.config.UpdateCallbackUrl(ctx, &hubhooksv1.UpdateCallbackUrlRequest{HubId: hub, Id: id, Url: newR.URL + "/in"}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, "delivered at the new address", func() bool { return len(newR.byDomainEvent("evt-move")) == 1 })
	old, moved := oldR.byDomainEvent("evt-move")[0], newR.byDomainEvent("evt-move")[0]
	if old.Event.ID != moved.Event.ID {
		t.Fatalf("webhook id %s at the new address, %s at the old", moved.Event.ID, old.Event.ID)
	}
	var e *hubhooksv1.GetEventLogResponse
	poll.Until(t, 20*time.Second, "the entry succeeded", func() bool {
		list, err := h.logs.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: hub})
		if err != nil || len(list.GetEventLogs()) != 1 || list.GetEventLogs()[0].GetStatus() != "succeeded" {
			return false
		}
		e, err = h.logs.GetEventLog(ctx, &hubhooksv1.GetEventLogRequest{HubId: hub, Id: list.GetEventLogs()[0].GetId()})
		return err == nil
	})
	atts := e.GetAttempts()
	first, last := atts[0], atts[len(atts)-1]
	if e.GetEventLog().GetUrl() != newR.URL+"/in" || first.GetRequest().GetUrl() != oldR.URL+"/in" || last.GetRequest().GetUrl() != newR.URL+"/in" ||
		first.GetResponse().GetStatusCode() != 503 || last.GetResponse().GetStatusCode() != 200 {
		t.Fatalf("entry %v with attempts %v", e.GetEventLog(), atts)
	}
	// Listed under its new URL, not its old one.
	for u, want := range map[string]int{newR.URL + "/in": 1, oldR.URL + "/in": 0} {
		list, err := h.logs.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: hub, Url: u})
		if err != nil || len(list.GetEventLogs()) != want {
			t.Errorf("url filter %s: %d entries, %v; want %d", u, len(list.GetEventLogs()), err, want)
		}
	}
}
