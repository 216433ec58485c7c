package configsvc_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// TestDeleteHub deletes one of two hubs: its configuration is empty (and
// out of the snapshot of every hub), its tokens revoked, the deletion
// announced to the logger on HUBHOOKS_ATTEMPTS; the other hub keeps all.
// Deleting again changes nothing; the id can be configured again, its
// versions still rising.
func TestDeleteHub(t *testing.T) {
	e := newEnv(t)
	s := e.startServer(t, "")
	ctx := ctxT(t)
	for _, hub := range []string{"gone", "kept"} {
		if _, err := s.client.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: hub, Url: "https://" + hub + ".example.com/"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.client.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: hub, Enabled: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.client.GenerateSecret(ctx, &hubhooksv1.GenerateSecretRequest{HubId: hub}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := s.client.CreateHubToken(ctx, &hubhooksv1.CreateHubTokenRequest{HubId: hub}); err != nil {
				t.Fatal(err)
			}
		}
	}
	before, err := s.client.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	watch, err := s.client.WatchHubConfig(ctx, &hubhooksv1.WatchHubConfigRequest{HubId: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil { // the snapshot
		t.Fatal(err)
	}

	resp, err := s.client.DeleteHub(ctx, &hubhooksv1.DeleteHubRequest{HubId: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetTokensRevoked() != 2 || !resp.GetDeletedAt().AsTime().Equal(e.clock.Now()) {
		t.Fatalf("DeleteHub = %v", resp)
	}
	cfg, err := s.client.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GetEventsEnabled() || len(cfg.GetCallbackUrls()) != 0 || cfg.GetSecret() != "" || len(cfg.GetPreviousSecrets()) != 0 || cfg.GetVersion() != before.GetVersion()+1 {
		t.Fatalf("config after DeleteHub: %v", cfg)
	}
	// Watchers (the expander's and deliverer's caches) receive it.
	changed, err := watch.Recv()
	if err != nil || changed.GetVersion() != cfg.GetVersion() || len(changed.GetCallbackUrls()) != 0 {
		t.Fatalf("watcher got %v, %v", changed, err)
	}
	if toks, err := s.client.ListHubTokens(ctx, &hubhooksv1.ListHubTokensRequest{HubId: "gone"}); err != nil || len(toks.GetTokens()) != 0 {
		t.Fatalf("tokens after DeleteHub: %v, %v", toks, err)
	}
	all, err := s.client.WatchHubConfig(ctx, &hubhooksv1.WatchHubConfigRequest{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if snap, err := all.Recv(); err != nil || snap.GetHubId() != "kept" {
		t.Fatalf("snapshot of every hub starts with %v, %v; want only kept", snap, err)
	}

	// The logger's message.
	st, err := e.js.Stream(ctx, eventbus.StreamAttempts)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, eventbus.AttemptSubject("gone"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := eventbus.DecodeHubDeleted(m.Data)
	if err != nil || !eventbus.IsHubDeleted(m.Header) || d.GetHubId() != "gone" || !d.GetDeletedAt().AsTime().Equal(resp.GetDeletedAt().AsTime()) {
		t.Fatalf("HUBHOOKS_ATTEMPTS holds %v (%v), %v", d, m.Header, err)
	}

	// The other hub is untouched.
	kept, err := s.client.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: "kept"})
	if err != nil || len(kept.GetCallbackUrls()) != 1 || !kept.GetEventsEnabled() || kept.GetSecret() == "" {
		t.Fatalf("kept hub: %v, %v", kept, err)
	}
	if toks, err := s.client.ListHubTokens(ctx, &hubhooksv1.ListHubTokensRequest{HubId: "kept"}); err != nil || len(toks.GetTokens()) != 2 {
		t.Fatalf("kept hub's tokens: %v, %v", toks, err)
	}

	// Idempotent.
	e.clock.Advance(time.Minute)
	again, err := s.client.DeleteHub(ctx, &hubhooksv1.DeleteHubRequest{HubId: "gone"})
	if err != nil || again.GetTokensRevoked() != 0 {
		t.Fatalf("DeleteHub again: %v, %v", again, err)
	}
	if cfg2, _ := s.client.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: "gone"}); cfg2.GetVersion() != cfg.GetVersion() {
		t.Fatalf("DeleteHub again wrote version %d", cfg2.GetVersion())
	}
	// A hub never configured: nothing to delete, no error.
	if _, err := s.client.DeleteHub(ctx, &hubhooksv1.DeleteHubRequest{HubId: "never"}); err != nil {
		t.Fatal(err)
	}
	_, err = s.client.DeleteHub(ctx, &hubhooksv1.DeleteHubRequest{HubId: "a b"})
	wantCode(t, err, codes.InvalidArgument)

	// Configured again: a new hub, with a new secret, versions rising.
	re, err := s.client.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "gone", Url: "https://back.example.com/"})
	if err != nil || re.GetSecret() == "" || re.GetSecret() == before.GetSecret() || re.GetVersion() != cfg.GetVersion()+1 || len(re.GetCallbackUrls()) != 1 {
		t.Fatalf("configured again: %v, %v", re, err)
	}
}
