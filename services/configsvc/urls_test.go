package configsvc_test

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/configsvc"
)

// TestCallbackURLAsTyped: a URL typed without a scheme ("even if it is
// temporary, for example example.com") is taken as https and comes back as
// stored; other schemes, credentials and addresses the guard refuses are
// still refused.
func TestCallbackURLAsTyped(t *testing.T) {
	e := newEnv(t)
	s := e.startServer(t, "")
	ctx := ctxT(t)
	tests := []struct {
		in, stored string
		want       codes.Code
	}{
		{"example.com", "https://example.com/", codes.OK},
		{"  Example.org/Hooks?x=1 ", "https://example.org/Hooks?x=1", codes.OK},
		{"api.example.net:8443/in", "https://api.example.net:8443/in", codes.OK},
		{"//example.info/w", "https://example.info/w", codes.OK},
		{"HTTP://Example.EDU:80", "http://example.edu/", codes.OK},
		{"ftp://example.com/x", "", codes.InvalidArgument},
		{"mailto:ops@example.com", "", codes.InvalidArgument},
		{"javascript:alert(1)", "", codes.InvalidArgument},
		{"user:hunter2@example.com/in", "", codes.InvalidArgument},
		{"https://user:hunter2@example.com/in", "", codes.InvalidArgument},
		{"example.com#frag", "", codes.InvalidArgument},
		{"192.168.0.10:8080/hook", "", codes.InvalidArgument},
		{"10.1.2.3/hook", "", codes.InvalidArgument},
		{"169.254.169.254/latest/meta-data", "", codes.InvalidArgument},
		{"/hooks", "", codes.InvalidArgument},
		{"", "", codes.InvalidArgument},
	}
	for i, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			hub := "typed-" + string(rune('a'+i))
			cfg, err := s.client.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: hub, Url: tt.in})
			wantCode(t, err, tt.want)
			if err != nil {
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("refusal %q echoes the credentials", err)
				}
				return
			}
			if got := cfg.GetCallbackUrls()[0].GetUrl(); got != tt.stored {
				t.Errorf("stored %q, want %q", got, tt.stored)
			}
		})
	}
	// One endpoint, any spelling: the typed form is a duplicate of the full one.
	if _, err := s.client.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "typed-a", Url: "https://EXAMPLE.com:443"}); err == nil {
		t.Fatal("https://EXAMPLE.com:443 beside example.com was accepted")
	} else {
		wantCode(t, err, codes.AlreadyExists)
	}
}

// TestURLsStoredInAnotherSpelling: a URL stored before in another form (no
// path) is found by every spelling of it, and is still a duplicate.
func TestURLsStoredInAnotherSpelling(t *testing.T) {
	e := newEnv(t)
	s := e.startServer(t, "")
	ctx := ctxT(t)
	store, err := configsvc.NewStore(e.rdb, e.prefix, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Update(ctx, "old", "test", func(next *hubhooksv1.HubConfig) (bool, error) {
		next.Secret = "whsec_" + strings.Repeat("A", 43) + "="
		next.CallbackUrls = []*hubhooksv1.CallbackUrl{{Id: "url_old", Url: "https://Example.com"}}
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	_, err = s.client.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "old", Url: "example.com/"})
	wantCode(t, err, codes.AlreadyExists)
	cfg, err := s.client.RemoveCallbackUrl(ctx, &hubhooksv1.RemoveCallbackUrlRequest{HubId: "old", Url: "example.com"})
	if err != nil || len(cfg.GetCallbackUrls()) != 0 {
		t.Fatalf("remove by another spelling: %v, %v", cfg, err)
	}
}

// TestUpdateCallbackUrl changes a URL's address in place: same id,
// description and types; checked like a new URL; a duplicate, an unknown id
// or a refused address changes nothing.
func TestUpdateCallbackUrl(t *testing.T) {
	e := newEnv(t)
	s := e.startServer(t, "")
	ctx := ctxT(t)
	cfg, err := s.client.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "up", Url: "https://old.example.com/hook", Description: "billing", EventTypes: []string{"API.CREATED"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = s.client.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "up", Url: "https://other.example.com/"}); err != nil {
		t.Fatal(err)
	}
	id := cfg.GetCallbackUrls()[0].GetId()
	update := func(id, u string) (*hubhooksv1.HubConfig, error) {
		return s.client.UpdateCallbackUrl(ctx, &hubhooksv1.UpdateCallbackUrlRequest{HubId: "up", Id: id, Url: u})
	}
	cfg, err = update(id, "New.Example.com/hook")
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.GetCallbackUrls()[0]
	if u.GetId() != id || u.GetUrl() != "https://new.example.com/hook" || u.GetDescription() != "billing" || len(u.GetEventTypes()) != 1 || cfg.GetVersion() != 3 {
		t.Fatalf("after update: %v (version %d)", u, cfg.GetVersion())
	}
	// The same address again: no new version.
	if cfg, err = update(id, "https://new.example.com/hook"); err != nil || cfg.GetVersion() != 3 {
		t.Fatalf("same address: version %d, %v", cfg.GetVersion(), err)
	}
	for _, tt := range []struct {
		name, id, url string
		want          codes.Code
	}{
		{"duplicate of another URL", id, "https://OTHER.example.com", codes.AlreadyExists},
		{"unknown id", "url_nope", "https://x.example.com", codes.NotFound},
		{"no id", "", "https://x.example.com", codes.InvalidArgument},
		{"refused address", id, "http://127.0.0.2:1/x", codes.OK}, // 127/8 is allowed in this test's guard
		{"private address", id, "http://192.168.1.1/x", codes.InvalidArgument},
		{"other scheme", id, "ftp://x.example.com", codes.InvalidArgument},
		{"no url", id, "", codes.InvalidArgument},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := update(tt.id, tt.url)
			wantCode(t, err, tt.want)
		})
	}
	if _, err := s.client.UpdateCallbackUrl(ctx, &hubhooksv1.UpdateCallbackUrlRequest{HubId: "u p", Id: id, Url: "x.example.com"}); err == nil {
		t.Fatal("a bad hub id was accepted")
	}
	if got := counter(t, s, "hubhooks_configsvc_config_changes_total", configsvc.KindURLUpdated); got != 2 {
		t.Errorf("url_updated changes %v, want 2", got)
	}
}
