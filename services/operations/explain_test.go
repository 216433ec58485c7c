package operations_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/routing"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// target is one ExplainedTarget in short: URL id, routed or the reason,
// and the statuses of its deliveries.
func targets(we *hubhooksv1.ExplainedWebhookEvent) string {
	var parts []string
	for _, t := range we.GetTargets() {
		s := t.GetUrlId() + "="
		if t.GetRouted() {
			s += "routed"
		} else {
			s += t.GetReason()
		}
		for _, d := range t.GetDeliveries() {
			s += "/" + d.GetStatus()
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func TestExplainWhereWebhooksWouldGo(t *testing.T) {
	e := start(t, nil)
	ctx := ctxT(t)
	cfg := e.hub(t, "acme", "https://all.example.com/", "https://teams.example.com/", "https://off.example.com/")
	all, teams, off := cfg.GetCallbackUrls()[0].GetId(), cfg.GetCallbackUrls()[1].GetId(), cfg.GetCallbackUrls()[2].GetId()
	if _, err := e.Config.ConfigureCallbackUrl(ctx, &hubhooksv1.ConfigureCallbackUrlRequest{HubId: "acme", Id: teams,
		EventTypes: &hubhooksv1.EventTypeFilter{Types: []string{"TEAM.CREATED"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Config.ConfigureCallbackUrl(ctx, &hubhooksv1.ConfigureCallbackUrlRequest{HubId: "acme", Id: off,
		Enabled: proto.Bool(false), DisabledReason: "receiver migrating"}); err != nil {
		t.Fatal(err)
	}
	resp, err := e.ops.ExplainDomainEvent(ctx, &hubhooksv1.ExplainDomainEventRequest{HubId: "acme", DomainEventType: "TEAM.CREATED"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"APP.CREATED: " + fmt.Sprintf("%s=routed %s=%s %s=%s", all, teams, routing.TypeFiltered, off, routing.URLDisabled),
		"APP_KEY.CREATED: " + fmt.Sprintf("%s=routed %s=%s %s=%s", all, teams, routing.TypeFiltered, off, routing.URLDisabled),
		"TEAM.CREATED: " + fmt.Sprintf("%s=routed %s=routed %s=%s", all, teams, off, routing.URLDisabled),
	}
	if resp.GetHubReason() != "" || len(resp.GetWebhookEvents()) != len(want) {
		t.Fatalf("explain = %v", resp)
	}
	for i, we := range resp.GetWebhookEvents() {
		if got := we.GetType() + ": " + targets(we); got != want[i] || we.GetId() != "" || we.GetPosition() != int32(i) {
			t.Errorf("webhook event %d: %s (id %q), want %s", i, got, we.GetId(), want[i])
		}
	}
	for _, tg := range resp.GetWebhookEvents()[0].GetTargets() {
		if tg.GetUrlId() == off && !strings.Contains(tg.GetDetail(), "receiver migrating") {
			t.Errorf("disabled URL's detail %q does not give the reason", tg.GetDetail())
		}
	}

	// forEach: one TARGET_GROUP.CREATED per base URL of the data.
	data, _ := structpb.NewStruct(map[string]any{"api": map[string]any{"id": "a1"}, "baseUrls": []any{map[string]any{"url": "https://x"}, map[string]any{"url": "https://y"}}})
	resp, err = e.ops.ExplainDomainEvent(ctx, &hubhooksv1.ExplainDomainEventRequest{HubId: "acme", DomainEventType: "API.CREATED", Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(resp.GetWebhookEvents()); n != 7 || resp.GetWebhookEvents()[6].GetType() != "TARGET_GROUP.CREATED" {
		t.Errorf("API.CREATED with two base URLs: %d webhook events, want 7 ending in TARGET_GROUP.CREATED", n)
	}

	// Triggers off: the hub says why, every URL too.
	if _, err := e.Config.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: "acme"}); err != nil {
		t.Fatal(err)
	}
	resp, err = e.ops.ExplainDomainEvent(ctx, &hubhooksv1.ExplainDomainEventRequest{HubId: "acme", DomainEventType: "USER.UPDATED"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(resp.GetHubReason(), "triggers are off") || targets(resp.GetWebhookEvents()[0]) != fmt.Sprintf("%s=%s %s=%s %s=%s", all, routing.TriggersOff, teams, routing.TriggersOff, off, routing.TriggersOff) {
		t.Errorf("triggers off: %v", resp)
	}

	for _, tc := range []struct {
		name string
		req  *hubhooksv1.ExplainDomainEventRequest
		want string
	}{
		{"no type", &hubhooksv1.ExplainDomainEventRequest{HubId: "acme"}, "domain_event_type is required"},
		{"unknown type", &hubhooksv1.ExplainDomainEventRequest{HubId: "acme", DomainEventType: "API.EXPLODED"}, "no cascade rule"},
		{"bad hub", &hubhooksv1.ExplainDomainEventRequest{HubId: "a b", DomainEventType: "API.CREATED"}, "hub_id"},
	} {
		_, err := e.ops.ExplainDomainEvent(ctx, tc.req)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want InvalidArgument saying %q", tc.name, err, tc.want)
		}
	}
}

func TestExplainWhatADomainEventCaused(t *testing.T) {
	e := start(t, nil, 0) // one attempt: a failure is final
	ctx := ctxT(t)
	good, bad := newReceiver(t, http.StatusOK), newReceiver(t, http.StatusInternalServerError)
	cfg := e.hub(t, "acme", good.URL+"/good", bad.URL+"/bad")
	goodID, badID := cfg.GetCallbackUrls()[0].GetId(), cfg.GetCallbackUrls()[1].GetId()
	e.publish(t, "acme", "evt-api-1", "API.CREATED", map[string]any{"api": map[string]any{"id": "a1"}, "baseUrls": []any{map[string]any{"url": "https://x"}}})
	// Six webhook events to two URLs.
	poll.Until(t, 20*time.Second, "12 final deliveries", func() bool {
		n := 0
		for _, l := range e.logs(t, &hubhooksv1.ListEventLogsRequest{HubId: "acme"}) {
			if l.GetStatus() == "succeeded" || l.GetStatus() == "dead" {
				n++
			}
		}
		return n == 12
	})
	// Redeliver one dead delivery; remove the bad URL.
	dead := e.logs(t, &hubhooksv1.ListEventLogsRequest{HubId: "acme", Status: "dead", EventType: "API_VERSION.CREATED"})
	if len(dead) != 1 {
		t.Fatalf("%d dead API_VERSION.CREATED deliveries, want 1", len(dead))
	}
	again, err := e.Logs.Redeliver(ctx, &hubhooksv1.RedeliverRequest{HubId: "acme", Id: dead[0].GetId()})
	if err != nil {
		t.Fatal(err)
	}
	// The URL goes once the redelivery has died there: removed first, it
	// would cancel the redelivery instead.
	poll.Until(t, 20*time.Second, "the redelivery dead", func() bool {
		l, err := e.Logs.GetEventLog(ctx, &hubhooksv1.GetEventLogRequest{HubId: "acme", Id: again.GetEventLog().GetId()})
		return err == nil && l.GetEventLog().GetStatus() == "dead"
	})
	if _, err := e.Config.RemoveCallbackUrl(ctx, &hubhooksv1.RemoveCallbackUrlRequest{HubId: "acme", Id: badID}); err != nil {
		t.Fatal(err)
	}
	// Asked without the data: the base URL's TARGET_GROUP.CREATED comes
	// from the log.
	var resp *hubhooksv1.ExplainDomainEventResponse
	poll.Until(t, 20*time.Second, "the redelivery in the explanation", func() bool {
		var err error
		resp, err = e.ops.ExplainDomainEvent(ctx, &hubhooksv1.ExplainDomainEventRequest{HubId: "acme", DomainEventId: "evt-api-1", DomainEventType: "API.CREATED"})
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.GetWebhookEvents()) > 2 && strings.Contains(targets(resp.GetWebhookEvents()[2]), "dead/dead")
	})
	if n := len(resp.GetWebhookEvents()); n != 6 {
		t.Fatalf("%d webhook events, want 6:\n%v", n, resp)
	}
	for i, we := range resp.GetWebhookEvents() {
		if we.GetId() != webhook.EventID("acme", "evt-api-1", i) {
			t.Errorf("webhook event %d id %s, want the expander's", i, we.GetId())
		}
		want := fmt.Sprintf("%s=routed/succeeded %s=url_removed/dead", goodID, badID)
		if we.GetType() == "API_VERSION.CREATED" {
			want += "/dead" // the redelivery to the bad URL died too
		}
		if got := targets(we); got != want {
			t.Errorf("%s: %s, want %s", we.GetType(), got, want)
		}
	}
	if resp.GetWebhookEvents()[5].GetType() != "TARGET_GROUP.CREATED" {
		t.Errorf("position 5 is %s, want TARGET_GROUP.CREATED (from the log)", resp.GetWebhookEvents()[5].GetType())
	}
}
