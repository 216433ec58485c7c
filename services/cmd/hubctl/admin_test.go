package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubhooks/hubhooks/pkg/poll"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/hubd/hubdtest"
)

const testAdmin = "admin-token-for-hubctl-tests"

func TestWhoAmIAndHubsCommands(t *testing.T) {
	h := hubdtest.Start(t, hubdtest.Options{AdminToken: testAdmin})
	c := newCLI(t, "HUBHOOKS_ADDR", h.GRPCAddr, "HUBHOOKS_TOKEN", testAdmin)
	if out := c.ok("whoami"); !strings.Contains(out, "admin at "+h.GRPCAddr) {
		t.Errorf("whoami (admin):\n%s", out)
	}
	if who := jsonOf(t, c.ok("whoami", "-o", "json"), &hubhooksv1.WhoAmIResponse{}); !who.GetAdmin() {
		t.Errorf("whoami -o json: %v", who)
	}
	for _, hub := range []string{"acme-1", "acme-2", "other"} {
		c.ok("--hub", hub, "urls", "add", "http://127.0.0.1:9/"+hub)
	}
	c.ok("--hub", "acme-2", "hub", "enable")
	out := c.ok("hubs", "list")
	for _, want := range []string{"acme-1", "acme-2", "other"} {
		if !strings.Contains(out, want) {
			t.Errorf("hubs list lacks %s:\n%s", want, out)
		}
	}
	hubs := jsonOf(t, c.ok("hubs", "list", "--prefix", "acme-", "-o", "json"), &hubhooksv1.ListHubsResponse{})
	if len(hubs.GetHubs()) != 2 || hubs.GetHubs()[1].GetHubId() != "acme-2" || !hubs.GetHubs()[1].GetEventsEnabled() || hubs.GetHubs()[1].GetCallbackUrlCount() != 1 {
		t.Errorf("hubs list --prefix acme-: %v", hubs)
	}
	out, errOut, code := c.run("hubs", "list", "--limit", "1")
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(errOut, "more hubs") {
		t.Errorf("hubs list --limit 1: exit %d\n%s\n%s", code, out, errOut)
	}
	if out := c.ok("__complete", "hub", "show", "--hub", ""); !strings.Contains(out, "acme-1") || !strings.Contains(out, "other") {
		t.Errorf("completion of --hub:\n%s", out)
	}

	tok := jsonOf(t, c.ok("--hub", "acme-1", "tokens", "create", "-o", "json"), &hubhooksv1.CreateHubTokenResponse{})
	hubTok := newCLI(t, "HUBHOOKS_ADDR", h.GRPCAddr, "HUBHOOKS_TOKEN", tok.GetToken())
	if who := jsonOf(t, hubTok.ok("whoami", "-o", "json"), &hubhooksv1.WhoAmIResponse{}); who.GetAdmin() || who.GetHubId() != "acme-1" {
		t.Errorf("whoami (hub token) -o json: %v", who)
	}
	if out, errOut, code := hubTok.run("--hub", "other", "whoami"); code != 0 || !strings.Contains(out, "hub token of acme-1") || !strings.Contains(errOut, "acts on hub acme-1 only") {
		t.Errorf("whoami with a hub token and another --hub: exit %d\n%s\n%s", code, out, errOut)
	}
	hubTok.fails(exitAuth, "hubs", "list")
	hubTok.fails(exitAuth, "whoami", "--token", "wrong-token-wrong-token")
}

func TestHubDeleteCommand(t *testing.T) {
	h := hubdtest.Start(t, hubdtest.Options{AdminToken: testAdmin})
	c := newCLI(t, "HUBHOOKS_ADDR", h.GRPCAddr, "HUBHOOKS_TOKEN", testAdmin, "HUBHOOKS_HUB", "acme")
	c.ok("urls", "add", "http://127.0.0.1:9/a")
	c.ok("--hub", "other", "urls", "add", "http://127.0.0.1:9/b")
	tok := jsonOf(t, c.ok("tokens", "create", "-o", "json"), &hubhooksv1.CreateHubTokenResponse{})
	hubTok := newCLI(t, "HUBHOOKS_ADDR", h.GRPCAddr, "HUBHOOKS_TOKEN", tok.GetToken(), "HUBHOOKS_HUB", "acme")
	if errOut := hubTok.fails(exitAuth, "hub", "delete", "--yes"); !strings.Contains(errOut, "permission denied") {
		t.Errorf("hub delete with a hub token: %q", errOut)
	}

	// Without --yes: refused outside a terminal, asked at one.
	if errOut := c.fails(exitUsage, "hub", "delete"); !strings.Contains(errOut, "pass --yes") {
		t.Errorf("hub delete without --yes: %q", errOut)
	}
	c.interactive, c.stdin = true, "acm\n"
	_, errOut, code := c.run("hub", "delete")
	if code != exitFailed || !strings.Contains(errOut, "Type the hub id (acme)") || !strings.Contains(errOut, "not confirmed") {
		t.Errorf("hub delete answered wrongly: exit %d, stderr %q", code, errOut)
	}
	if cfg := jsonOf(t, c.ok("hub", "show", "-o", "json"), &hubhooksv1.HubConfig{}); len(cfg.GetCallbackUrls()) != 1 {
		t.Fatalf("hub deleted without confirmation: %v", cfg)
	}
	c.stdin = "acme\n"
	if out := c.ok("hub", "delete"); !strings.Contains(out, "deleted hub acme") || !strings.Contains(out, "1 hub token(s) revoked") {
		t.Errorf("hub delete (confirmed):\n%s", out)
	}
	c.interactive, c.stdin = false, ""
	if cfg := jsonOf(t, c.ok("hub", "show", "-o", "json"), &hubhooksv1.HubConfig{}); len(cfg.GetCallbackUrls()) != 0 {
		t.Errorf("hub show after delete: %v", cfg)
	}
	hubTok.fails(exitAuth, "hub", "show")
	if out := c.ok("hubs", "list"); strings.Contains(out, "acme") || !strings.Contains(out, "other") {
		t.Errorf("hubs list after deleting acme:\n%s", out)
	}
	// Idempotent, and JSON for scripts.
	if resp := jsonOf(t, c.ok("hub", "delete", "--yes", "-o", "json"), &hubhooksv1.DeleteHubResponse{}); resp.GetDeletedAt() == nil || resp.GetTokensRevoked() != 0 {
		t.Errorf("hub delete again -o json: %v", resp)
	}
}

func TestLogsPurgeCommand(t *testing.T) {
	h := hubdtest.Start(t, hubdtest.Options{AdminToken: testAdmin})
	recv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(recv.Close)
	c := newCLI(t, "HUBHOOKS_ADDR", h.GRPCAddr, "HUBHOOKS_TOKEN", testAdmin, "HUBHOOKS_HUB", "acme")
	c.ok("urls", "add", recv.URL)
	for range 3 {
		c.ok("test", "APP.UPDATED", "--url", recv.URL)
	}
	// Test events are logged as the logger consumes their attempts.
	poll.Until(t, 20*time.Second, "three test entries in logs list --test", func() bool {
		l := jsonOf(t, c.ok("logs", "list", "--test", "-o", "json"), &hubhooksv1.ListEventLogsResponse{})
		return len(l.GetEventLogs()) == 3
	})
	if l := jsonOf(t, c.ok("logs", "list", "--test=false", "-o", "json"), &hubhooksv1.ListEventLogsResponse{}); len(l.GetEventLogs()) != 0 {
		t.Errorf("logs list --test=false: %v", l)
	}

	if errOut := c.fails(exitUsage, "logs", "purge"); !strings.Contains(errOut, "pass --yes") {
		t.Errorf("logs purge without --yes: %q", errOut)
	}
	c.fails(exitUsage, "logs", "purge", "--before", "last tuesday", "--yes")
	if out := c.ok("logs", "purge", "--before", "2026-01-01", "--yes"); !strings.Contains(out, "purged 0 entries") {
		t.Errorf("logs purge --before 2026-01-01:\n%s", out)
	}
	tok := jsonOf(t, c.ok("tokens", "create", "-o", "json"), &hubhooksv1.CreateHubTokenResponse{})
	newCLI(t, "HUBHOOKS_ADDR", h.GRPCAddr, "HUBHOOKS_TOKEN", tok.GetToken(), "HUBHOOKS_HUB", "acme").fails(exitAuth, "logs", "purge", "--yes")
	if resp := jsonOf(t, c.ok("logs", "purge", "--yes", "-o", "json"), &hubhooksv1.PurgeEventLogsResponse{}); resp.GetPurged() != 3 {
		t.Errorf("logs purge --yes: %v, want 3 purged", resp)
	}
	if l := jsonOf(t, c.ok("logs", "list", "-o", "json"), &hubhooksv1.ListEventLogsResponse{}); len(l.GetEventLogs()) != 0 {
		t.Errorf("logs list after purge: %v", l)
	}
}

func TestURLUpdateCommand(t *testing.T) {
	h := hubdtest.Start(t, hubdtest.Options{})
	c := newCLI(t, "HUBHOOKS_ADDR", h.GRPCAddr, "HUBHOOKS_HUB", "acme")
	cfg := jsonOf(t, c.ok("urls", "add", "http://127.0.0.1:9/a", "--types", "API.CREATED", "--description", "crm", "-o", "json"), &hubhooksv1.HubConfig{})
	id := cfg.GetCallbackUrls()[0].GetId()
	c.ok("urls", "add", "http://127.0.0.1:9/other")

	cfg = jsonOf(t, c.ok("urls", "update", id, "http://127.0.0.1:9/b", "-o", "json"), &hubhooksv1.HubConfig{})
	u := cfg.GetCallbackUrls()[0]
	if u.GetId() != id || u.GetUrl() != "http://127.0.0.1:9/b" || u.GetDescription() != "crm" || len(u.GetEventTypes()) != 1 {
		t.Errorf("urls update by id: %v", u)
	}
	// Named by its URL, spelled another way (scheme and host case).
	out := c.ok("urls", "edit", "HTTP://127.0.0.1:9/b", "http://127.0.0.1:9/c")
	if !strings.Contains(out, id) || !strings.Contains(out, "http://127.0.0.1:9/c") || strings.Contains(out, "9/b") {
		t.Errorf("urls edit by URL:\n%s", out)
	}
	if errOut := c.fails(exitNotFound, "urls", "update", "http://127.0.0.1:9/b", "http://127.0.0.1:9/d"); !strings.Contains(errOut, "name it by id") {
		t.Errorf("urls update of an unknown URL: %q", errOut)
	}
	c.fails(exitNotFound, "urls", "update", "url_nope", "http://127.0.0.1:9/d")
	c.fails(exitConflict, "urls", "update", id, "http://127.0.0.1:9/other")
	c.fails(exitUsage, "urls", "update", id, "ftp://127.0.0.1/x")
	c.fails(exitUsage, "urls", "update", id)
}

func TestTestPreviewAndDomainEvent(t *testing.T) {
	h := hubdtest.Start(t, hubdtest.Options{})
	var hits atomic.Int32
	var status atomic.Int32
	status.Store(http.StatusOK)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(int(status.Load()))
	}))
	t.Cleanup(recv.Close)
	c := newCLI(t, "HUBHOOKS_ADDR", h.GRPCAddr, "HUBHOOKS_HUB", "acme")
	c.ok("urls", "add", recv.URL)

	out := c.ok("test", "API.UPDATED", "--url", recv.URL, "--preview")
	if !strings.Contains(out, "> POST "+recv.URL) || !strings.Contains(out, "x-rapidapi-webhook-secret: whsec_********") ||
		!strings.Contains(out, `"API.UPDATED"`) || !strings.Contains(out, "not sent") || strings.Contains(out, "< HTTP") {
		t.Errorf("test --preview:\n%s", out)
	}
	prev := jsonOf(t, c.ok("test", "API.UPDATED", "--url", recv.URL, "--preview", "--body", `{"api":{"id":"api_mine"}}`, "-o", "json"), &hubhooksv1.PreviewTestEventResponse{})
	if !strings.Contains(prev.GetRequest().GetBody(), "api_mine") {
		t.Errorf("test --preview --body: %v", prev)
	}
	// USER.CREATED triggers APP.CREATED, APP_KEY.CREATED and USER.CREATED.
	prevs := jsonOf(t, c.ok("test", "--domain-event", "USER.CREATED", "--url", recv.URL, "--preview", "-o", "json"), &hubhooksv1.PreviewTestDomainEventResponse{})
	if len(prevs.GetRequests()) != 3 || !strings.Contains(prevs.GetRequests()[2].GetBody(), `"USER.CREATED"`) {
		t.Errorf("test --domain-event --preview: %v", prevs)
	}
	if hits.Load() != 0 {
		t.Fatalf("a preview reached the receiver (%d requests)", hits.Load())
	}

	sent := jsonOf(t, c.ok("test", "--domain-event", "USER.CREATED", "--url", recv.URL, "-o", "json"), &hubhooksv1.SendTestDomainEventResponse{})
	if len(sent.GetResults()) != 3 || hits.Load() != 3 || sent.GetDomainEventId() == "" {
		t.Fatalf("test --domain-event: %d results, %d requests: %v", len(sent.GetResults()), hits.Load(), sent)
	}
	poll.Until(t, 20*time.Second, "the three test entries in logs list --domain-event", func() bool {
		l := jsonOf(t, c.ok("logs", "list", "--domain-event", sent.GetDomainEventId(), "--test", "-o", "json"), &hubhooksv1.ListEventLogsResponse{})
		return len(l.GetEventLogs()) == 3
	})
	// The log holds those three and nothing of the previews.
	if l := jsonOf(t, c.ok("logs", "list", "-o", "json"), &hubhooksv1.ListEventLogsResponse{}); len(l.GetEventLogs()) != 3 {
		t.Errorf("logs list after three previews and a test domain event: %d entries, want 3", len(l.GetEventLogs()))
	}
	status.Store(http.StatusInternalServerError)
	out, errOut, code := c.run("test", "--domain-event", "USER.CREATED", "--url", recv.URL)
	if code != exitUnsuccess || strings.Count(out, "=== test event") != 3 || !strings.Contains(out, "hubctl logs list --domain-event") ||
		!strings.Contains(errOut, "did not accept 3 of 3 test events") {
		t.Errorf("test --domain-event against a 500: exit %d\n%s\n%s", code, out, errOut)
	}

	for _, tt := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"test", "--url", recv.URL}, "or --domain-event"},
		{[]string{"test", "API.UPDATED", "--domain-event", "API.UPDATED", "--url", recv.URL}, "not both"},
		{[]string{"test", "--domain-event", "API.UPDATED", "--body", "{}", "--url", recv.URL}, "sample data only"},
		{[]string{"test", "--domain-event", "API.MELTED", "--url", recv.URL}, "API.MELTED"},
		{[]string{"test", "API.UPDATED", "APP.UPDATED", "--url", recv.URL}, "got 2 arguments"},
	} {
		if errOut := c.fails(exitUsage, tt.args...); !strings.Contains(errOut, tt.wantErr) {
			t.Errorf("hubctl %s: stderr %q does not say %q", strings.Join(tt.args, " "), errOut, tt.wantErr)
		}
	}
	c.fails(exitNotFound, "test", "API.UPDATED", "--preview", "--url", "https://not-a-url-of-the-hub.example/")
}
