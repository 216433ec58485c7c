package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hubhooks/hubhooks/pkg/poll"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// screenshotDir is where the browser test saves its screenshots: docs/console
// when HUBHOOKS_UPDATE_SCREENSHOTS=1 (make screenshots), else a temp dir, so
// that make test leaves the working tree as it was.
func screenshotDir(t *testing.T) string {
	if os.Getenv("HUBHOOKS_UPDATE_SCREENSHOTS") == "1" {
		return filepath.Join("..", "..", "docs", "console")
	}
	return t.TempDir()
}

// chromium finds Debian's chromium (HUBHOOKS_CHROMIUM overrides); the test
// fails without it: .ci/run installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("HUBHOOKS_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("no chromium on PATH: install Debian's chromium package (apt-get install -y chromium), or set HUBHOOKS_CHROMIUM")
	return ""
}

// browser starts a headless Chromium with a fresh profile and returns a
// context for chromedp actions.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// run runs chromedp actions, failing the test with what was being done.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates expr in the page and returns its value.
func eval[T any](t *testing.T, ctx context.Context, expr string, opts ...chromedp.EvaluateOption) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitText waits until the element sel's text contains want.
func waitText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		got, _ = chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? e.innerText : "" })()`, sel)))
		if strings.Contains(got, want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never showed %q; last text: %q", sel, want, got)
}

// clearToast hides and empties the toast, so that waiting for the next one
// cannot see an earlier one.
func clearToast(t *testing.T, ctx context.Context) {
	t.Helper()
	eval[bool](t, ctx, `(() => { const e = document.getElementById('toast'); e.classList.remove('show'); e.textContent = ''; return true })()`)
}

func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	// A toast from an earlier step would cover the picture.
	clearToast(t, ctx)
	run(t, ctx, "settle", chromedp.Sleep(300*time.Millisecond))
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// screenshots are the pictures TestConsoleInBrowser takes, all shown in
// docs/console.md.
var screenshots = []string{"signin.png", "hubs.png", "events.png", "test-dialog.png", "test-dialog-response.png", "event-logs.png", "details.png", "event-logs-390.png", "events-390.png"}

// docs/console.md shows every screenshot the browser test takes, and each is
// in docs/console (make screenshots renews them).
func TestConsoleDocShowsEveryScreenshot(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "console.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range screenshots {
		if !strings.Contains(string(doc), "console/"+name) {
			t.Errorf("docs/console.md does not show console/%s", name)
		}
		if _, err := os.Stat(filepath.Join("..", "..", "docs", "console", name)); err != nil {
			t.Errorf("docs/console/%s: %v (run make screenshots)", name, err)
		}
	}
}

// TestConsoleInBrowser drives the console in a real headless Chromium
// against a real hubd, Redis and NATS: every step a hub admin takes.
func TestConsoleInBrowser(t *testing.T) {
	h := startHubd(t)
	var received atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		received.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"received":true}`))
	}))
	t.Cleanup(receiver.Close)
	hookURL := receiver.URL + "/hooks"
	token := h.hubToken(t, "acme")
	h.hubToken(t, "other")
	dir := screenshotDir(t)
	ctx := browser(t)

	// Sign in with the hub token.
	run(t, ctx, "open the console", chromedp.Navigate(h.base+"/"), chromedp.WaitVisible(`input[name=token]`))
	firstPaint := eval[float64](t, ctx, `(performance.getEntriesByName('first-contentful-paint')[0] || {startTime: -1}).startTime`)
	shot(t, ctx, dir, "signin.png")
	run(t, ctx, "sign in", chromedp.SendKeys(`input[name=token]`, token), chromedp.Click(`form.signin button[type=submit]`))
	waitText(t, ctx, "#who", "Hub acme")
	waitText(t, ctx, "#panel", "Enable event triggers")
	href, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(href, token) {
		t.Fatalf("the token is in the URL %s", href)
	}

	// Add a URL.
	clearToast(t, ctx)
	run(t, ctx, "add a URL", chromedp.Click(`//button[text()="Add a URL"]`), chromedp.SendKeys(`ol.urls li:last-child input`, receiver.URL+"/old"), chromedp.Click(`//button[text()="Save"]`))
	var urlID string
	poll.Until(t, 20*time.Second, "URL stored", func() bool {
		cfg, err := h.config.GetHubConfig(admin(), &hubhooksv1.GetHubConfigRequest{HubId: "acme"})
		if err != nil || len(cfg.GetCallbackUrls()) != 1 {
			return false
		}
		urlID = cfg.GetCallbackUrls()[0].GetId()
		return true
	})
	waitText(t, ctx, "#toast", "Callback URLs saved")

	// Edit the URL: same id, new address.
	clearToast(t, ctx)
	run(t, ctx, "edit the URL",
		chromedp.SetValue(`ol.urls li:first-child input`, hookURL),
		chromedp.Click(`//button[text()="Save"]`))
	poll.Until(t, 20*time.Second, "URL edited in place", func() bool {
		cfg, err := h.config.GetHubConfig(admin(), &hubhooksv1.GetHubConfigRequest{HubId: "acme"})
		return err == nil && len(cfg.GetCallbackUrls()) == 1 && cfg.GetCallbackUrls()[0].GetUrl() == hookURL
	})
	if cfg, _ := h.config.GetHubConfig(admin(), &hubhooksv1.GetHubConfigRequest{HubId: "acme"}); cfg.GetCallbackUrls()[0].GetId() != urlID {
		t.Fatalf("editing the URL changed its id from %s to %s", urlID, cfg.GetCallbackUrls()[0].GetId())
	}
	waitText(t, ctx, "#toast", "Callback URLs saved")

	// A refused URL shows the server's reason under its row.
	run(t, ctx, "add a refused URL", chromedp.Click(`//button[text()="Add a URL"]`), chromedp.SendKeys(`ol.urls li:last-child input`, "http://10.1.2.3/hooks"), chromedp.Click(`//button[text()="Save"]`))
	waitText(t, ctx, `ol.urls li:last-child p.error`, "10.1.2.3")

	// Toggle the triggers on.
	run(t, ctx, "toggle on", chromedp.Click(`#enabled`))
	poll.Until(t, 20*time.Second, "triggers on", func() bool {
		cfg, err := h.config.GetHubConfig(admin(), &hubhooksv1.GetHubConfigRequest{HubId: "acme"})
		return err == nil && cfg.GetEventsEnabled()
	})
	shot(t, ctx, dir, "events.png")

	// The Test dialog shows the request before sending, then the response.
	run(t, ctx, "open the Test dialog", chromedp.Click(`//tr[td[1][text()="API Created"]]//button`))
	waitText(t, ctx, "dialog[open] .exchange", "POST "+hookURL)
	waitText(t, ctx, "dialog[open] .exchange", "whsec_********")
	if n := received.Load(); n != 0 {
		t.Fatalf("the receiver got %d requests before Test event was clicked", n)
	}
	shot(t, ctx, dir, "test-dialog.png")
	run(t, ctx, "send the test event", chromedp.Click(`//dialog[@open]//button[text()="Test event"]`))
	waitText(t, ctx, "dialog[open]", "HTTP 200")
	waitText(t, ctx, "dialog[open]", `"received": true`)
	shot(t, ctx, dir, "test-dialog-response.png")
	run(t, ctx, "close the dialog", chromedp.Click(`//dialog[@open]//button[text()="Close"]`))

	// Generate new, behind a confirmation that names the grace period.
	before, _ := h.config.GetHubConfig(admin(), &hubhooksv1.GetHubConfigRequest{HubId: "acme"})
	run(t, ctx, "generate new", chromedp.Click(`//button[text()="Generate new" and not(@value)]`))
	waitText(t, ctx, "dialog[open]", "grace period")
	run(t, ctx, "confirm", chromedp.Click(`//dialog[@open]//button[@value="ok"]`))
	poll.Until(t, 20*time.Second, "new secret", func() bool {
		cfg, err := h.config.GetHubConfig(admin(), &hubhooksv1.GetHubConfigRequest{HubId: "acme"})
		return err == nil && cfg.GetSecret() != before.GetSecret() && len(cfg.GetPreviousSecrets()) == 1
	})

	// Event logs: a domain event published on NATS appears live, as its
	// cascade, within 2 s.
	run(t, ctx, "open Event logs", chromedp.Click(`#tab-logs`))
	waitText(t, ctx, ".live", "Live")
	publishEvent(t, h, "evt-browser-1")
	published := time.Now()
	want := []string{"API.CREATED", "API.UPDATED", "API_VERSION.CREATED", "BILLINGPLAN.CREATED", "SUBSCRIPTION.CREATED"}
	for _, typ := range want {
		waitText(t, ctx, "table.logs tbody", typ)
	}
	if took := time.Since(published); took > 2*time.Second {
		t.Errorf("the cascade took %v to appear in the Event logs tab, want at most 2s", took)
	} else {
		t.Logf("the cascade of 5 deliveries appeared %v after the publish", took.Round(time.Millisecond))
	}
	rowsShown := eval[int](t, ctx, `document.querySelectorAll('table.logs tbody tr').length`)
	shot(t, ctx, dir, "event-logs.png")

	// Details: every attempt's request and response, the secret masked.
	run(t, ctx, "details", chromedp.Click(`//table[@class="logs"]//tr[td[2]/code[text()="BILLINGPLAN.CREATED"]]//button`))
	waitText(t, ctx, "dialog[open]", "Attempt 1")
	waitText(t, ctx, "dialog[open]", "whsec_********")
	waitText(t, ctx, "dialog[open]", "HTTP 200")
	detailsText := eval[string](t, ctx, `document.querySelector('dialog[open]').innerText`)
	cfg, _ := h.config.GetHubConfig(admin(), &hubhooksv1.GetHubConfigRequest{HubId: "acme"})
	if strings.Contains(detailsText, cfg.GetSecret()) {
		t.Fatal("Details shows the hub's secret")
	}
	shot(t, ctx, dir, "details.png")

	// Redeliver: a new delivery appears live.
	run(t, ctx, "redeliver", chromedp.Click(`//dialog[@open]//button[text()="Redeliver"]`))
	waitText(t, ctx, "#toast", "Redelivered as dlv_")
	poll.Until(t, 20*time.Second, "the redelivery listed", func() bool {
		n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`[...document.querySelectorAll('table.logs tbody tr')].filter(r => r.innerText.includes('BILLINGPLAN.CREATED')).length`))
		return n == 2
	})

	// Narrow screen.
	run(t, ctx, "390 px", chromedp.EmulateViewport(390, 844))
	shot(t, ctx, dir, "event-logs-390.png")
	run(t, ctx, "events at 390 px", chromedp.Click(`#tab-events`))
	waitText(t, ctx, "#panel", "List of events")
	shot(t, ctx, dir, "events-390.png")
	run(t, ctx, "1280 px", chromedp.EmulateViewport(1280, 900))

	// Another hub, by editing the URL or the API path: refused, nothing shown.
	eval[string](t, ctx, `location.hash = '#/hubs/other/events'`)
	waitText(t, ctx, "#panel", "acts on hub")
	panelText := eval[string](t, ctx, `document.querySelector('#panel').innerText`)
	if strings.Contains(panelText, "Enable event triggers") || strings.Contains(panelText, "whsec_") {
		t.Fatalf("another hub's page shows its configuration: %q", panelText)
	}
	status := eval[int](t, ctx, `fetch('/v1/hubs/other/config', {headers: {Authorization: 'Bearer ' + sessionStorage.getItem('hubhooks.token')}}).then(r => r.status)`, chromedp.EvalAwaitPromise)
	if status != http.StatusForbidden {
		t.Fatalf("another hub's API path answered %d, want 403", status)
	}

	// The admin token picks a hub from the list.
	run(t, ctx, "sign out", chromedp.Click(`#signout`), chromedp.WaitVisible(`input[name=token]`))
	run(t, ctx, "sign in as admin", chromedp.SendKeys(`input[name=token]`, adminToken), chromedp.Click(`form.signin button[type=submit]`))
	waitText(t, ctx, "main", "triggers on")
	shot(t, ctx, dir, "hubs.png")
	run(t, ctx, "open acme", chromedp.Click(`//ul[@class="hubs"]//a[text()="acme"]`))
	waitText(t, ctx, "#panel", "Enable event triggers")
	waitText(t, ctx, "#who", "Admin")

	// What the page weighs, and when it first rendered.
	var weight struct {
		Resources []struct {
			Name string  `json:"name"`
			Size float64 `json:"size"`
		} `json:"resources"`
	}
	raw := eval[string](t, ctx, `JSON.stringify({resources: performance.getEntriesByType('resource').filter(e => !e.name.includes('/v1/')).map(e => ({name: new URL(e.name).pathname, size: e.decodedBodySize}))})`)
	if err := json.Unmarshal([]byte(raw), &weight); err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, r := range weight.Resources {
		total += r.Size
	}
	t.Logf("console: first contentful paint %.0f ms; assets after the page: %d files, %.0f bytes (the HTML page not counted); %d rows shown", firstPaint, len(weight.Resources), total, rowsShown)
}

// publishEvent publishes an API.CREATED domain event on hubd's NATS the way
// a hub domain does.
func publishEvent(t *testing.T, h *testHubd, id string) {
	t.Helper()
	nc, err := nats.Connect(h.proc.PublisherURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg("API.CREATED")
	m.Header.Set("Content-Type", "application/json")
	m.Header.Set(jetstream.MsgIDHeader, id)
	m.Data = []byte(`{"id":"` + id + `","hubId":"acme","type":"API.CREATED","data":{"api":{"id":"api_1","name":"Weather"}}}`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatalf("publish: %v", err)
	}
}
