package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/redistest"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/hubd"
	"github.com/hubhooks/hubhooks/services/internal/assembly"
	"github.com/hubhooks/hubhooks/services/internal/settings"
)

const adminToken = "test-admin-token-0123456789"

// testHubd is an all-in-one hubd in the test process with an admin token,
// serving the API on a free port.
type testHubd struct {
	proc   *hubd.Process
	base   string // http://host:port
	rdb    *redis.Client
	prefix string
	config hubhooksv1.ConfigServiceClient
}

// startHubd starts it; each tweak may change the settings first.
func startHubd(t *testing.T, tweaks ...func(*settings.Settings)) *testHubd {
	t.Helper()
	rdb, prefix := redistest.New(t)
	s := &settings.Settings{
		NATSListen: "127.0.0.1:0", NATSListenSet: true,
		RedisURL: redistest.URL(), RedisPrefix: prefix,
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", APIAddr: "127.0.0.1:0",
		DataDir: t.TempDir(), RetrySchedule: []time.Duration{0, 50 * time.Millisecond},
		AllowedCIDRs: []string{"127.0.0.0/8"}, SecretGrace: time.Hour, AdminToken: adminToken,
		LogLevel: "warn", LogFormat: "text", ShutdownTimeout: 10 * time.Second, StreamReplicas: 1,
	}
	for _, tweak := range tweaks {
		tweak(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	proc, err := hubd.Start(ctx, assembly.FromSettings("hubd", s))
	if err != nil {
		cancel()
		t.Fatalf("start hubd: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-proc.Done():
		case <-time.After(30 * time.Second):
			t.Error("hubd did not stop within 30s")
		}
	})
	conn, err := grpc.NewClient(proc.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	h := &testHubd{proc: proc, base: "http://" + proc.APIAddr, rdb: rdb, prefix: prefix, config: hubhooksv1.NewConfigServiceClient(conn)}
	poll.Until(t, 20*time.Second, "hubd ready", func() bool {
		resp, err := http.Get("http://" + proc.HTTPAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return h
}

// admin is a context with the admin token for gRPC calls.
func admin() context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken)
}

// hubToken creates a token for hub over gRPC.
func (h *testHubd) hubToken(t *testing.T, hub string) string {
	t.Helper()
	resp, err := h.config.CreateHubToken(admin(), &hubhooksv1.CreateHubTokenRequest{HubId: hub, Description: "gateway test"})
	if err != nil {
		t.Fatalf("CreateHubToken: %v", err)
	}
	return resp.GetToken()
}

// reply is an HTTP response read whole.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a map.
func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object (%v): %s", err, r.body)
	}
	return m
}

// call sends method path with token (none when empty) and body (none when
// nil).
func (h *testHubd) call(t *testing.T, method, path, token string, body []byte) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, h.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// lines reads a streaming response's newline-delimited JSON messages.
type lines struct {
	resp *http.Response
	sc   *bufio.Scanner
}

func (h *testHubd) stream(t *testing.T, path, token string) *lines {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	return &lines{resp: resp, sc: sc}
}

// next returns the next message of the stream as a map.
func (l *lines) next(t *testing.T) map[string]any {
	t.Helper()
	for l.sc.Scan() {
		line := strings.TrimSpace(l.sc.Text())
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("stream line is not JSON: %s", line)
		}
		return m
	}
	t.Fatalf("stream ended: %v", l.sc.Err())
	return nil
}
