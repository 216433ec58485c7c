package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/hubhooks/hubhooks/pkg/poll"
	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/hubd/hubdtest"
)

// cli runs hubctl in-process with its own environment variables.
type cli struct {
	t     *testing.T
	vars  map[string]string
	stdin string
	// interactive plays a terminal on stdin.
	interactive bool
}

func newCLI(t *testing.T, vars ...string) *cli {
	// No config file of the machine's user leaks in.
	c := &cli{t: t, vars: map[string]string{"HOME": t.TempDir()}}
	for i := 0; i+1 < len(vars); i += 2 {
		c.vars[vars[i]] = vars[i+1]
	}
	return c
}

// run runs hubctl with args and returns stdout, stderr and the exit status.
func (c *cli) run(args ...string) (string, string, int) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := execute(ctx, args, env{
		stdin: strings.NewReader(c.stdin), stdout: &out, stderr: &errOut,
		getenv:      func(k string) string { return c.vars[k] },
		interactive: c.interactive,
	})
	return out.String(), errOut.String(), code
}

// ok runs hubctl and fails the test unless it exits 0.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	out, errOut, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("hubctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// fails runs hubctl and fails the test unless it exits with want; it
// returns stderr.
func (c *cli) fails(want int, args ...string) string {
	c.t.Helper()
	out, errOut, code := c.run(args...)
	if code != want {
		c.t.Fatalf("hubctl %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errOut)
	}
	if !strings.HasPrefix(errOut, "hubctl: ") && want != exitOK {
		c.t.Fatalf("hubctl %s: stderr %q does not start with the reason", strings.Join(args, " "), errOut)
	}
	return errOut
}

// jsonOf decodes hubctl's JSON output into m.
func jsonOf[M proto.Message](t *testing.T, out string, m M) M {
	t.Helper()
	if err := protojson.Unmarshal([]byte(out), m); err != nil {
		t.Fatalf("output is not %T JSON: %v\n%s", m, err, out)
	}
	return m
}

func TestSettingsPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "hubctl.yaml")
	if err := os.WriteFile(file, []byte("addr: file:1\nhub: from-file\ntoken: file-token-0123456789\ntimeout: 5s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		vars []string
		args []string
		want map[string]string // setting -> "value|source"
	}{
		{
			name: "defaults",
			args: []string{"settings"},
			want: map[string]string{"addr": "127.0.0.1:7000|default", "logs-addr": "127.0.0.1:7000|same as addr", "output": "table|default", "timeout": "30s|default"},
		},
		{
			name: "config file",
			vars: []string{"HUBCTL_CONFIG", file},
			args: []string{"settings"},
			want: map[string]string{"addr": "file:1|config file", "hub": "from-file|config file", "timeout": "5s|config file"},
		},
		{
			name: "environment over file",
			vars: []string{"HUBCTL_CONFIG", file, "HUBHOOKS_ADDR", "env:2", "HUBHOOKS_HUB", "from-env", "HUBHOOKS_LOGS_ADDR", "logs:3"},
			args: []string{"settings"},
			want: map[string]string{"addr": "env:2|environment HUBHOOKS_ADDR", "hub": "from-env|environment HUBHOOKS_HUB", "logs-addr": "logs:3|environment HUBHOOKS_LOGS_ADDR"},
		},
		{
			name: "flags over environment",
			vars: []string{"HUBCTL_CONFIG", file, "HUBHOOKS_ADDR", "env:2", "HUBHOOKS_HUB", "from-env"},
			args: []string{"settings", "--addr", "flag:4", "--hub", "from-flag", "--timeout", "1m"},
			want: map[string]string{"addr": "flag:4|flag --addr", "hub": "from-flag|flag --hub", "timeout": "1m0s|flag --timeout"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := newCLI(t, tt.vars...).ok(tt.args...)
			for name, want := range tt.want {
				value, source, _ := strings.Cut(want, "|")
				found := false
				for _, line := range strings.Split(out, "\n") {
					f := strings.Fields(line)
					if len(f) >= 2 && f[0] == name {
						found = true
						if f[1] != value || !strings.Contains(line, source) {
							t.Errorf("%s: line %q, want value %q from %q", name, line, value, source)
						}
					}
				}
				if !found {
					t.Errorf("%s not shown:\n%s", name, out)
				}
			}
			if strings.Contains(out, "file-token-0123456789") {
				t.Errorf("settings printed the token in clear:\n%s", out)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("adress: typo:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		vars    []string
		args    []string
		wantErr string
	}{
		{"unknown command", nil, []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", nil, []string{"hub", "show", "--frob"}, "unknown flag: --frob"},
		{"missing hub", nil, []string{"hub", "show"}, "no hub: pass --hub"},
		{"bad output", nil, []string{"settings", "-o", "xml"}, `output "xml"`},
		{"bad timeout", nil, []string{"settings", "--timeout", "soon"}, `timeout "soon"`},
		{"unknown config key", []string{"HUBCTL_CONFIG", bad}, []string{"settings"}, "field adress not found"},
		{"missing config file", []string{"HUBCTL_CONFIG", filepath.Join(dir, "nope.yaml")}, []string{"settings"}, "no such file"},
		{"too many arguments", []string{"HUBHOOKS_HUB", "acme"}, []string{"urls", "add", "http://a", "http://b"}, "wants one URL"},
		{"bad since", []string{"HUBHOOKS_HUB", "acme"}, []string{"logs", "list", "--since", "yesterday-ish"}, `--since "yesterday-ish"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errOut := newCLI(t, tt.vars...).fails(exitUsage, tt.args...)
			if !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("stderr %q does not say %q", errOut, tt.wantErr)
			}
		})
	}
}

func TestUnreachableServer(t *testing.T) {
	l := freeAddr(t)
	errOut := newCLI(t, "HUBHOOKS_HUB", "acme", "HUBHOOKS_ADDR", l).fails(exitUnavailable, "hub", "show", "--timeout", "3s")
	if !strings.Contains(errOut, l) {
		t.Errorf("stderr %q does not name the address", errOut)
	}
}

func TestConfigCommands(t *testing.T) {
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

	cfg := jsonOf(t, c.ok("urls", "add", recv.URL+"/hooks", "-o", "json"), &hubhooksv1.HubConfig{})
	if len(cfg.GetCallbackUrls()) != 1 || cfg.GetCallbackUrls()[0].GetUrl() != recv.URL+"/hooks" {
		t.Fatalf("urls add: config %v", cfg)
	}
	urlID := cfg.GetCallbackUrls()[0].GetId()
	if out := c.ok("urls", "list"); !strings.Contains(out, urlID) || !strings.Contains(out, recv.URL) {
		t.Errorf("urls list does not show the URL:\n%s", out)
	}
	if errOut := c.fails(exitConflict, "urls", "add", recv.URL+"/hooks"); !strings.Contains(errOut, "already has") {
		t.Errorf("duplicate URL: %q", errOut)
	}
	if errOut := c.fails(exitUsage, "urls", "add", "ftp://example.com"); !strings.Contains(errOut, "http or https") {
		t.Errorf("ftp URL: %q", errOut)
	}

	cfg = jsonOf(t, c.ok("hub", "enable", "-o", "json"), &hubhooksv1.HubConfig{})
	if !cfg.GetEventsEnabled() {
		t.Errorf("hub enable: triggers still off")
	}
	if out := c.ok("hub", "show"); !strings.Contains(out, "triggers  on") || strings.Contains(out, cfg.GetSecret()) {
		t.Errorf("hub show: want triggers on and the secret masked:\n%s", out)
	}
	if out := c.ok("secret", "show"); strings.TrimSpace(out) != cfg.GetSecret() {
		t.Errorf("secret show = %q, want %q", out, cfg.GetSecret())
	}
	rotated := strings.TrimSpace(c.ok("secret", "rotate"))
	if !strings.HasPrefix(rotated, "whsec_") || rotated == cfg.GetSecret() {
		t.Errorf("secret rotate printed %q", rotated)
	}

	tok := jsonOf(t, c.ok("tokens", "create", "--description", "ci", "-o", "json"), &hubhooksv1.CreateHubTokenResponse{})
	if out := c.ok("tokens", "list"); !strings.Contains(out, tok.GetInfo().GetId()) || strings.Contains(out, tok.GetToken()) {
		t.Errorf("tokens list: want the id, not the value:\n%s", out)
	}
	// The new token acts on its hub, and only there.
	withTok := newCLI(t, "HUBHOOKS_ADDR", h.GRPCAddr, "HUBHOOKS_TOKEN", tok.GetToken())
	withTok.ok("--hub", "acme", "hub", "show")
	if errOut := withTok.fails(exitAuth, "--hub", "other", "hub", "show"); !strings.Contains(errOut, "permission denied") {
		t.Errorf("token of another hub: %q", errOut)
	}
	c.ok("tokens", "revoke", tok.GetInfo().GetId())
	withTok.fails(exitAuth, "--hub", "acme", "hub", "show")

	if out := c.ok("event-types"); !strings.Contains(out, "API.CREATED") || !strings.Contains(out, "TARGET_GROUP.CREATED (one per baseUrls)") {
		t.Errorf("event-types:\n%s", out)
	}

	out := c.ok("test", "BILLINGPLAN.CREATED", "--url", recv.URL+"/hooks")
	if !strings.Contains(out, "< HTTP 200") || !strings.Contains(out, "x-rapidapi-webhook-secret: whsec_********") || hits.Load() != 1 {
		t.Errorf("test: receiver hits %d, output:\n%s", hits.Load(), out)
	}
	status.Store(http.StatusInternalServerError)
	c.stdin = `{"billingPlan":{"id":"bp_mine"}}`
	if errOut := c.fails(exitUnsuccess, "test", "BILLINGPLAN.CREATED", "--url", recv.URL+"/hooks", "--body", "@-"); !strings.Contains(errOut, "HTTP 500") {
		t.Errorf("test against a 500: %q", errOut)
	}
	c.fails(exitUsage, "test", "NOPE.CREATED", "--url", recv.URL+"/hooks")
	c.fails(exitNotFound, "test", "API.CREATED", "--url", "https://not-a-url-of-the-hub.example/")

	if out := c.ok("__complete", "test", ""); !strings.Contains(out, "TARGET_GROUP.CREATED") {
		t.Errorf("completion of test's event type:\n%s", out)
	}
	if out := c.ok("__complete", "urls", "remove", ""); !strings.Contains(out, urlID+"\t"+recv.URL) {
		t.Errorf("completion of urls remove:\n%s", out)
	}
	c.ok("urls", "remove", urlID)
	if cfg := jsonOf(t, c.ok("hub", "show", "-o", "json"), &hubhooksv1.HubConfig{}); len(cfg.GetCallbackUrls()) != 0 {
		t.Errorf("urls remove: still %v", cfg.GetCallbackUrls())
	}
	c.fails(exitNotFound, "urls", "remove", urlID)
}

func TestLogsCommands(t *testing.T) {
	h := hubdtest.Start(t, hubdtest.Options{Schedule: []time.Duration{0}})
	var fail atomic.Bool
	fail.Store(true)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if fail.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(recv.Close)
	c := newCLI(t, "HUBHOOKS_ADDR", h.GRPCAddr, "HUBHOOKS_HUB", "acme")
	c.ok("urls", "add", recv.URL)
	c.ok("hub", "enable")

	publish(t, h.JS, &eventsv1.DomainEvent{Id: "evt-logs-1", HubId: "acme", Type: "USER.CREATED", Data: mustStruct(t, map[string]any{"user": map[string]any{"id": "u1"}})})
	// USER.CREATED emits three webhook events; one attempt each, all dead.
	var dead *hubhooksv1.ListEventLogsResponse
	poll.Until(t, 20*time.Second, "three dead deliveries", func() bool {
		dead = jsonOf(t, c.ok("logs", "list", "--status", "dead", "-o", "json"), &hubhooksv1.ListEventLogsResponse{})
		return len(dead.GetEventLogs()) == 3
	})
	if out := c.ok("logs", "list", "--type", "USER.CREATED"); strings.Count(out, "USER.CREATED") != 1 || !strings.Contains(out, "dead") {
		t.Errorf("logs list --type:\n%s", out)
	}
	if out := c.ok("logs", "list", "--limit", "2", "--status", "dead"); strings.Count(out, "dead") != 2 {
		t.Errorf("logs list --limit 2:\n%s", out)
	}
	id := dead.GetEventLogs()[0].GetId()
	got := jsonOf(t, c.ok("logs", "get", id, "-o", "json"), &hubhooksv1.GetEventLogResponse{})
	if got.GetEventLog().GetId() != id || len(got.GetAttempts()) != 1 || got.GetAttempts()[0].GetResponse().GetStatusCode() != 503 {
		t.Errorf("logs get: %v", got)
	}
	if out := c.ok("logs", "get", id); !strings.Contains(out, "< HTTP 503") || !strings.Contains(out, "--- attempt 1  dead") {
		t.Errorf("logs get (table):\n%s", out)
	}
	c.fails(exitNotFound, "logs", "get", "dlv_doesnotexist")
	c.fails(exitUsage, "logs", "get", "not/an/id")

	fail.Store(false)
	re := jsonOf(t, c.ok("logs", "redeliver", id, "-o", "json"), &hubhooksv1.ListEventLogsResponse{})
	if len(re.GetEventLogs()) != 1 || re.GetEventLogs()[0].GetRedeliveryOf() != id {
		t.Fatalf("logs redeliver: %v", re)
	}
	newID := re.GetEventLogs()[0].GetId()
	poll.Until(t, 20*time.Second, "the redelivery succeeds", func() bool {
		got := jsonOf(t, c.ok("logs", "get", newID, "-o", "json"), &hubhooksv1.GetEventLogResponse{})
		return got.GetEventLog().GetStatus() == "succeeded"
	})
	// One bad id among good ones: the good one is redelivered, the exit
	// status reports the bad one.
	out, errOut, code := c.run("logs", "redeliver", dead.GetEventLogs()[1].GetId(), "dlv_nope")
	if code != exitNotFound || !strings.Contains(out, dead.GetEventLogs()[1].GetId()) || !strings.Contains(errOut, "dlv_nope") {
		t.Errorf("redeliver with a bad id: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestTail(t *testing.T) {
	h := hubdtest.Start(t, hubdtest.Options{})
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(recv.Close)
	c := newCLI(t, "HUBHOOKS_ADDR", h.GRPCAddr, "HUBHOOKS_HUB", "acme")
	c.ok("urls", "add", recv.URL)
	c.ok("hub", "enable")
	// Made before the tails start: their backlog (--since 1m) shows it.
	c.ok("test", "API.UPDATED", "--url", recv.URL)

	all := c.start("logs", "tail", "-o", "json")
	live := c.start("logs", "tail", "--type", "APP.UPDATED", "--test=false")
	poll.Until(t, 20*time.Second, "the tails print the backlog", func() bool {
		return strings.Contains(all.out.String(), `"API.UPDATED"`) && strings.Contains(live.out.String(), "CREATED")
	})
	publish(t, h.JS, &eventsv1.DomainEvent{Id: "evt-tail-1", HubId: "acme", Type: "APP.UPDATED", Data: mustStruct(t, map[string]any{"app": map[string]any{"id": "a1"}})})
	poll.Until(t, 20*time.Second, "tail prints the delivery as succeeded", func() bool {
		for _, line := range strings.Split(all.out.String(), "\n") {
			var l map[string]any
			if json.Unmarshal([]byte(line), &l) == nil && l["event_type"] == "APP.UPDATED" && l["status"] == "succeeded" {
				return true
			}
		}
		return false
	})
	poll.Until(t, 20*time.Second, "the filtered tail prints the delivery", func() bool {
		return strings.Contains(live.out.String(), "APP.UPDATED") && strings.Contains(live.out.String(), "succeeded")
	})
	for _, tl := range []*running{all, live} {
		if code := tl.stop(); code != exitOK {
			t.Errorf("tail interrupted: exit %d, want 0 (following ends with Ctrl-C)\n%s", code, tl.out.String())
		}
	}
	if out := live.out.String(); strings.Contains(out, "API.UPDATED") || strings.Count(out, "ATTEMPTS") != 1 {
		t.Errorf("tail --type APP.UPDATED --test=false printed more than the filter lets through:\n%s", out)
	}
	c.fails(exitUsage, "logs", "tail", "--response-class", "6xx")
}

// running is a hubctl command running until stopped.
type running struct {
	out    *syncBuffer
	cancel context.CancelFunc
	done   chan int
}

// start runs hubctl with args until stop.
func (c *cli) start(args ...string) *running {
	r := &running{out: &syncBuffer{}, done: make(chan int, 1)}
	var ctx context.Context
	ctx, r.cancel = context.WithCancel(context.Background())
	go func() {
		r.done <- execute(ctx, args, env{
			stdin: strings.NewReader(""), stdout: r.out, stderr: r.out,
			getenv: func(k string) string { return c.vars[k] },
		})
	}()
	c.t.Cleanup(func() { r.cancel() })
	return r
}

// stop interrupts the command and returns its exit status.
func (r *running) stop() int {
	r.cancel()
	return <-r.done
}

func TestAuthenticationRequired(t *testing.T) {
	const admin = "admin-token-for-hubctl-tests"
	h := hubdtest.Start(t, hubdtest.Options{AdminToken: admin})
	c := newCLI(t, "HUBHOOKS_ADDR", h.GRPCAddr, "HUBHOOKS_HUB", "acme")
	if errOut := c.fails(exitAuth, "hub", "show"); !strings.Contains(errOut, "HUBHOOKS_TOKEN") {
		t.Errorf("no token: %q should say how to pass one", errOut)
	}
	c.fails(exitAuth, "hub", "show", "--token", "wrong-token-wrong-token")
	c.ok("hub", "show", "--token", admin)
	// The token from a config file, which warns when others may read it.
	file := filepath.Join(t.TempDir(), "hubctl.yaml")
	if err := os.WriteFile(file, []byte("token: "+admin+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.vars["HUBCTL_CONFIG"] = file
	_, errOut, code := c.run("hub", "show")
	if code != 0 || !strings.Contains(errOut, "chmod 600") {
		t.Errorf("token from a world-readable file: exit %d, stderr %q", code, errOut)
	}
}

func TestCompletion(t *testing.T) {
	c := newCLI(t)
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		if out := c.ok("completion", shell); !strings.Contains(out, "hubctl") {
			t.Errorf("completion %s: no script", shell)
		}
	}
	out := c.ok("__complete", "logs", "list", "--status", "")
	if !strings.Contains(out, "dead") || !strings.Contains(out, "succeeded") {
		t.Errorf("completion of --status:\n%s", out)
	}
}

func TestHelpTeaches(t *testing.T) {
	out := newCLI(t).ok("--help")
	for _, want := range []string{"HUBHOOKS_ADDR", "HUBHOOKS_TOKEN", "hubctl.yaml", "Exit status", "Examples:", "logs"} {
		if !strings.Contains(out, want) {
			t.Errorf("hubctl --help does not mention %q", want)
		}
	}
	if out := newCLI(t).ok("logs", "list", "--help"); !strings.Contains(out, "--status dead --since 2h") {
		t.Errorf("logs list --help has no example:\n%s", out)
	}
}

// publish publishes a domain event as a hub domain does.
func publish(t *testing.T, js jetstream.JetStream, ev *eventsv1.DomainEvent) {
	t.Helper()
	m := nats.NewMsg(ev.GetType())
	m.Header.Set(jetstream.MsgIDHeader, ev.GetId())
	m.Header.Set("Content-Type", "application/protobuf")
	b, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	m.Data = b
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatalf("publish %s: %v", ev.GetType(), err)
	}
}

func mustStruct(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestURLControlCommands(t *testing.T) {
	h := hubdtest.Start(t, hubdtest.Options{})
	c := newCLI(t, "HUBHOOKS_ADDR", h.GRPCAddr, "HUBHOOKS_HUB", "acme")
	cfg := jsonOf(t, c.ok("urls", "add", "http://127.0.0.1:9/plans", "--types", "BILLINGPLAN.CREATED,BILLINGPLAN.UPDATED", "--description", "plan sync", "-o", "json"), &hubhooksv1.HubConfig{})
	u := cfg.GetCallbackUrls()[0]
	if strings.Join(u.GetEventTypes(), ",") != "BILLINGPLAN.CREATED,BILLINGPLAN.UPDATED" || u.GetDescription() != "plan sync" {
		t.Fatalf("urls add --types --description: %v", u)
	}
	cfg = jsonOf(t, c.ok("urls", "set", u.GetId(), "--types", "API.CREATED", "-o", "json"), &hubhooksv1.HubConfig{})
	if got := cfg.GetCallbackUrls()[0].GetEventTypes(); len(got) != 1 || got[0] != "API.CREATED" {
		t.Errorf("urls set --types: %v", got)
	}
	out := c.ok("urls", "disable", "http://127.0.0.1:9/plans", "--reason", "receiver migrating")
	if !strings.Contains(out, "disabled since") || !strings.Contains(out, "receiver migrating") || !strings.Contains(out, "API.CREATED") || !strings.Contains(out, "plan sync") {
		t.Errorf("urls disable:\n%s", out)
	}
	out = c.ok("urls", "enable", u.GetId())
	if !strings.Contains(out, "enabled") || strings.Contains(out, "migrating") {
		t.Errorf("urls enable:\n%s", out)
	}
	cfg = jsonOf(t, c.ok("urls", "set", u.GetId(), "--all-types", "--description", "", "-o", "json"), &hubhooksv1.HubConfig{})
	if got := cfg.GetCallbackUrls()[0]; len(got.GetEventTypes()) != 0 || got.GetDescription() != "" {
		t.Errorf("urls set --all-types: %v", got)
	}
	c.fails(exitUsage, "urls", "set", u.GetId())
	c.fails(exitUsage, "urls", "set", u.GetId(), "--types", "API.CREATED", "--all-types")
	if errOut := c.fails(exitUsage, "urls", "set", u.GetId(), "--types", "API.MELTED"); !strings.Contains(errOut, "API.MELTED") {
		t.Errorf("unknown type: %q", errOut)
	}
	c.fails(exitNotFound, "urls", "disable", "url_nope")
}

func TestExplainAndRecoverCommands(t *testing.T) {
	h := hubdtest.Start(t, hubdtest.Options{Schedule: []time.Duration{0}})
	var fail atomic.Bool
	fail.Store(true)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if fail.Load() {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	t.Cleanup(recv.Close)
	c := newCLI(t, "HUBHOOKS_ADDR", h.GRPCAddr, "HUBHOOKS_HUB", "acme")
	c.ok("urls", "add", recv.URL)
	c.ok("urls", "add", "http://127.0.0.1:9/teams", "--types", "TEAM.CREATED")
	c.ok("hub", "enable")

	out := c.ok("explain", "USER.UPDATED")
	if !strings.Contains(out, "→ sent to "+recv.URL) || !strings.Contains(out, "✗ not to http://127.0.0.1:9/teams") || !strings.Contains(out, "receives only [TEAM.CREATED]") {
		t.Errorf("explain:\n%s", out)
	}
	for i := range 3 {
		publish(t, h.JS, &eventsv1.DomainEvent{Id: "evt-" + strconv.Itoa(i), HubId: "acme", Type: "USER.UPDATED", Data: mustStruct(t, map[string]any{"user": map[string]any{"id": i}})})
	}
	poll.Until(t, 20*time.Second, "three dead deliveries", func() bool {
		l := jsonOf(t, c.ok("logs", "list", "--status", "dead", "-o", "json"), &hubhooksv1.ListEventLogsResponse{})
		return len(l.GetEventLogs()) == 3
	})
	if out := c.ok("recover", "--since", "1h", "--dry-run"); !strings.Contains(out, "would recover 3 deliveries") {
		t.Errorf("recover --dry-run:\n%s", out)
	}
	fail.Store(false)
	if out := c.ok("recover", "--since", "1h"); !strings.Contains(out, "recovered 3 deliveries") {
		t.Errorf("recover:\n%s", out)
	}
	if out := c.ok("recover", "--since", "1h"); !strings.Contains(out, "nothing to recover") || !strings.Contains(out, "3 already recovered") {
		t.Errorf("recover again:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(c.ok("recover", "--since", "1h", "-o", "json")), "\n")
	final := jsonOf(t, lines[len(lines)-1], &hubhooksv1.RecoverDeliveriesProgress{})
	if !final.GetDone() || final.GetAlreadyRecovered() != 3 {
		t.Errorf("recover -o json: last line %v", final)
	}
	poll.Until(t, 20*time.Second, "the recoveries in explain", func() bool {
		out = c.ok("explain", "USER.UPDATED", "--id", "evt-1")
		return strings.Contains(out, "dead") && strings.Contains(out, "succeeded") && strings.Contains(out, "redelivers dlv_")
	})
	c.fails(exitUsage, "recover")
	c.fails(exitUsage, "explain")
	c.fails(exitUsage, "explain", "USER.NOPE")
}

func TestReplayCommand(t *testing.T) {
	h := hubdtest.Start(t, hubdtest.Options{})
	var got atomic.Int32
	recv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { got.Add(1) }))
	t.Cleanup(recv.Close)
	c := newCLI(t, "HUBHOOKS_ADDR", h.GRPCAddr, "HUBHOOKS_HUB", "acme")
	c.ok("urls", "add", recv.URL+"/old")
	c.ok("hub", "enable")
	for i := range 4 {
		publish(t, h.JS, &eventsv1.DomainEvent{Id: "evt-" + strconv.Itoa(i), HubId: "acme", Type: "APP.CREATED"})
	}
	// APP.CREATED makes APP.CREATED and APP_KEY.CREATED.
	poll.Until(t, 20*time.Second, "8 live deliveries", func() bool { return got.Load() == 8 })
	c.ok("urls", "add", recv.URL+"/new")
	if out := c.ok("replay", "--since", "1h", "--url", recv.URL+"/new", "--types", "APP_KEY.CREATED", "--dry-run"); !strings.Contains(out, "would replay 4 deliveries of 4 webhook events from 4 domain events") {
		t.Errorf("replay --dry-run:\n%s", out)
	}
	if out := c.ok("replay", "--since", "1h", "--url", recv.URL+"/new"); !strings.Contains(out, "replayed 8 deliveries") {
		t.Errorf("replay:\n%s", out)
	}
	poll.Until(t, 20*time.Second, "8 replayed deliveries", func() bool { return got.Load() == 16 })
	lines := strings.Split(strings.TrimSpace(c.ok("replay", "--since", "1h", "--url", recv.URL+"/new", "-o", "json")), "\n")
	if last := jsonOf(t, lines[len(lines)-1], &hubhooksv1.ReplayDomainEventsProgress{}); !last.GetDone() || last.GetDeliveries() != 0 || last.GetAlreadyReplayed() != 8 {
		t.Errorf("replay again -o json: %v", last)
	}
	c.fails(exitUsage, "replay")
	c.fails(exitUsage, "replay", "--since", "1h", "--types", "APP.EXPLODED")
}

func TestOpsWatchCommand(t *testing.T) {
	h := hubdtest.Start(t, hubdtest.Options{})
	c := newCLI(t, "HUBHOOKS_ADDR", h.GRPCAddr, "HUBHOOKS_HUB", "acme")
	c.ok("urls", "add", "http://127.0.0.1:9/a")
	if out := c.ok("urls", "set", "http://127.0.0.1:9/a", "--operational-events"); !strings.Contains(out, "+ operational events") {
		t.Errorf("urls set --operational-events:\n%s", out)
	}
	c.ok("urls", "disable", "http://127.0.0.1:9/a", "--reason", "maintenance window")
	poll.Until(t, 20*time.Second, "URL_DISABLED in ops watch", func() bool {
		var out syncBuffer
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		execute(ctx, []string{"ops", "watch", "--since", "1h"}, env{stdin: strings.NewReader(""), stdout: &out, stderr: &out,
			getenv: func(k string) string { return c.vars[k] }})
		return strings.Contains(out.String(), "URL_DISABLED  http://127.0.0.1:9/a  maintenance window")
	})
}
