package configsvc_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/configsvc"
)

func TestConfigureCallbackURL(t *testing.T) {
	e := newEnv(t)
	s := e.startServer(t, "")
	c := s.client
	ctx := ctxT(t)
	cfg, err := c.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{
		HubId: "h1", Url: "https://a.example.com/hook", Description: " billing sync ", EventTypes: []string{"BILLINGPLAN.CREATED"},
	})
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.GetCallbackUrls()[0]
	if u.GetDescription() != "billing sync" || !slices.Equal(u.GetEventTypes(), []string{"BILLINGPLAN.CREATED"}) || u.GetDisabled() {
		t.Fatalf("added URL = %v", u)
	}

	// Each field changes alone; the others keep their value.
	cfg, err = c.ConfigureCallbackUrl(ctx, &hubhooksv1.ConfigureCallbackUrlRequest{HubId: "h1", Id: u.GetId(),
		EventTypes: &hubhooksv1.EventTypeFilter{Types: []string{"API.CREATED", "API.UPDATED"}}})
	if err != nil {
		t.Fatal(err)
	}
	u = cfg.GetCallbackUrls()[0]
	if !slices.Equal(u.GetEventTypes(), []string{"API.CREATED", "API.UPDATED"}) || u.GetDescription() != "billing sync" {
		t.Fatalf("after setting types: %v", u)
	}
	e.clock.Advance(time.Minute)
	disabledAt := e.clock.Now()
	cfg, err = c.ConfigureCallbackUrl(ctx, &hubhooksv1.ConfigureCallbackUrlRequest{HubId: "h1", Url: "https://A.example.com:443/hook",
		Enabled: proto.Bool(false), DisabledReason: "receiver migrating"})
	if err != nil {
		t.Fatal(err)
	}
	u = cfg.GetCallbackUrls()[0]
	if !u.GetDisabled() || u.GetDisabledReason() != "receiver migrating" || !u.GetDisabledAt().AsTime().Equal(disabledAt) || len(u.GetEventTypes()) != 2 {
		t.Fatalf("after disabling: %v", u)
	}
	version := cfg.GetVersion()
	// Disabling again changes nothing (and writes nothing).
	cfg, err = c.ConfigureCallbackUrl(ctx, &hubhooksv1.ConfigureCallbackUrlRequest{HubId: "h1", Id: u.GetId(), Enabled: proto.Bool(false)})
	if err != nil || cfg.GetVersion() != version || cfg.GetCallbackUrls()[0].GetDisabledReason() != "receiver migrating" {
		t.Fatalf("disable twice: %v, %v", cfg, err)
	}
	// Re-enabling is one call and clears the reason.
	cfg, err = c.ConfigureCallbackUrl(ctx, &hubhooksv1.ConfigureCallbackUrlRequest{HubId: "h1", Id: u.GetId(), Enabled: proto.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	u = cfg.GetCallbackUrls()[0]
	if u.GetDisabled() || u.GetDisabledReason() != "" || u.GetDisabledAt() != nil {
		t.Fatalf("after enabling: %v", u)
	}
	// An empty filter means every type; the description can be cleared.
	cfg, err = c.ConfigureCallbackUrl(ctx, &hubhooksv1.ConfigureCallbackUrlRequest{HubId: "h1", Id: u.GetId(),
		EventTypes: &hubhooksv1.EventTypeFilter{}, Description: proto.String("")})
	if err != nil {
		t.Fatal(err)
	}
	if u = cfg.GetCallbackUrls()[0]; len(u.GetEventTypes()) != 0 || u.GetDescription() != "" {
		t.Fatalf("after clearing: %v", u)
	}
	if got := counter(t, s, "hubhooks_configsvc_config_changes_total", configsvc.KindURLConfigured); got != 4 {
		t.Errorf("url_configured changes = %v, want 4", got)
	}
}

func TestConfigureCallbackURLRefusals(t *testing.T) {
	e := newEnv(t)
	s := e.startServer(t, "")
	c := s.client
	ctx := ctxT(t)
	cfg, err := c.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "h1", Url: "https://a.example.com/hook"})
	if err != nil {
		t.Fatal(err)
	}
	id := cfg.GetCallbackUrls()[0].GetId()
	tests := []struct {
		name    string
		req     *hubhooksv1.ConfigureCallbackUrlRequest
		code    codes.Code
		mention string
	}{
		{"nothing to change", &hubhooksv1.ConfigureCallbackUrlRequest{HubId: "h1", Id: id}, codes.InvalidArgument, "nothing to change"},
		{"url and id", &hubhooksv1.ConfigureCallbackUrlRequest{HubId: "h1", Id: id, Url: "https://a.example.com/hook", Enabled: proto.Bool(true)}, codes.InvalidArgument, "exactly one"},
		{"unknown type", &hubhooksv1.ConfigureCallbackUrlRequest{HubId: "h1", Id: id, EventTypes: &hubhooksv1.EventTypeFilter{Types: []string{"API.CREATED", "API.EXPLODED"}}}, codes.InvalidArgument, "API.EXPLODED"},
		{"type twice", &hubhooksv1.ConfigureCallbackUrlRequest{HubId: "h1", Id: id, EventTypes: &hubhooksv1.EventTypeFilter{Types: []string{"API.CREATED", "API.CREATED"}}}, codes.InvalidArgument, "twice"},
		{"reason without disabling", &hubhooksv1.ConfigureCallbackUrlRequest{HubId: "h1", Id: id, Enabled: proto.Bool(true), DisabledReason: "x"}, codes.InvalidArgument, "enabled=false"},
		{"long description", &hubhooksv1.ConfigureCallbackUrlRequest{HubId: "h1", Id: id, Description: proto.String(strings.Repeat("d", 201))}, codes.InvalidArgument, "description"},
		{"unknown URL", &hubhooksv1.ConfigureCallbackUrlRequest{HubId: "h1", Id: "url_nope", Enabled: proto.Bool(false)}, codes.NotFound, "url_nope"},
		{"unknown hub", &hubhooksv1.ConfigureCallbackUrlRequest{HubId: "h2", Id: id, Enabled: proto.Bool(false)}, codes.NotFound, "h2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.ConfigureCallbackUrl(ctx, tt.req)
			wantCode(t, err, tt.code)
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not mention %q", err, tt.mention)
			}
		})
	}
	_, err = c.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "h1", Url: "https://b.example.com/", EventTypes: []string{"NOPE.NOPE"}})
	wantCode(t, err, codes.InvalidArgument)
	after, err := c.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	if after.GetVersion() != cfg.GetVersion() || len(after.GetCallbackUrls()) != 1 {
		t.Fatalf("refused requests changed the hub: %v", after)
	}
}
