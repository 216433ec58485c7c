package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/urlguard"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

type received struct {
	header http.Header
	body   []byte
}

func newClient(t *testing.T, opts ...webhook.ClientOption) *webhook.Client {
	t.Helper()
	c, err := webhook.NewClient(opts...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

func TestClientSend(t *testing.T) {
	secret, older := webhook.NewSecret(), webhook.NewSecret()
	body := []byte(`{"id":"msg_1","type":"API.CREATED"}`)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })

	tests := []struct {
		name    string
		handler http.HandlerFunc
		opts    []webhook.ClientOption
		secrets []string
		check   func(t *testing.T, res webhook.Result, got *received)
	}{
		{
			name:    "2xx succeeds, signed, secret masked in the record",
			handler: func(w http.ResponseWriter, r *http.Request) { w.Header().Set("X-Reply", "ok"); w.WriteHeader(204) },
			secrets: []string{secret},
			check: func(t *testing.T, res webhook.Result, got *received) {
				if !res.Succeeded() || res.StatusCode != 204 || res.Err != nil {
					t.Fatalf("want success 204, got %d err=%v", res.StatusCode, res.Err)
				}
				if got.header.Get(webhook.HeaderSecret) != secret {
					t.Errorf("receiver got secret header %q, want the current secret", got.header.Get(webhook.HeaderSecret))
				}
				if v := res.Request.Headers[webhook.HeaderSecret]; v != webhook.MaskSecret {
					t.Errorf("recorded secret header %q, want %q", v, webhook.MaskSecret)
				}
				if strings.Contains(res.Request.String(), secret) {
					t.Error("recorded request contains the secret")
				}
				if err := webhook.Verify(secret, got.header, got.body, 5*time.Minute, time.Now()); err != nil {
					t.Errorf("Verify: %v", err)
				}
				if got.header.Get("Content-Type") != "application/json" {
					t.Errorf("Content-Type %q", got.header.Get("Content-Type"))
				}
				if ua := got.header.Get("User-Agent"); ua != "hubhooks/"+webhook.Version {
					t.Errorf("User-Agent %q", ua)
				}
				if got.header.Get(webhook.HeaderID) != "msg_1" {
					t.Errorf("webhook-id %q", got.header.Get(webhook.HeaderID))
				}
				if string(got.body) != string(body) || res.Request.Body != string(body) {
					t.Errorf("body sent %q recorded %q", got.body, res.Request.Body)
				}
				if res.Response.Headers["X-Reply"] != "ok" {
					t.Errorf("response headers %v", res.Response.Headers)
				}
				if res.Request.Method != http.MethodPost {
					t.Errorf("method %q", res.Request.Method)
				}
			},
		},
		{
			name: "binary answer and header bytes are recorded as valid UTF-8",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Bin", "caf\xe9")
				_, _ = w.Write([]byte("ok \xff\xfe caf\xc3"))
			},
			secrets: []string{secret},
			check: func(t *testing.T, res webhook.Result, got *received) {
				if res.Response.Body != "ok \uFFFD caf\uFFFD" || res.Response.Headers["X-Bin"] != "caf\uFFFD" {
					t.Errorf("body %q headers %v", res.Response.Body, res.Response.Headers)
				}
				if _, err := proto.Marshal(res.Response); err != nil {
					t.Errorf("response does not encode: %v", err)
				}
			},
		},
		{
			name:    "rotation: both signatures verify",
			handler: func(w http.ResponseWriter, r *http.Request) {},
			secrets: []string{secret, older},
			check: func(t *testing.T, res webhook.Result, got *received) {
				if !res.Succeeded() {
					t.Fatalf("want success, got %d %v", res.StatusCode, res.Err)
				}
				if n := len(strings.Fields(got.header.Get(webhook.HeaderSignature))); n != 2 {
					t.Errorf("want 2 signatures, got %d", n)
				}
				for _, s := range []string{secret, older} {
					if err := webhook.Verify(s, got.header, got.body, 5*time.Minute, time.Now()); err != nil {
						t.Errorf("Verify: %v", err)
					}
				}
				if got.header.Get(webhook.HeaderSecret) != secret {
					t.Error("secret header is not the current secret")
				}
			},
		},
		{
			name:    "3xx is a failure and is not followed",
			handler: func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) },
			secrets: []string{secret},
			check: func(t *testing.T, res webhook.Result, _ *received) {
				if res.Succeeded() || res.StatusCode != 302 || res.Err != nil {
					t.Fatalf("want failed 302 without error, got %d %v", res.StatusCode, res.Err)
				}
			},
		},
		{
			name:    "410 Gone",
			handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(410) },
			secrets: []string{secret},
			check: func(t *testing.T, res webhook.Result, _ *received) {
				if !res.Gone() || res.Succeeded() {
					t.Fatalf("want gone, got %d", res.StatusCode)
				}
			},
		},
		{
			name: "429 with Retry-After seconds",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(429)
			},
			secrets: []string{secret},
			check: func(t *testing.T, res webhook.Result, _ *received) {
				if res.StatusCode != 429 || res.RetryAfter != 7*time.Second {
					t.Fatalf("want 429 and 7s, got %d %s", res.StatusCode, res.RetryAfter)
				}
			},
		},
		{
			name: "503 with Retry-After date",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
				w.WriteHeader(503)
			},
			secrets: []string{secret},
			check: func(t *testing.T, res webhook.Result, _ *received) {
				if res.StatusCode != 503 || res.RetryAfter < 58*time.Minute || res.RetryAfter > time.Hour {
					t.Fatalf("want 503 and ~1h, got %d %s", res.StatusCode, res.RetryAfter)
				}
			},
		},
		{
			name: "Retry-After ignored on 500",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(500)
			},
			secrets: []string{secret},
			check: func(t *testing.T, res webhook.Result, _ *received) {
				if res.StatusCode != 500 || res.RetryAfter != 0 || res.Succeeded() {
					t.Fatalf("want 500 without retry-after, got %d %s", res.StatusCode, res.RetryAfter)
				}
			},
		},
		{
			name: "timeout",
			handler: func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-release:
				}
			},
			opts:    []webhook.ClientOption{webhook.WithTimeout(100 * time.Millisecond)},
			secrets: []string{secret},
			check: func(t *testing.T, res webhook.Result, _ *received) {
				if !errors.Is(res.Err, webhook.ErrTimeout) || res.StatusCode != 0 || res.Succeeded() {
					t.Fatalf("want timeout, got %d %v", res.StatusCode, res.Err)
				}
				if res.Response.Error == "" {
					t.Error("response error not recorded")
				}
			},
		},
		{
			name: "big body truncated",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, strings.Repeat("x", 100_000))
			},
			opts:    []webhook.ClientOption{webhook.WithMaxResponseBody(1000)},
			secrets: []string{secret},
			check: func(t *testing.T, res webhook.Result, _ *received) {
				if !res.Succeeded() || len(res.Response.Body) != 1000 || !res.Response.BodyTruncated {
					t.Fatalf("want 1000 truncated bytes, got %d truncated=%v", len(res.Response.Body), res.Response.BodyTruncated)
				}
			},
		},
		{
			name:    "no secret",
			handler: func(w http.ResponseWriter, r *http.Request) {},
			check: func(t *testing.T, res webhook.Result, got *received) {
				if !errors.Is(res.Err, webhook.ErrNoSecret) || got.header != nil {
					t.Fatalf("want ErrNoSecret and no request, got %v", res.Err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got received
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got.header = r.Header.Clone()
				got.body, _ = io.ReadAll(r.Body)
				tt.handler(w, r)
			}))
			t.Cleanup(srv.Close)
			c := newClient(t, tt.opts...)
			res := c.Send(context.Background(), webhook.Request{URL: srv.URL + "/hook", WebhookID: "msg_1", Body: body, Secrets: tt.secrets})
			if res.Request == nil || res.Response == nil {
				t.Fatal("result without request or response")
			}
			tt.check(t, res, &got)
		})
	}
}

func TestClientConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	res := newClient(t).Send(context.Background(), webhook.Request{URL: "http://" + addr + "/", WebhookID: "msg_1", Body: []byte("{}"), Secrets: []string{webhook.NewSecret()}})
	if res.Err == nil || res.StatusCode != 0 || res.Succeeded() || res.Response.Error == "" {
		t.Fatalf("want connection error, got %d %v", res.StatusCode, res.Err)
	}
}

// TestClientGuardRefusesURL: a URL the guard refuses is refused on every
// send (refusals are not remembered); an accepted one is parsed and checked
// once, and every request to it still carries its host, path and query.
func TestClientGuardRefusesURL(t *testing.T) {
	var hits atomic.Int32
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		mu.Lock()
		got = append(got, r.Host+" "+r.URL.RequestURI())
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	g, err := urlguard.New()
	if err != nil {
		t.Fatal(err)
	}
	blocked := newClient(t, webhook.WithGuard(g))
	for range 2 {
		res := blocked.Send(context.Background(), webhook.Request{URL: srv.URL, WebhookID: "msg_1", Body: []byte("{}"), Secrets: []string{webhook.NewSecret()}})
		if !errors.Is(res.Err, urlguard.ErrBlocked) {
			t.Fatalf("want ErrBlocked, got %v", res.Err)
		}
	}
	if hits.Load() != 0 {
		t.Fatal("the receiver was called")
	}

	allow, err := urlguard.New(urlguard.WithAllowedCIDRs("127.0.0.0/8"))
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, webhook.WithGuard(allow))
	urls := []string{srv.URL, srv.URL + "/hook/a?x=1&y=%2F", srv.URL, srv.URL + "/hook/a?x=1&y=%2F"}
	for _, u := range urls {
		res := c.Send(context.Background(), webhook.Request{URL: u, WebhookID: "msg_1", Body: []byte("{}"), Secrets: []string{webhook.NewSecret()}})
		if !res.Succeeded() {
			t.Fatalf("exempt range: want success, got %d %v", res.StatusCode, res.Err)
		}
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	want := []string{host + " /", host + " /hook/a?x=1&y=%2F", host + " /", host + " /hook/a?x=1&y=%2F"}
	if hits.Load() != 4 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("received %v, want %v", got, want)
	}
}

func TestNewClientValidates(t *testing.T) {
	tests := []struct {
		name string
		opts []webhook.ClientOption
	}{
		{"zero timeout", []webhook.ClientOption{webhook.WithTimeout(0)}},
		{"negative body", []webhook.ClientOption{webhook.WithMaxResponseBody(-1)}},
		{"nil guard", []webhook.ClientOption{webhook.WithGuard(nil)}},
		{"empty user agent", []webhook.ClientOption{webhook.WithUserAgent(" ")}},
		{"negative conns", []webhook.ClientOption{webhook.WithMaxConnsPerHost(-1)}},
		{"nil transport", []webhook.ClientOption{webhook.WithTransport(nil)}},
		{"nil option", []webhook.ClientOption{nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := webhook.NewClient(tt.opts...); err == nil {
				t.Fatal("want error")
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{"120", 2 * time.Minute},
		{"garbage", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"99999999999999999999", 0},
	}
	for _, tt := range tests {
		if got := webhook.ParseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("ParseRetryAfter(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestClientUserAgentAndReuse(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("User-Agent") != "custom/1" {
			w.WriteHeader(400)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := newClient(t, webhook.WithUserAgent("custom/1"))
	for range 5 {
		res := c.Send(context.Background(), webhook.Request{URL: srv.URL, WebhookID: "msg_1", Body: []byte("{}"), Secrets: []string{webhook.NewSecret()}})
		if !res.Succeeded() {
			t.Fatalf("got %d %v", res.StatusCode, res.Err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("want 1 connection reused, got %d", n)
	}
}

func TestClientOmitRecordedBody(t *testing.T) {
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got, _ = io.ReadAll(r.Body) }))
	t.Cleanup(srv.Close)
	res := newClient(t).Send(context.Background(), webhook.Request{
		URL: srv.URL, WebhookID: "msg_1", Body: []byte(`{"a":1}`), Secrets: []string{webhook.NewSecret()}, OmitRecordedBody: true,
	})
	if !res.Succeeded() || string(got) != `{"a":1}` || res.Request.GetBody() != "" {
		t.Fatalf("status %d, sent %q, recorded body %q", res.StatusCode, got, res.Request.GetBody())
	}
}

func TestSigningSecrets(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := func(s string, d time.Duration) *hubhooksv1.PreviousSecret {
		return &hubhooksv1.PreviousSecret{Secret: s, ExpiresAt: timestamppb.New(now.Add(d))}
	}
	tests := []struct {
		name string
		cfg  *hubhooksv1.HubConfig
		want []string
	}{
		{"nil config", nil, nil},
		{"no secret", &hubhooksv1.HubConfig{HubId: "h"}, nil},
		{"current only", &hubhooksv1.HubConfig{Secret: "whsec_a"}, []string{"whsec_a"}},
		{"valid previous", &hubhooksv1.HubConfig{Secret: "whsec_a", PreviousSecrets: []*hubhooksv1.PreviousSecret{prev("whsec_b", time.Hour), prev("whsec_c", time.Minute)}}, []string{"whsec_a", "whsec_b", "whsec_c"}},
		{"expired previous", &hubhooksv1.HubConfig{Secret: "whsec_a", PreviousSecrets: []*hubhooksv1.PreviousSecret{prev("whsec_b", -time.Second), prev("whsec_c", 0), prev("whsec_d", time.Second)}}, []string{"whsec_a", "whsec_d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := webhook.SigningSecrets(tt.cfg, now)
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}
