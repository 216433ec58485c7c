package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hubhooks/hubhooks/pkg/poll"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/internal/settings"
)

// screenshotDir is where the browser test saves its screenshots, every run:
// docs/console, which docs/console.md shows. A picture is rewritten only
// when it changes (samePicture), and the run-specific text in the page (the
// receiver's port, ids, times, durations, signatures) is made fixed for the
// picture (stabilize), so a run changes the pictures only where the console
// changed.
var screenshotDir = filepath.Join("..", "..", "docs", "console")

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
	page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.hash + ' | ' + document.body.innerText.slice(0, 1500)`))
	t.Fatalf("%s never showed %q; last text: %q; the page: %s", sel, want, got, page)
}

// clearToast hides and empties the toast, so that waiting for the next one
// cannot see an earlier one.
func clearToast(t *testing.T, ctx context.Context) {
	t.Helper()
	eval[bool](t, ctx, `(() => { const e = document.getElementById('toast'); e.classList.remove('show'); e.textContent = ''; return true })()`)
}

// shot saves a screenshot of the console as docs/console/name, its
// run-specific text made fixed for the picture only: on a narrow window
// the screen's worth from the top (a phone's view); on a wide one the whole
// page, or, with a dialog open, the whole dialog (the window made tall
// enough for it).
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	// A toast from an earlier step would cover the picture.
	clearToast(t, ctx)
	// Nor should the focus ring of the last control used, or the hover
	// look of what lies under the pointer.
	eval[bool](t, ctx, `(() => { if (document.activeElement) document.activeElement.blur(); return true })()`)
	run(t, ctx, "move the pointer away", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, 0, 0))
	width, height := eval[int64](t, ctx, `window.innerWidth`), eval[int64](t, ctx, `window.innerHeight`)
	dialog := eval[int64](t, ctx, `(() => { const d = document.querySelector('dialog[open]'); return d ? d.scrollHeight : 0 })()`)
	capture := chromedp.FullScreenshot(100)
	switch {
	case width < 600:
		capture = chromedp.CaptureScreenshot()
		if dialog == 0 {
			eval[bool](t, ctx, `(() => { window.scrollTo(0, 0); return true })()`)
		}
	case dialog > 0:
		// A dialog may be 92% of the window's height. Without the page's
		// scroll bar, the dialog's box is where Chromium paints it; at the
		// top of the window (not centred), at a whole pixel every run.
		eval[bool](t, ctx, `(() => { document.documentElement.style.overflow = 'hidden'; document.querySelector('dialog[open]').style.margin = '20px auto auto'; return true })()`)
		run(t, ctx, "a window for the whole dialog", chromedp.EmulateViewport(width, max(height, dialog*100/92+40)))
		defer func() {
			run(t, ctx, "the window as it was", chromedp.EmulateViewport(width, height))
			eval[bool](t, ctx, `(() => { document.documentElement.style.overflow = ''; document.querySelector('dialog[open]').style.margin = ''; return true })()`)
		}()
		capture = chromedp.Screenshot(`dialog[open]`)
	}
	run(t, ctx, "settle", chromedp.Sleep(300*time.Millisecond))
	eval[bool](t, ctx, stabilize)
	pic, err := chromedp.Run(ctx, capture)
	eval[bool](t, ctx, `window.__unstabilize()`)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(screenshotDir, name)
	if old, err := os.ReadFile(path); err == nil && samePicture(old, pic) {
		return
	}
	if err := os.WriteFile(path, pic, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s changed", path)
}

// samePicture says whether two PNGs show the same picture: the same size
// and at most a few dozen pixels apart (Chromium's anti-aliasing of a
// control's edge is not always the same from run to run).
func samePicture(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	ia, err := png.Decode(bytes.NewReader(a))
	if err != nil {
		return false
	}
	ib, err := png.Decode(bytes.NewReader(b))
	if err != nil || ia.Bounds() != ib.Bounds() {
		return false
	}
	diff := 0
	r := ia.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if ia.At(x, y) != ib.At(x, y) {
				if diff++; diff > 64 {
					return false
				}
			}
		}
	}
	return true
}

// stabilize replaces, in the page's text and form values, what differs
// from run to run with fixed text of the same shape, remembering the
// originals (window.__unstabilize puts them back): the receiver's port,
// ids (the same id gets the same replacement), times, durations and
// signatures.
const stabilize = `(() => {
  const seen = new Map();
  let n = 0;
  const alnum = 'abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  const made = new Set();
  const fake = (id, prefix, len) => {
    if (made.has(id)) return id;
    if (!seen.has(id)) {
      let x = 2166136261 ^ (++n * 16777619), out = '';
      for (let i = 0; i < len; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; out += alnum[(x >>> 8) % alnum.length]; }
      seen.set(id, prefix + out);
      made.add(prefix + out);
    }
    return seen.get(id);
  };
  const rules = [
    [/127\.0\.0\.1:\d{2,5}/g, () => '127.0.0.1:9000'],
    [/\b(dlv_|msg_|evt_test_|url_|tok_)([A-Za-z0-9]{6,})/g, (m, p, r) => fake(m, p, r.length)],
    [/v1,[A-Za-z0-9+\/=]{20,}/g, (m) => fake(m, 'v1,', m.length - 3)],
    [/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})/g, (m, frac, zone) => '2026-12-06T14:50:00' + (frac ? '.000' : '') + zone],
    [/[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT/g, () => 'Sun, 06 Dec 2026 14:50:00 GMT'],
    [/[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d{2}:\d{2}( [AP]M)?/g, (m, ampm) => 'Dec 06, 2026, 02:50:00' + (ampm || '')],
    [/\b1[7-9]\d{8}\b/g, () => '1796568600'],
    [/in \d+ ms/g, () => 'in 3 ms'],
    [/\(\d+(\.\d+)?m?s\)/g, () => '(1s)'],
  ];
  const fix = (s) => rules.reduce((acc, [re, f]) => acc.replace(re, f), s);
  const undo = [];
  // An open dialog first: its ids are numbered the same whatever the
  // order of the rows behind it.
  const roots = [document.querySelector('dialog[open]'), document.body].filter(Boolean);
  for (const root of roots) {
    const walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node; (node = walk.nextNode());) {
      const v = fix(node.nodeValue);
      if (v !== node.nodeValue) { undo.push([node, 'nodeValue', node.nodeValue]); node.nodeValue = v; }
    }
    for (const el of root.querySelectorAll('input, textarea, option')) {
      const prop = el.tagName === 'OPTION' ? 'text' : 'value';
      const v = fix(el[prop]);
      if (v !== el[prop]) { undo.push([el, prop, el[prop]]); el[prop] = v; }
    }
  }
  window.__unstabilize = () => { for (const [o, k, v] of undo.reverse()) o[k] = v; return true; };
  return true;
})()`

// assertLabelled fails unless every control of the page (buttons, inputs,
// selects, switches, links) has an accessible name, as Chromium computes
// it for assistive technology, with every <details> open.
func assertLabelled(t *testing.T, ctx context.Context, where string) {
	t.Helper()
	eval[bool](t, ctx, `(() => { window.__closed = [...document.querySelectorAll('details:not([open])')]; window.__closed.forEach((d) => d.open = true); return true })()`)
	defer eval[bool](t, ctx, `(() => { window.__closed.forEach((d) => d.open = false); return true })()`)
	tree, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (*accessibility.GetFullAXTreeResult, error) {
		r, err := cdp.Call(ctx, tg, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
		return &r, err
	})
	if err != nil {
		t.Fatalf("%s: accessibility tree: %v", where, err)
	}
	controls := map[string]bool{"button": true, "textbox": true, "searchbox": true, "checkbox": true, "switch": true, "radio": true,
		"combobox": true, "listbox": true, "spinbutton": true, "slider": true, "link": true, "tab": true, "DisclosureTriangle": true}
	checked := 0
	for _, n := range tree.Nodes {
		if n.Ignored || n.Role == nil {
			continue
		}
		var role, name string
		_ = json.Unmarshal(n.Role.Value, &role)
		if !controls[role] {
			continue
		}
		if n.Name != nil {
			_ = json.Unmarshal(n.Name.Value, &name)
		}
		checked++
		if strings.TrimSpace(name) == "" {
			t.Errorf("%s: a %s has no accessible name (DOM node %d)", where, role, n.BackendDOMNodeID)
		}
	}
	if checked == 0 {
		t.Fatalf("%s: no control found in the accessibility tree", where)
	}
}

// assertFits fails when the page scrolls sideways at the current width.
func assertFits(t *testing.T, ctx context.Context, where string) {
	t.Helper()
	got := eval[string](t, ctx, `document.documentElement.scrollWidth + ' > ' + document.documentElement.clientWidth`)
	var sw, cw int
	fmt.Sscanf(got, "%d > %d", &sw, &cw)
	if sw > cw {
		t.Errorf("%s scrolls sideways: content %d px wide in a %d px window", where, sw, cw)
	}
}

// screenshots are the pictures TestConsoleInBrowser takes, all shown in
// docs/console.md.
var screenshots = []string{"signin.png", "hubs.png", "events.png", "test-dialog.png", "test-dialog-response.png", "event-logs.png", "details.png", "event-logs-390.png", "events-390.png", "test-dialog-390.png"}

// docs/console.md shows every screenshot the browser test takes, and each is
// in docs/console.
func TestConsoleDocShowsEveryScreenshot(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "console.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range screenshots {
		if !strings.Contains(string(doc), "console/"+name) {
			t.Errorf("docs/console.md does not show console/%s", name)
		}
		if _, err := os.Stat(filepath.Join(screenshotDir, name)); err != nil {
			t.Errorf("docs/console/%s: %v (TestConsoleInBrowser takes it)", name, err)
		}
	}
}

// hookReceiver is the hub's receiving end: it records each webhook and
// answers 200, or 500 under /failing.
type hookReceiver struct {
	*httptest.Server
	mu  sync.Mutex
	got []hook
}

// hook is one webhook received.
type hook struct{ path, typ, domainEvent string }

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var b struct {
			Type        string `json:"type"`
			DomainEvent struct {
				ID string `json:"id"`
			} `json:"domain_event"`
		}
		body, _ := io.ReadAll(req.Body)
		_ = json.Unmarshal(body, &b)
		r.mu.Lock()
		r.got = append(r.got, hook{req.URL.Path, b.Type, b.DomainEvent.ID})
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if req.URL.Path == "/failing" {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"error":"down for maintenance"}`))
			return
		}
		_, _ = w.Write([]byte(`{"received":true}`))
	}))
	t.Cleanup(r.Close)
	return r
}

// hooks returns the webhooks received that match.
func (r *hookReceiver) hooks(match func(hook) bool) []hook {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []hook
	for _, h := range r.got {
		if match(h) {
			out = append(out, h)
		}
	}
	return out
}

// urlOf returns acme's stored callback URL whose address is u (nil if
// none).
func urlOf(t *testing.T, h *testHubd, u string) *hubhooksv1.CallbackUrl {
	t.Helper()
	cfg, err := h.config.GetHubConfig(admin(), &hubhooksv1.GetHubConfigRequest{HubId: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.GetCallbackUrls() {
		if c.GetUrl() == u {
			return c
		}
	}
	return nil
}

// TestConsoleInBrowser drives the console in a real headless Chromium
// against a real hubd, Redis and NATS: every step a hub admin takes.
func TestConsoleInBrowser(t *testing.T) {
	// A URL that fails every attempt for a second is disabled automatically.
	h := startHubd(t, func(s *settings.Settings) { s.AutoDisableAfter = time.Second })
	rcv := newHookReceiver(t)
	hookURL, secondURL, failingURL := rcv.URL+"/hooks", rcv.URL+"/second", rcv.URL+"/failing"
	token := h.hubToken(t, "acme")
	h.hubToken(t, "other")
	ctx := browser(t)

	// Sign in with the hub token.
	run(t, ctx, "open the console", chromedp.Navigate(h.base+"/"), chromedp.WaitVisible(`input[name=token]`))
	firstPaint := eval[float64](t, ctx, `(performance.getEntriesByName('first-contentful-paint')[0] || {startTime: -1}).startTime`)
	shot(t, ctx, "signin.png")
	assertLabelled(t, ctx, "sign in")
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
	run(t, ctx, "add a URL", chromedp.Click(`//button[text()="Add a URL"]`), chromedp.SendKeys(`ol.urls li:last-child input[type=url]`, rcv.URL+"/old"), chromedp.Click(`//button[text()="Save"]`))
	var urlID string
	poll.Until(t, 20*time.Second, "URL stored", func() bool {
		u := urlOf(t, h, rcv.URL+"/old")
		if u == nil {
			return false
		}
		urlID = u.GetId()
		return true
	})
	waitText(t, ctx, "#toast", "Callback URLs saved")

	// Edit the URL: same id, new address.
	clearToast(t, ctx)
	run(t, ctx, "edit the URL",
		chromedp.SetValue(`ol.urls li:first-child input[type=url]`, hookURL),
		chromedp.Click(`//button[text()="Save"]`))
	poll.Until(t, 20*time.Second, "URL edited in place", func() bool { return urlOf(t, h, hookURL) != nil })
	if got := urlOf(t, h, hookURL).GetId(); got != urlID {
		t.Fatalf("editing the URL changed its id from %s to %s", urlID, got)
	}
	waitText(t, ctx, "#toast", "Callback URLs saved")

	// A refused URL shows the server's reason under its row; Remove drops
	// the row, which was never stored.
	run(t, ctx, "add a refused URL", chromedp.Click(`//button[text()="Add a URL"]`), chromedp.SendKeys(`ol.urls li:last-child input[type=url]`, "http://10.1.2.3/hooks"), chromedp.Click(`//button[text()="Save"]`))
	waitText(t, ctx, `ol.urls li:last-child p.error`, "10.1.2.3")
	run(t, ctx, "remove the refused row", chromedp.Click(`ol.urls li:last-child button.secondary`))

	// Two more URLs, one with a description given before its first Save.
	clearToast(t, ctx)
	run(t, ctx, "add two URLs",
		chromedp.Click(`//button[text()="Add a URL"]`), chromedp.SendKeys(`ol.urls li:last-child input[type=url]`, secondURL),
		chromedp.Click(`ol.urls li:last-child details.urlsettings summary`), chromedp.SendKeys(`ol.urls li:last-child details.urlsettings input[type=text]`, "billing sync"),
		chromedp.Click(`//button[text()="Add a URL"]`), chromedp.SendKeys(`ol.urls li:last-child input[type=url]`, failingURL),
		chromedp.Click(`//button[text()="Save"]`))
	waitText(t, ctx, "#toast", "Callback URLs saved")
	if u := urlOf(t, h, secondURL); u == nil || u.GetDescription() != "billing sync" || len(u.GetEventTypes()) != 0 || u.GetDisabled() {
		t.Fatalf("the second URL is stored as %v; want enabled, every type, described", u)
	}

	// Toggle the triggers on.
	run(t, ctx, "toggle on", chromedp.Click(`#enabled`))
	poll.Until(t, 20*time.Second, "triggers on", func() bool {
		cfg, err := h.config.GetHubConfig(admin(), &hubhooksv1.GetHubConfigRequest{HubId: "acme"})
		return err == nil && cfg.GetEventsEnabled()
	})
	assertLabelled(t, ctx, "Events tab")
	assertFits(t, ctx, "Events tab at 1280 px")

	// A row's Test event: the Request area shows each request of the row's
	// cascade before anything is sent; Test event sends them all and shows
	// each response.
	run(t, ctx, "open the Test dialog", chromedp.Click(`//tr[td[1][text()="API Created"]]//button`))
	waitText(t, ctx, "dialog[open] .exchange", "POST "+hookURL)
	waitText(t, ctx, "dialog[open] .exchange", "whsec_********")
	cascade := []string{"API.CREATED", "API.UPDATED", "API_VERSION.CREATED", "BILLINGPLAN.CREATED", "SUBSCRIPTION.CREATED", "TARGET_GROUP.CREATED"}
	if got := eval[string](t, ctx, `[...document.querySelectorAll('dialog[open] .exchange.request details summary code')].map((c) => c.textContent).join(' ')`); got != strings.Join(cascade, " ") {
		t.Fatalf("the Request area shows %q; want the requests of %v", got, cascade)
	}
	if n := len(rcv.hooks(func(hook) bool { return true })); n != 0 {
		t.Fatalf("the receiver got %d requests before Test event was clicked", n)
	}
	assertLabelled(t, ctx, "Test dialog")
	assertFits(t, ctx, "Test dialog at 1280 px")
	shot(t, ctx, "test-dialog.png")
	run(t, ctx, "send the test event", chromedp.Click(`//dialog[@open]//button[text()="Test event"]`))
	waitText(t, ctx, "dialog[open]", "6 sent, 6 answered 2xx")
	waitText(t, ctx, "dialog[open]", `"received": true`)
	if got := eval[int](t, ctx, `[...document.querySelectorAll('dialog[open] .exchange.response details summary')].filter((s) => s.innerText.includes('HTTP 200')).length`); got != len(cascade) {
		t.Fatalf("the Response area shows %d answers HTTP 200; want %d", got, len(cascade))
	}
	var sent []string
	for _, k := range rcv.hooks(func(k hook) bool { return k.path == "/hooks" }) {
		sent = append(sent, k.typ)
	}
	if strings.Join(sent, " ") != strings.Join(cascade, " ") {
		t.Fatalf("the receiver got %v; want the cascade %v", sent, cascade)
	}
	shot(t, ctx, "test-dialog-response.png")

	// One webhook event of the row, with data of one's own: the preview
	// follows the edit, the send carries it.
	eval[bool](t, ctx, `(() => { const s = document.querySelector('dialog[open] select[name=what]'); s.value = 'BILLINGPLAN.CREATED'; s.dispatchEvent(new Event('change')); return true })()`)
	waitText(t, ctx, "dialog[open] .exchange.request", `"type": "BILLINGPLAN.CREATED"`)
	eval[bool](t, ctx, `(() => { const a = document.querySelector('dialog[open] textarea'); a.value = '{"id": "plan_mine"}'; a.dispatchEvent(new Event('input')); return true })()`)
	waitText(t, ctx, "dialog[open] .exchange.request", `"id": "plan_mine"`)
	run(t, ctx, "send one", chromedp.Click(`//dialog[@open]//button[text()="Test event"]`))
	waitText(t, ctx, "dialog[open] .exchange.response", "HTTP 200")
	if n := len(rcv.hooks(func(k hook) bool { return k.typ == "BILLINGPLAN.CREATED" })); n != 2 {
		t.Fatalf("the receiver got %d BILLINGPLAN.CREATED test events; want 2", n)
	}
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

	// Event logs, reached by keyboard (arrow keys move between the tabs):
	// a domain event published on NATS appears live, as its cascade, within
	// 2 s.
	run(t, ctx, "open Event logs by keyboard", chromedp.Focus(`#tab-events`), chromedp.KeyEvent(kb.ArrowRight))
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
	// Every delivery of the event (5 webhook events to 3 URLs) listed and
	// final: /failing's are dead after their retry.
	poll.Until(t, 20*time.Second, "the deliveries listed and final", func() bool {
		st, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('table.logs tbody tr')].filter((r) => !r.querySelector('td[data-label="Webhook event"] .badge')).map((r) => r.querySelector('td[data-label=Status]').innerText)`))
		return len(st) == 15 && !slices.Contains(st, "pending") && !slices.Contains(st, "retrying")
	})
	rowsShown := eval[int](t, ctx, `document.querySelectorAll('table.logs tbody tr').length`)
	assertLabelled(t, ctx, "Event logs tab")
	assertFits(t, ctx, "Event logs tab at 1280 px")
	shot(t, ctx, "event-logs.png")

	// Details: every attempt's request and response, the secret masked.
	run(t, ctx, "details", chromedp.Click(fmt.Sprintf(`//table[@class="logs"]//tr[td[2]/code[text()="BILLINGPLAN.CREATED"] and td[3][text()=%q] and not(td[2]/span)]//button`, hookURL)))
	waitText(t, ctx, "dialog[open]", "Attempt 1")
	waitText(t, ctx, "dialog[open]", "whsec_********")
	waitText(t, ctx, "dialog[open]", "HTTP 200")
	detailsText := eval[string](t, ctx, `document.querySelector('dialog[open]').innerText`)
	cfg, _ := h.config.GetHubConfig(admin(), &hubhooksv1.GetHubConfigRequest{HubId: "acme"})
	if strings.Contains(detailsText, cfg.GetSecret()) {
		t.Fatal("Details shows the hub's secret")
	}
	assertLabelled(t, ctx, "Details")
	shot(t, ctx, "details.png")

	// Redeliver: a new delivery appears live.
	run(t, ctx, "redeliver", chromedp.Click(`//dialog[@open]//button[text()="Redeliver"]`))
	waitText(t, ctx, "#toast", "Redelivered as dlv_")
	poll.Until(t, 20*time.Second, "the redelivery listed", func() bool {
		n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`[...document.querySelectorAll('table.logs tbody tr')].filter((r) => !r.querySelector('td[data-label="Webhook event"] .badge') && r.innerText.includes('BILLINGPLAN.CREATED') && r.innerText.includes(%q)).length`, hookURL)))
		return n == 2
	})

	// The failing URL was disabled automatically: the Events tab says why,
	// and Re-enable is one click.
	poll.Until(t, 20*time.Second, "the failing URL disabled", func() bool { return urlOf(t, h, failingURL).GetDisabled() })
	run(t, ctx, "back to Events", chromedp.Click(`#tab-events`))
	waitText(t, ctx, "ol.urls li:nth-child(3)", "failed every attempt since")
	assertLabelled(t, ctx, "Events tab with a disabled URL")
	shot(t, ctx, "events.png")
	clearToast(t, ctx)
	run(t, ctx, "re-enable", chromedp.Click(`ol.urls li:nth-child(3) .notice button`))
	waitText(t, ctx, "#toast", "Enabled "+failingURL)
	if u := urlOf(t, h, failingURL); u.GetDisabled() || u.GetDisabledReason() != "" {
		t.Fatalf("after Re-enable the URL is %v", u)
	}

	// Per-URL controls take effect: the switches (by keyboard: Space) turn
	// /second and /failing off; /hooks takes two webhook events only.
	for i, u := range []string{secondURL, failingURL} {
		sel := fmt.Sprintf(`ol.urls li:nth-child(%d) input[role=switch]`, i+2)
		clearToast(t, ctx)
		run(t, ctx, "switch off "+u, chromedp.Focus(sel), chromedp.KeyEvent(" "))
		waitText(t, ctx, "#toast", "Disabled "+u)
		if !urlOf(t, h, u).GetDisabled() {
			t.Fatalf("the switch said %s is disabled; it is not", u)
		}
	}
	waitText(t, ctx, "ol.urls li:nth-child(2) .notice", "disabled")
	clearToast(t, ctx)
	run(t, ctx, "filter /hooks",
		chromedp.Click(`ol.urls li:first-child details.urlsettings summary`),
		chromedp.Click(`ol.urls li:first-child input[type=radio][value=some]`),
		chromedp.Click(`ol.urls li:first-child input[type=checkbox][value="API.CREATED"]`),
		chromedp.Click(`ol.urls li:first-child input[type=checkbox][value="BILLINGPLAN.CREATED"]`),
		chromedp.Click(`//button[text()="Save"]`))
	waitText(t, ctx, "#toast", "Callback URLs saved")
	if u := urlOf(t, h, hookURL); strings.Join(u.GetEventTypes(), " ") != "API.CREATED BILLINGPLAN.CREATED" || u.GetId() != urlID {
		t.Fatalf("/hooks is stored as %v; want API.CREATED and BILLINGPLAN.CREATED only, id %s", u, urlID)
	}
	waitText(t, ctx, "ol.urls li:first-child summary", "2 of")
	publishEvent(t, h, "evt-browser-2")
	ofEvent2 := func(k hook) bool { return k.domainEvent == "evt-browser-2" }
	poll.Until(t, 20*time.Second, "the filtered webhooks", func() bool { return len(rcv.hooks(ofEvent2)) >= 2 })
	// Anything else would have arrived beside the two by now.
	time.Sleep(1500 * time.Millisecond)
	var got2 []string
	for _, k := range rcv.hooks(ofEvent2) {
		got2 = append(got2, k.path+" "+k.typ)
	}
	slices.Sort(got2)
	if strings.Join(got2, ", ") != "/hooks API.CREATED, /hooks BILLINGPLAN.CREATED" {
		t.Fatalf("after the filter and the switches, evt-browser-2 reached %v; want /hooks API.CREATED and BILLINGPLAN.CREATED only", got2)
	}

	// A change made elsewhere shows at once, without reloading.
	desc := "billing sync, paused"
	if _, err := h.config.ConfigureCallbackUrl(admin(), &hubhooksv1.ConfigureCallbackUrlRequest{HubId: "acme", Id: urlOf(t, h, secondURL).GetId(), Description: &desc}); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "ol.urls li:nth-child(2) summary", desc)

	// Narrow screen: no sideways scrolling.
	run(t, ctx, "390 px", chromedp.EmulateViewport(390, 844))
	assertFits(t, ctx, "Events tab at 390 px")
	shot(t, ctx, "events-390.png")
	run(t, ctx, "test dialog at 390 px", chromedp.Click(`//tr[td[1][text()="User Created"]]//button`))
	waitText(t, ctx, "dialog[open] .exchange.request", "POST "+hookURL)
	assertFits(t, ctx, "Test dialog at 390 px")
	shot(t, ctx, "test-dialog-390.png")
	run(t, ctx, "close the dialog", chromedp.Click(`//dialog[@open]//button[text()="Close"]`))
	run(t, ctx, "event logs at 390 px", chromedp.Click(`#tab-logs`))
	waitText(t, ctx, ".live", "Live")
	waitText(t, ctx, "table.logs tbody", "BILLINGPLAN.CREATED")
	assertFits(t, ctx, "Event logs tab at 390 px")
	shot(t, ctx, "event-logs-390.png")
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
	// Signing out draws the sign-in form once: drawn again, it would lose
	// what was typed into it meanwhile.
	eval[bool](t, ctx, `window.signinDrawn = 0; new MutationObserver((ms) => ms.forEach((m) => m.addedNodes.forEach((n) => {
		if (n.matches && n.matches('form.signin')) window.signinDrawn++;
	}))).observe(document.getElementById('app'), {childList: true}); true`)
	run(t, ctx, "sign out", chromedp.Click(`#signout`), chromedp.WaitVisible(`input[name=token]`))
	time.Sleep(300 * time.Millisecond)
	if n := eval[int](t, ctx, `window.signinDrawn`); n != 1 {
		t.Fatalf("signing out drew the sign-in form %d times, want once", n)
	}
	run(t, ctx, "sign in as admin", chromedp.SendKeys(`input[name=token]`, adminToken), chromedp.Click(`form.signin button[type=submit]`))
	waitText(t, ctx, "main", "triggers on")
	assertLabelled(t, ctx, "Hubs")
	shot(t, ctx, "hubs.png")
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
