package e2e_test

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/services/hubd/hubdtest"
)

// hubctlBinary builds bin/hubctl's main into a temp dir.
func hubctlBinary(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	out := filepath.Join(t.TempDir(), "hubctl")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/hubctl")
	cmd.Dir = filepath.Dir(filepath.Dir(file))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build hubctl: %v\n%s", err, b)
	}
	return out
}

// TestHubctlScenarios drives hubd through the hubctl binary as an
// operator would: a URL that takes some types only (filter), the recovery
// of what died during an outage, and the backfill of a new URL (replay).
func TestHubctlScenarios(t *testing.T) {
	bin := hubctlBinary(t)
	h := hubdtest.Start(t, hubdtest.Options{Schedule: []time.Duration{0}})
	home := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "HOME="+home, "HUBHOOKS_ADDR="+h.GRPCAddr, "HUBHOOKS_HUB=acme")
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("hubctl %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
		}
		return out.String()
	}
	teams, all, late := newReceiver(t), newReceiver(t), newReceiver(t)
	publish := func(id string) {
		t.Helper()
		m := nats.NewMsg("TEAM.CREATED") // APP.CREATED, APP_KEY.CREATED, TEAM.CREATED
		m.Header.Set(jetstream.MsgIDHeader, id)
		m.Header.Set("Content-Type", "application/json")
		m.Data = []byte(`{"id":"` + id + `","hubId":"acme","data":{"team":{"id":"t1"}}}`)
		if _, err := h.JS.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	byID := func(r *receiver) map[string]int {
		n := map[string]int{}
		for _, g := range r.all() {
			n[g.Event.ID]++
		}
		return n
	}

	// Filter: one URL takes TEAM.CREATED only.
	run("urls", "add", teams.URL+"/teams", "--types", "TEAM.CREATED")
	run("urls", "add", all.URL+"/all")
	run("hub", "enable")
	if out := run("explain", "TEAM.CREATED"); strings.Count(out, "✗ not to "+teams.URL) != 2 {
		t.Errorf("explain: want the filtering URL left out of two webhook events:\n%s", out)
	}
	publish("evt-1")
	poll.Until(t, 20*time.Second, "the first event delivered", func() bool { return len(all.all()) == 3 && len(teams.all()) == 1 })
	if got := teams.all()[0].Event.Type; got != "TEAM.CREATED" {
		t.Errorf("the filtering URL got %s", got)
	}

	// Recovery: the all-types URL is down while two events arrive; once
	// it is back, 'hubctl recover' sends what died, and only once.
	all.mu.Lock()
	all.status = http.StatusServiceUnavailable
	all.mu.Unlock()
	publish("evt-2")
	publish("evt-3")
	poll.Until(t, 20*time.Second, "six dead deliveries", func() bool {
		return strings.Count(run("logs", "list", "--status", "dead"), "dead") == 6
	})
	all.mu.Lock()
	all.status = http.StatusOK
	all.mu.Unlock()
	if out := run("recover", "--since", "1h", "--dry-run"); !strings.Contains(out, "would recover 6 deliveries") {
		t.Errorf("recover --dry-run:\n%s", out)
	}
	if out := run("recover", "--since", "1h"); !strings.Contains(out, "recovered 6 deliveries") {
		t.Errorf("recover:\n%s", out)
	}
	if out := run("recover", "--since", "1h"); !strings.Contains(out, "nothing to recover") {
		t.Errorf("recover again:\n%s", out)
	}
	poll.Until(t, 20*time.Second, "the recoveries delivered", func() bool {
		ok := 0
		for _, g := range all.all() {
			if g.Event.DomainEvent.ID != "evt-1" {
				ok++
			}
		}
		return ok == 12 // six refused, six recovered
	})

	// Replay: a URL added now gets the three events' webhooks, once, as
	// replays (rpl_ ids naming their originals).
	run("urls", "add", late.URL+"/late")
	if out := run("replay", "--since", "1h", "--url", late.URL+"/late"); !strings.Contains(out, "replayed 9 deliveries") {
		t.Errorf("replay:\n%s", out)
	}
	if out := run("replay", "--since", "1h", "--url", late.URL+"/late"); !strings.Contains(out, "replayed 0 deliveries") || !strings.Contains(out, "9 already replayed") {
		t.Errorf("replay again:\n%s", out)
	}
	poll.Until(t, 20*time.Second, "nine replays at the new URL", func() bool { return len(late.all()) == 9 })
	for id, n := range byID(late) {
		if !strings.HasPrefix(id, "rpl_") || n != 1 {
			t.Errorf("the new URL got %s %d times", id, n)
		}
	}
	for _, g := range late.all() {
		if !strings.HasPrefix(g.Event.ReplayOf, "msg_") {
			t.Errorf("replay %s names no original (replay_of %q)", g.Event.ID, g.Event.ReplayOf)
		}
	}
}
