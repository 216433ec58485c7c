package main

import (
	"strings"
	"testing"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/hubd/hubdtest"
)

// The commands of every remaining RPC (whoami, hubs list, hub delete, logs
// purge, urls update, test --preview, test --domain-event, logs tail)
// against a hubd that requires a token: each refuses with the exit status
// scripts rely on when the token is missing or wrong (4), when the request
// is invalid (2) and when what it names does not exist (3). Their tables
// and JSON are checked in admin_test.go and main_test.go.
func TestRemainingCommandsRefusals(t *testing.T) {
	h := hubdtest.Start(t, hubdtest.Options{AdminToken: testAdmin})
	admin := newCLI(t, "HUBHOOKS_ADDR", h.GRPCAddr, "HUBHOOKS_TOKEN", testAdmin, "HUBHOOKS_HUB", "acme")
	cfg := jsonOf(t, admin.ok("urls", "add", "http://127.0.0.1:9/a", "-o", "json"), &hubhooksv1.HubConfig{})
	id := cfg.GetCallbackUrls()[0].GetId()
	admin.ok("--hub", "other", "urls", "add", "http://127.0.0.1:9/other")
	other := jsonOf(t, admin.ok("--hub", "other", "tokens", "create", "-o", "json"), &hubhooksv1.CreateHubTokenResponse{})

	hubScoped := [][]string{
		{"hub", "delete", "--yes"},
		{"logs", "purge", "--yes"},
		{"urls", "update", id, "http://127.0.0.1:9/b"},
		{"test", "API.UPDATED", "--preview", "--url", "http://127.0.0.1:9/a"},
		{"test", "--domain-event", "USER.CREATED", "--url", "http://127.0.0.1:9/a"},
		{"logs", "tail"},
	}
	noToken := newCLI(t, "HUBHOOKS_ADDR", h.GRPCAddr, "HUBHOOKS_HUB", "acme")
	wrong := newCLI(t, "HUBHOOKS_ADDR", h.GRPCAddr, "HUBHOOKS_HUB", "acme", "HUBHOOKS_TOKEN", "wrong-token-wrong-token")
	otherHub := newCLI(t, "HUBHOOKS_ADDR", h.GRPCAddr, "HUBHOOKS_HUB", "acme", "HUBHOOKS_TOKEN", other.GetToken())
	for _, args := range append([][]string{{"whoami"}, {"hubs", "list"}}, hubScoped...) {
		name := strings.Join(args, " ")
		if errOut := noToken.fails(exitAuth, args...); !strings.Contains(errOut, "HUBHOOKS_TOKEN") {
			t.Errorf("hubctl %s without a token: stderr %q does not say how to pass one", name, errOut)
		}
		if errOut := wrong.fails(exitAuth, args...); !strings.Contains(errOut, "not authenticated") {
			t.Errorf("hubctl %s with a wrong token: %q", name, errOut)
		}
	}
	// A token of another hub acts on that hub only.
	for _, args := range append([][]string{{"hubs", "list"}}, hubScoped...) {
		if errOut := otherHub.fails(exitAuth, args...); !strings.Contains(errOut, "permission denied") {
			t.Errorf("hubctl %s with another hub's token: %q", strings.Join(args, " "), errOut)
		}
	}

	// Invalid requests, refused by the server: exit 2 with its reason.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"hubs", "list", "--prefix", strings.Repeat("a", 200)}, "prefix"},
		{[]string{"--hub", "a/b", "logs", "purge", "--yes"}, "hub_id"},
		{[]string{"--hub", "a/b", "logs", "tail"}, "hub_id"},
		{[]string{"--hub", "a/b", "hub", "delete", "--yes"}, "hub_id"},
		{[]string{"--hub", "a/b", "test", "API.UPDATED", "--preview", "--url", "http://127.0.0.1:9/a"}, "hub_id"},
	} {
		if errOut := admin.fails(exitUsage, tc.args...); !strings.Contains(errOut, tc.want) {
			t.Errorf("hubctl %s: stderr %q does not name %q", strings.Join(tc.args, " "), errOut, tc.want)
		}
	}

	// Not found: exit 3.
	for _, args := range [][]string{
		{"urls", "update", "url_nope", "http://127.0.0.1:9/c"},
		{"test", "API.UPDATED", "--preview", "--url", "http://127.0.0.1:9/nope"},
		{"test", "--domain-event", "USER.CREATED", "--url", "http://127.0.0.1:9/nope"},
		{"--hub", "nobody", "test", "API.UPDATED", "--preview", "--url", "http://127.0.0.1:9/a"},
	} {
		admin.fails(exitNotFound, args...)
	}
}
