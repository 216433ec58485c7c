package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/proto/openapi"
	"github.com/hubhooks/hubhooks/services/gateway"
	"github.com/hubhooks/hubhooks/services/logger/logstore"
)

// Every RPC of every service of hubhooks.v1 has an HTTP mapping (an
// operation of the generated OpenAPI document): an RPC added without a rule
// in proto/hubhooks/v1/http.yaml fails here.
func TestEveryRPCHasHTTPMapping(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openapi.JSON, &doc); err != nil {
		t.Fatalf("OpenAPI document: %v", err)
	}
	ops := map[string]bool{}
	for _, methods := range doc.Paths {
		for _, op := range methods {
			ops[op.OperationID] = true
		}
	}
	services := 0
	protoregistry.GlobalFiles.RangeFilesByPackage("hubhooks.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			services++
			for j := range sd.Methods().Len() {
				m := sd.Methods().Get(j)
				if !ops[string(sd.Name())+"_"+string(m.Name())] {
					t.Errorf("%s.%s has no HTTP mapping: add a rule to proto/hubhooks/v1/http.yaml and run make proto", sd.Name(), m.Name())
				}
			}
		}
		return true
	})
	if services < 3 {
		t.Fatalf("found %d services in hubhooks.v1, want ConfigService, EventLogService, OperationsService at least", services)
	}
}

func TestOpenAPIAndConsoleServed(t *testing.T) {
	h := startHubd(t)
	r := h.call(t, http.MethodGet, "/openapi.json", "", nil)
	if r.status != http.StatusOK || string(r.body) != string(openapi.JSON) {
		t.Fatalf("/openapi.json: %d, %d bytes; want 200 and the generated document", r.status, len(r.body))
	}
	for _, path := range []string{"/", "/hubs/acme/event-logs"} {
		r = h.call(t, http.MethodGet, path, "", nil)
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET %s: %d %s, want the console's HTML", path, r.status, r.header.Get("Content-Type"))
		}
		if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
			t.Fatalf("GET %s: Content-Security-Policy %q", path, csp)
		}
	}
	if r = h.call(t, http.MethodGet, "/nothing.js", "", nil); r.status != http.StatusNotFound {
		t.Fatalf("GET /nothing.js: %d, want 404", r.status)
	}
}

// Authentication and tenant isolation: the rules of the gRPC API, through
// HTTP.
func TestHTTPAuthAndTenants(t *testing.T) {
	h := startHubd(t)
	tokA := h.hubToken(t, "hub-a")
	for _, hub := range []string{"hub-a", "hub-b"} {
		if _, err := h.config.SetEventsEnabled(admin(), &hubhooksv1.SetEventsEnabledRequest{HubId: hub, Enabled: false}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, method, path, token string
		body                      string
		want                      int
	}{
		{"no token", "GET", "/v1/hubs/hub-a/config", "", "", 401},
		{"unknown token", "GET", "/v1/hubs/hub-a/config", "hht_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "", 401},
		{"admin", "GET", "/v1/hubs/hub-b/config", adminToken, "", 200},
		{"hub token, own hub", "GET", "/v1/hubs/hub-a/config", tokA, "", 200},
		{"hub token, other hub", "GET", "/v1/hubs/hub-b/config", tokA, "", 403},
		{"hub token, other hub's log", "GET", "/v1/hubs/hub-b/event-logs", tokA, "", 403},
		{"hub token, other hub's entry", "GET", "/v1/hubs/hub-b/event-logs/dlv_1", tokA, "", 403},
		{"hub token, other hub in body ignored for path", "POST", "/v1/hubs/hub-b/callback-urls", tokA, `{"hub_id":"hub-a","url":"http://127.0.0.1:9/x"}`, 403},
		{"hub token, all hubs", "GET", "/v1/hubs", tokA, "", 403},
		{"hub token, watch all", "GET", "/v1/configs:watch?all=true", tokA, "", 403},
		{"hub token, rules", "GET", "/v1/event-types", tokA, "", 200},
		{"admin, hubs", "GET", "/v1/hubs", adminToken, "", 200},
		{"admin, dead letters", "GET", "/v1/dead-letters?kind=events&since=2026-01-01T00:00:00Z&page_size=10", adminToken, "", 200},
		{"hub token, its hub's dead letters", "GET", "/v1/dead-letters?hub_id=hub-a", tokA, "", 403},
	}
	for _, tt := range tests {
		var body []byte
		if tt.body != "" {
			body = []byte(tt.body)
		}
		r := h.call(t, tt.method, tt.path, tt.token, body)
		if r.status != tt.want {
			t.Errorf("%s: %s %s = %d %s, want %d", tt.name, tt.method, tt.path, r.status, r.body, tt.want)
			continue
		}
		if tt.want != 200 {
			body := r.json(t)
			if e, ok := body["error"].(map[string]any); ok {
				body = e // a stream's error
			}
			if msg, _ := body["message"].(string); msg == "" {
				t.Errorf("%s: error body %s has no message", tt.name, r.body)
			}
		}
	}
	// A refused write changed nothing.
	cfg, err := h.config.GetHubConfig(admin(), &hubhooksv1.GetHubConfigRequest{HubId: "hub-b"})
	if err != nil || len(cfg.GetCallbackUrls()) != 0 {
		t.Fatalf("hub-b after a refused write: %v, %v", cfg, err)
	}

	who := h.call(t, "GET", "/v1/whoami", tokA, nil).json(t)
	if who["hub_id"] != "hub-a" || who["admin"] != false {
		t.Fatalf("whoami with hub-a's token = %v", who)
	}
	who = h.call(t, "GET", "/v1/whoami", adminToken, nil).json(t)
	if who["admin"] != true {
		t.Fatalf("whoami with the admin token = %v", who)
	}
	hubs := h.call(t, "GET", "/v1/hubs?prefix=hub-", adminToken, nil).json(t)["hubs"].([]any)
	if len(hubs) != 2 || hubs[0].(map[string]any)["hub_id"] != "hub-a" {
		t.Fatalf("ListHubs = %v, want hub-a and hub-b", hubs)
	}
}

// Validation errors: gRPC codes become HTTP statuses with a JSON body that
// says what was wrong.
func TestHTTPErrors(t *testing.T) {
	h := startHubd(t)
	big := `{"url":"http://127.0.0.1:9/` + strings.Repeat("a", 5<<20) + `"}`
	tests := []struct {
		name, method, path, body string
		want                     int
		msg                      string
	}{
		{"unknown field", "POST", "/v1/hubs/acme/callback-urls", `{"url":"http://127.0.0.1:9/a","colour":"red"}`, 400, "colour"},
		{"malformed JSON", "POST", "/v1/hubs/acme/callback-urls", `{"url":`, 400, ""},
		{"wrong type", "PUT", "/v1/hubs/acme/events-enabled", `{"enabled":"yes"}`, 400, "enabled"},
		{"oversized body", "POST", "/v1/hubs/acme/callback-urls", big, 400, "larger than"},
		{"bad hub id", "GET", "/v1/hubs/no%20spaces/config", "", 400, "hub_id"},
		{"bad status filter", "GET", "/v1/hubs/acme/event-logs?status=lost", "", 400, "status"},
		{"bad page token", "GET", "/v1/hubs/acme/event-logs?page_token=xyz", "", 400, "page_token"},
		{"not a URL", "POST", "/v1/hubs/acme/callback-urls", `{"url":"ftp://example.com"}`, 400, ""},
		{"guard refuses", "POST", "/v1/hubs/acme/callback-urls", `{"url":"http://10.1.2.3/hook"}`, 400, ""},
		{"no such entry", "GET", "/v1/hubs/acme/event-logs/dlv_nope", "", 404, "not found"},
		{"no such URL", "DELETE", "/v1/hubs/acme/callback-urls/url_nope", "", 404, ""},
		{"no such path", "GET", "/v1/nothing", "", 404, ""},
		{"operations reached", "POST", "/v1/hubs/acme/domain-events:explain", `{}`, 400, "domain_event"},
		{"bad dead-letter kind", "GET", "/v1/dead-letters?kind=deliveries", "", 400, "kind"},
		{"wrong method", "PATCH", "/v1/hubs/acme/config", "", 405, ""},
	}
	for _, tt := range tests {
		var body []byte
		if tt.body != "" {
			body = []byte(tt.body)
		}
		r := h.call(t, tt.method, tt.path, adminToken, body)
		if r.status != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, r.status, truncate(r.body), tt.want)
			continue
		}
		msg, _ := r.json(t)["message"].(string)
		if msg == "" || !strings.Contains(msg, tt.msg) {
			t.Errorf("%s: message %q, want one that mentions %q", tt.name, msg, tt.msg)
		}
	}

	// Five URLs, then the sixth is refused with the reason, and a duplicate.
	for i := range 5 {
		if r := h.call(t, "POST", "/v1/hubs/acme/callback-urls", adminToken, fmt.Appendf(nil, `{"url":"http://127.0.0.1:9/%d"}`, i)); r.status != 200 {
			t.Fatalf("URL %d: %d %s", i, r.status, r.body)
		}
	}
	r := h.call(t, "POST", "/v1/hubs/acme/callback-urls", adminToken, []byte(`{"url":"http://127.0.0.1:9/6"}`))
	if msg, _ := r.json(t)["message"].(string); r.status != 400 || !strings.Contains(msg, "5") {
		t.Fatalf("6th URL: %d %s, want 400 naming the limit", r.status, r.body)
	}
	r = h.call(t, "POST", "/v1/hubs/acme/callback-urls", adminToken, []byte(`{"url":"http://127.0.0.1:9/0"}`))
	if r.status != 409 {
		t.Fatalf("duplicate URL: %d %s, want 409", r.status, r.body)
	}
	cfg := h.call(t, "GET", "/v1/hubs/acme/config", adminToken, nil).json(t)
	if urls := cfg["callback_urls"].([]any); len(urls) != 5 {
		t.Fatalf("after the refusals the hub has %d URLs, want 5", len(urls))
	}
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// writeEntries stores n succeeded entries of hub directly in hubd's event
// log, a second apart, newest last.
func (h *testHubd) writeEntries(t *testing.T, hub string, n int) []string {
	t.Helper()
	store, err := logstore.New(h.rdb, logstore.Options{Prefix: h.prefix})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Duration(n) * time.Second)
	var recs []*deliveryv1.AttemptRecorded
	var ids []string
	for i := range n {
		id := fmt.Sprintf("dlv_page_%04d", i)
		ids = append(ids, id)
		created := start.Add(time.Duration(i) * time.Second)
		job := &deliveryv1.DeliveryJob{
			DeliveryId: id, HubId: hub, WebhookEventId: "msg_" + id, EventType: "API.CREATED",
			UrlId: "url_1", Url: "http://127.0.0.1:9/hook", Body: []byte(`{}`), CreatedAt: timestamppb.New(created),
			DomainEventId: "evt_" + id, DomainEventType: "API.CREATED", Attempt: 1,
		}
		recs = append(recs, &deliveryv1.AttemptRecorded{
			Job: job, Attempt: 1, Status: hubhooksv1.StatusSucceeded, StartedAt: timestamppb.New(created),
			Request:  &hubhooksv1.HttpRequest{Url: job.Url, Method: "POST", Body: "{}"},
			Response: &hubhooksv1.HttpResponse{StatusCode: 200, DurationMs: 3},
		})
	}
	if _, err := store.Write(context.Background(), recs); err != nil {
		t.Fatalf("write entries: %v", err)
	}
	return ids
}

// Paging through the log over HTTP: every entry once, newest first.
func TestHTTPPaging(t *testing.T) {
	h := startHubd(t)
	ids := h.writeEntries(t, "acme", 120)
	tok := h.hubToken(t, "acme")
	var got []string
	pageToken, pages := "", 0
	for {
		r := h.call(t, "GET", "/v1/hubs/acme/event-logs?page_size=50&page_token="+url.QueryEscape(pageToken), tok, nil)
		if r.status != 200 {
			t.Fatalf("page %d: %d %s", pages, r.status, r.body)
		}
		var page struct {
			EventLogs []struct {
				ID string `json:"id"`
			} `json:"event_logs"`
			NextPageToken string `json:"next_page_token"`
		}
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		for _, l := range page.EventLogs {
			got = append(got, l.ID)
		}
		pages++
		if pageToken = page.NextPageToken; pageToken == "" {
			break
		}
	}
	if pages != 3 || len(got) != len(ids) {
		t.Fatalf("%d entries in %d pages, want %d in 3", len(got), pages, len(ids))
	}
	for i, id := range got {
		if want := ids[len(ids)-1-i]; id != want {
			t.Fatalf("entry %d = %s, want %s (newest first)", i, id, want)
		}
	}
	// A filter by URL and the hub's own token: the same entries.
	r := h.call(t, "GET", "/v1/hubs/acme/event-logs?page_size=500&status=succeeded&url="+url.QueryEscape("http://127.0.0.1:9/hook"), tok, nil)
	if n := len(r.json(t)["event_logs"].([]any)); n != 120 {
		t.Fatalf("filtered list: %d entries, want 120", n)
	}
}

// The tail over HTTP: newline-delimited JSON, first an empty message, then
// each change (here, a redelivery's new entry).
func TestHTTPTail(t *testing.T) {
	h := startHubd(t)
	ids := h.writeEntries(t, "acme", 1)
	tok := h.hubToken(t, "acme")
	tail := h.stream(t, "/v1/hubs/acme/event-logs:tail?event_type=API.CREATED", tok)
	if first := tail.next(t); first["result"] == nil || first["result"].(map[string]any)["event_log"] != nil {
		t.Fatalf("first tail message = %v, want a result without event_log", first)
	}
	r := h.call(t, "POST", "/v1/hubs/acme/event-logs/"+ids[0]+":redeliver", tok, []byte(`{}`))
	if r.status != 200 {
		t.Fatalf("redeliver: %d %s", r.status, r.body)
	}
	newID := r.json(t)["event_log"].(map[string]any)["id"].(string)
	for {
		m := tail.next(t)
		l, _ := m["result"].(map[string]any)["event_log"].(map[string]any)
		if l == nil {
			continue // heartbeat
		}
		if l["id"] != newID || l["redelivery_of"] != ids[0] {
			t.Fatalf("tail entry = %v, want the redelivery %s of %s", l, newID, ids[0])
		}
		return
	}
}

// With no admin token the API, like gRPC, serves loopback callers only.
func TestLoopbackOnlyRefusesOtherMachines(t *testing.T) {
	conn, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	gw, err := gateway.New(gateway.Config{LoopbackOnly: true, Log: slog.New(slog.DiscardHandler)}, conn, conn)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/v1/hubs/acme/config", nil)
	req.RemoteAddr = "10.0.0.5:4321"
	rec := httptest.NewRecorder()
	gw.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "loopback") {
		t.Fatalf("remote caller: %d %s, want 401 explaining the loopback rule", rec.Code, rec.Body)
	}
	// The console itself is static and served to anyone.
	req = httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "10.0.0.5:4321"
	rec = httptest.NewRecorder()
	gw.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("console for a remote caller: %d", rec.Code)
	}
}

func TestNewRefusesMissingDeps(t *testing.T) {
	if _, err := gateway.New(gateway.Config{}, nil, nil); err == nil || !strings.Contains(err.Error(), "Log") || !strings.Contains(err.Error(), "nil ConfigService") {
		t.Fatalf("New with nothing: %v, want every problem", err)
	}
}
