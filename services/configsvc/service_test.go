package configsvc_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hubhooks/hubhooks/pkg/auth"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/configsvc"
)

func TestNewRejectsNilDepsAndBadConfig(t *testing.T) {
	e := newEnv(t)
	if _, err := configsvc.New(configsvc.Config{}, nil, nil, nil, nil, nil); err == nil {
		t.Fatal("New with nil deps succeeded")
	}
	err := configsvc.Config{SecretGrace: -time.Second, MaxURLs: -1}.Validate()
	if err == nil || !strings.Contains(err.Error(), "secret grace") || !strings.Contains(err.Error(), "max urls") {
		t.Fatalf("Validate = %v, want both problems", err)
	}
	if _, err := configsvc.New(configsvc.Config{SecretGrace: -1}, e.rdb, e.js, e.guard, e.sender, e.tokens); err == nil {
		t.Fatal("New with a bad config succeeded")
	}
}

func TestGetHubConfigUnconfigured(t *testing.T) {
	e := newEnv(t)
	s := e.startServer(t, "")
	ctx := ctxT(t)
	cfg, err := s.client.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: "never-seen"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GetHubId() != "never-seen" || cfg.GetEventsEnabled() || len(cfg.GetCallbackUrls()) != 0 || cfg.GetSecret() != "" || cfg.GetVersion() != 0 {
		t.Fatalf("unconfigured hub = %v", cfg)
	}
	if n, _ := e.rdb.Exists(ctx, e.prefix+"{cfg}:hub:never-seen").Result(); n != 0 {
		t.Fatal("GetHubConfig created the hub")
	}
	if e.feedLen(t) != 0 {
		t.Fatal("GetHubConfig wrote to the feed")
	}
}

func TestInvalidRequestsChangeNothing(t *testing.T) {
	e := newEnv(t)
	s := e.startServer(t, "")
	c := s.client
	ctx := ctxT(t)
	long := strings.Repeat("a", 65)
	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"get empty hub", func() error { _, err := c.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{}); return err }, codes.InvalidArgument},
		{"get long hub", func() error { _, err := c.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: long}); return err }, codes.InvalidArgument},
		{"enable bad hub", func() error {
			_, err := c.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: "a.b", Enabled: true})
			return err
		}, codes.InvalidArgument},
		{"add bad hub", func() error {
			_, err := c.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "a b", Url: "https://example.com/hook"})
			return err
		}, codes.InvalidArgument},
		{"add empty url", func() error {
			_, err := c.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "h1"})
			return err
		}, codes.InvalidArgument},
		{"add ftp url", func() error {
			_, err := c.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "h1", Url: "ftp://example.com/x"})
			return err
		}, codes.InvalidArgument},
		{"add relative url", func() error {
			_, err := c.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "h1", Url: "/hooks"})
			return err
		}, codes.InvalidArgument},
		{"add private address", func() error {
			_, err := c.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "h1", Url: "http://10.1.2.3/hook"})
			return err
		}, codes.InvalidArgument},
		{"add metadata address", func() error {
			_, err := c.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "h1", Url: "http://169.254.169.254/latest"})
			return err
		}, codes.InvalidArgument},
		{"remove neither", func() error {
			_, err := c.RemoveCallbackUrl(ctx, &hubhooksv1.RemoveCallbackUrlRequest{HubId: "h1"})
			return err
		}, codes.InvalidArgument},
		{"remove both", func() error {
			_, err := c.RemoveCallbackUrl(ctx, &hubhooksv1.RemoveCallbackUrlRequest{HubId: "h1", Url: "https://example.com", Id: "url_x"})
			return err
		}, codes.InvalidArgument},
		{"remove missing", func() error {
			_, err := c.RemoveCallbackUrl(ctx, &hubhooksv1.RemoveCallbackUrlRequest{HubId: "h1", Id: "url_nope"})
			return err
		}, codes.NotFound},
		{"secret bad hub", func() error {
			_, err := c.GenerateSecret(ctx, &hubhooksv1.GenerateSecretRequest{HubId: "ä"})
			return err
		}, codes.InvalidArgument},
		{"watch neither", func() error { return recvErr(ctx, c, &hubhooksv1.WatchHubConfigRequest{}) }, codes.InvalidArgument},
		{"watch both", func() error { return recvErr(ctx, c, &hubhooksv1.WatchHubConfigRequest{HubId: "h1", All: true}) }, codes.InvalidArgument},
		{"watch bad hub", func() error { return recvErr(ctx, c, &hubhooksv1.WatchHubConfigRequest{HubId: "h/1"}) }, codes.InvalidArgument},
		{"token bad hub", func() error {
			_, err := c.CreateHubToken(ctx, &hubhooksv1.CreateHubTokenRequest{HubId: ""})
			return err
		}, codes.InvalidArgument},
		{"token long description", func() error {
			_, err := c.CreateHubToken(ctx, &hubhooksv1.CreateHubTokenRequest{HubId: "h1", Description: strings.Repeat("x", 201)})
			return err
		}, codes.InvalidArgument},
		{"revoke neither", func() error {
			_, err := c.RevokeHubToken(ctx, &hubhooksv1.RevokeHubTokenRequest{HubId: "h1"})
			return err
		}, codes.InvalidArgument},
		{"revoke both", func() error {
			_, err := c.RevokeHubToken(ctx, &hubhooksv1.RevokeHubTokenRequest{HubId: "h1", Token: "a", Id: "b"})
			return err
		}, codes.InvalidArgument},
		{"list tokens bad hub", func() error {
			_, err := c.ListHubTokens(ctx, &hubhooksv1.ListHubTokensRequest{HubId: "*"})
			return err
		}, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantCode(t, tt.call(), tt.want) })
	}
	if n := e.feedLen(t); n != 0 {
		t.Fatalf("invalid requests wrote %d feed entries", n)
	}
	if n, _ := e.rdb.SCard(ctx, e.prefix+"{cfg}:hubs").Result(); n != 0 {
		t.Fatalf("invalid requests created %d hubs", n)
	}
}

func recvErr(ctx context.Context, c hubhooksv1.ConfigServiceClient, req *hubhooksv1.WatchHubConfigRequest) error {
	st, err := c.WatchHubConfig(ctx, req)
	if err != nil {
		return err
	}
	_, err = st.Recv()
	return err
}

func TestCallbackURLs(t *testing.T) {
	e := newEnv(t)
	s := e.startServer(t, "")
	ctx := ctxT(t)
	add := func(u string) (*hubhooksv1.HubConfig, error) {
		return s.client.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "hub-1", Url: u})
	}
	cfg, err := add("HTTPS://Hooks.Example.COM:443/a?x=1")
	if err != nil {
		t.Fatal(err)
	}
	// First write: hub created with a secret.
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(cfg.GetSecret(), "whsec_"))
	if !strings.HasPrefix(cfg.GetSecret(), "whsec_") || err != nil || len(key) != 32 {
		t.Fatalf("secret %q is not whsec_ + base64 of 32 bytes", cfg.GetSecret())
	}
	if cfg.GetVersion() != 1 || len(cfg.GetCallbackUrls()) != 1 || cfg.GetEventsEnabled() {
		t.Fatalf("after first add: %v", cfg)
	}
	u0 := cfg.GetCallbackUrls()[0]
	if u0.GetUrl() != "https://hooks.example.com/a?x=1" || !strings.HasPrefix(u0.GetId(), "url_") || u0.GetCreatedAt() == nil {
		t.Fatalf("stored url = %v", u0)
	}

	// The same endpoint however it is written: host case, default port,
	// the host's trailing dot.
	dups := []string{"https://hooks.example.com/a?x=1", "https://HOOKS.example.com:443/a?x=1", "https://hooks.example.com./a?x=1"}
	for _, d := range dups {
		_, err := add(d)
		wantCode(t, err, codes.AlreadyExists)
	}
	for i := 2; i <= 5; i++ {
		if cfg, err = add(fmt.Sprintf("https://hooks.example.com/%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if cfg.GetVersion() != 5 || len(cfg.GetCallbackUrls()) != 5 {
		t.Fatalf("after 5 adds: version %d, %d urls", cfg.GetVersion(), len(cfg.GetCallbackUrls()))
	}
	_, err = add("https://hooks.example.com/6")
	wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(err.Error(), "remove one") {
		t.Fatalf("6th url error %q does not say what to do", err)
	}

	// Remove by url (normalised comparison) and by id.
	cfg, err = s.client.RemoveCallbackUrl(ctx, &hubhooksv1.RemoveCallbackUrlRequest{HubId: "hub-1", Url: "https://HOOKS.example.com/2"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err = s.client.RemoveCallbackUrl(ctx, &hubhooksv1.RemoveCallbackUrlRequest{HubId: "hub-1", Id: u0.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GetVersion() != 7 || len(cfg.GetCallbackUrls()) != 3 {
		t.Fatalf("after 2 removals: version %d, urls %v", cfg.GetVersion(), cfg.GetCallbackUrls())
	}
	_, err = s.client.RemoveCallbackUrl(ctx, &hubhooksv1.RemoveCallbackUrlRequest{HubId: "hub-1", Id: u0.GetId()})
	wantCode(t, err, codes.NotFound)
	got, err := s.client.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: "hub-1"})
	if err != nil || got.GetVersion() != 7 {
		t.Fatalf("GetHubConfig = %v, %v; want version 7", got, err)
	}
	if e.feedLen(t) != 7 {
		t.Fatalf("feed has %d entries, want 7 (one per change)", e.feedLen(t))
	}
	if v := counter(t, s, "hubhooks_configsvc_config_changes_total", "url_added"); v != 5 {
		t.Fatalf("url_added changes = %v, want 5", v)
	}
}

func TestSetEventsEnabled(t *testing.T) {
	e := newEnv(t)
	s := e.startServer(t, "")
	ctx := ctxT(t)
	set := func(on bool) *hubhooksv1.HubConfig {
		t.Helper()
		cfg, err := s.client.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: "h", Enabled: on})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	tests := []struct {
		on          bool
		wantVersion int64
	}{
		{false, 1}, // first write creates the hub even when nothing else changes
		{true, 2},
		{true, 2}, // no-op: no new version
		{false, 3},
	}
	var secret string
	for i, tt := range tests {
		cfg := set(tt.on)
		if cfg.GetEventsEnabled() != tt.on || cfg.GetVersion() != tt.wantVersion {
			t.Fatalf("step %d: enabled %v version %d, want %v %d", i, cfg.GetEventsEnabled(), cfg.GetVersion(), tt.on, tt.wantVersion)
		}
		if secret == "" {
			secret = cfg.GetSecret()
		}
		if cfg.GetSecret() == "" || cfg.GetSecret() != secret {
			t.Fatalf("step %d: secret changed or missing", i)
		}
		if cfg.GetUpdatedAt().AsTime() != e.clock.Now() {
			t.Fatalf("updated_at = %v", cfg.GetUpdatedAt().AsTime())
		}
	}
}

func TestConcurrentAddsNeverExceedLimit(t *testing.T) {
	e := newEnv(t)
	a := e.startServer(t, "")
	b := e.startServer(t, "") // a second replica on the same prefix
	ctx := ctxT(t)
	var wg sync.WaitGroup
	codesSeen := make([]codes.Code, 10)
	for i := range 10 {
		c := a.client
		if i%2 == 1 {
			c = b.client
		}
		wg.Go(func() {
			_, err := c.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "busy", Url: fmt.Sprintf("https://r%d.example.com/hook", i)})
			codesSeen[i] = status.Code(err)
		})
	}
	wg.Wait()
	ok, full := 0, 0
	for _, c := range codesSeen {
		switch c {
		case codes.OK:
			ok++
		case codes.FailedPrecondition:
			full++
		default:
			t.Fatalf("unexpected code %s in %v", c, codesSeen)
		}
	}
	if ok != 5 || full != 5 {
		t.Fatalf("%d added, %d refused; want 5 and 5", ok, full)
	}
	cfg, err := a.client.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: "busy"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.GetCallbackUrls()) != 5 || cfg.GetVersion() != 5 {
		t.Fatalf("final config: %d urls, version %d; want 5, 5", len(cfg.GetCallbackUrls()), cfg.GetVersion())
	}
}

func TestGenerateSecretRotation(t *testing.T) {
	e := newEnv(t)
	s := e.startServer(t, "", func(c *configsvc.Config, r *redis.Client) *redis.Client { c.SecretGrace = time.Hour; return r })
	ctx := ctxT(t)

	// On a new hub: a secret, nothing previous.
	r0, err := s.client.GenerateSecret(ctx, &hubhooksv1.GenerateSecretRequest{HubId: "rot"})
	if err != nil {
		t.Fatal(err)
	}
	if r0.GetSecret() == "" || r0.GetPreviousSecretExpiresAt() != nil || len(r0.GetHubConfig().GetPreviousSecrets()) != 0 {
		t.Fatalf("first GenerateSecret = %v", r0)
	}
	first := r0.GetSecret()

	e.clock.Advance(10 * time.Minute)
	r1, err := s.client.GenerateSecret(ctx, &hubhooksv1.GenerateSecretRequest{HubId: "rot"})
	if err != nil {
		t.Fatal(err)
	}
	wantExp := e.clock.Now().Add(time.Hour)
	prev := r1.GetHubConfig().GetPreviousSecrets()
	if r1.GetSecret() == first || r1.GetHubConfig().GetSecret() != r1.GetSecret() || len(prev) != 1 ||
		prev[0].GetSecret() != first || !prev[0].GetExpiresAt().AsTime().Equal(wantExp) ||
		!r1.GetPreviousSecretExpiresAt().AsTime().Equal(wantExp) {
		t.Fatalf("rotation: %v", r1)
	}
	if got := webhook.SigningSecrets(r1.GetHubConfig(), e.clock.Now()); len(got) != 2 || got[0] != r1.GetSecret() || got[1] != first {
		t.Fatalf("SigningSecrets = %v", got)
	}

	// Past the grace period, the next write drops the expired secret.
	e.clock.Advance(time.Hour + time.Second)
	if got := webhook.SigningSecrets(r1.GetHubConfig(), e.clock.Now()); len(got) != 1 {
		t.Fatalf("SigningSecrets after expiry = %v", got)
	}
	cfg, err := s.client.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: "rot", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.GetPreviousSecrets()) != 0 || cfg.GetSecret() != r1.GetSecret() {
		t.Fatalf("after expiry and a write: %v", cfg)
	}
}

func TestListEventTypes(t *testing.T) {
	e := newEnv(t)
	s := e.startServer(t, "")
	resp, err := s.client.ListEventTypes(ctxT(t), &hubhooksv1.ListEventTypesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetRules()) != 44 {
		t.Fatalf("%d rules, want the 44 of the cascade table (docs/cascade.md)", len(resp.GetRules()))
	}
	r := resp.GetRules()[0]
	if r.GetDomainSubject() != "API.CREATED" || r.GetName() != "API Created" || len(r.GetEmits()) != 6 || r.GetEmits()[5].GetForEach() != "baseUrls" {
		t.Fatalf("first rule = %v", r)
	}
	types := strings.Join(resp.GetWebhookEventTypes(), " ")
	for _, want := range []string{"BILLINGPLAN.CREATED", "TARGET_GROUP.CREATED", "JOBS_REQUEST.UPDATED"} {
		if !strings.Contains(types, want) {
			t.Fatalf("webhook event types lack %s: %s", want, types)
		}
	}
}

func TestHubTokens(t *testing.T) {
	impls := []struct {
		name string
		make func(e *env) configsvc.TokenStore
	}{
		{"in-test", func(*env) configsvc.TokenStore { return &tokenStore{} }},
		{"auth.TokenStore", func(e *env) configsvc.TokenStore {
			ts, err := auth.NewTokenStore(e.rdb, e.prefix)
			if err != nil {
				t.Fatal(err)
			}
			return ts
		}},
	}
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			e := newEnv(t)
			e.tokens = impl.make(e)
			s := e.startServer(t, "")
			ctx := ctxT(t)
			cr, err := s.client.CreateHubToken(ctx, &hubhooksv1.CreateHubTokenRequest{HubId: "tk", Description: "ci pipeline"})
			if err != nil {
				t.Fatal(err)
			}
			if cr.GetToken() == "" || cr.GetInfo().GetDescription() != "ci pipeline" || cr.GetInfo().GetHubId() != "tk" {
				t.Fatalf("CreateHubToken = %v", cr)
			}
			ls, err := s.client.ListHubTokens(ctx, &hubhooksv1.ListHubTokensRequest{HubId: "tk"})
			if err != nil || len(ls.GetTokens()) != 1 || ls.GetTokens()[0].GetId() != cr.GetInfo().GetId() {
				t.Fatalf("ListHubTokens = %v, %v", ls, err)
			}
			_, err = s.client.RevokeHubToken(ctx, &hubhooksv1.RevokeHubTokenRequest{HubId: "tk", Id: "tok_nope"})
			wantCode(t, err, codes.NotFound)
			_, err = s.client.RevokeHubToken(ctx, &hubhooksv1.RevokeHubTokenRequest{HubId: "other", Token: cr.GetToken()})
			wantCode(t, err, codes.NotFound)
			if _, err = s.client.RevokeHubToken(ctx, &hubhooksv1.RevokeHubTokenRequest{HubId: "tk", Token: cr.GetToken()}); err != nil {
				t.Fatal(err)
			}
			ls, err = s.client.ListHubTokens(ctx, &hubhooksv1.ListHubTokensRequest{HubId: "tk"})
			if err != nil || len(ls.GetTokens()) != 0 {
				t.Fatalf("after revoke: %v, %v", ls, err)
			}
		})
	}
}
