// Package hubdtest starts an all-in-one hubd inside a test: embedded NATS
// with JetStream on a random port, the real Redis under the test's own key
// prefix (pkg/redistest), gRPC and HTTP on random ports and a short retry
// schedule. It stops when the test ends.
//
//	h := hubdtest.Start(t, hubdtest.Options{})
//	cfg, err := h.Config.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: "acme"})
package hubdtest

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/hubhooks/hubhooks/pkg/auth"
	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/redistest"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/hubd"
	"github.com/hubhooks/hubhooks/services/internal/assembly"
	"github.com/hubhooks/hubhooks/services/internal/settings"
)

// Options change the test hubd; the zero value is a quick default.
type Options struct {
	// Schedule is the retry schedule; default 0, 50ms, 100ms (three attempts).
	Schedule []time.Duration
	// AdminToken, when set, is required of callers; the clients send it.
	AdminToken string
	// Tune changes any other setting before the start.
	Tune func(*settings.Settings)
}

// Hub is a running test hubd with clients.
type Hub struct {
	*hubd.Process
	// Config and Logs are clients of the gRPC address (with the admin
	// token when there is one).
	Config hubhooksv1.ConfigServiceClient
	Logs   hubhooksv1.EventLogServiceClient
	// Conn is their connection.
	Conn *grpc.ClientConn
	// NC and JS reach the embedded NATS as its publisher (PublisherURL):
	// they may publish domain events and nothing else.
	NC *nats.Conn
	JS jetstream.JetStream
	// RedisPrefix starts every key of this hubd.
	RedisPrefix string
	// Settings are the settings it runs with.
	Settings *settings.Settings
}

// Start starts a hubd that stops when t ends, and waits until it is ready.
func Start(t testing.TB, o Options) *Hub {
	t.Helper()
	_, prefix := redistest.New(t)
	if len(o.Schedule) == 0 {
		o.Schedule = []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond}
	}
	s := &settings.Settings{
		NATSListen: "127.0.0.1:0", NATSListenSet: true,
		RedisURL: redistest.URL(), RedisPrefix: prefix,
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		DataDir: t.TempDir(), RetrySchedule: o.Schedule,
		AllowedCIDRs: []string{"127.0.0.0/8"}, SecretGrace: time.Hour, AdminToken: o.AdminToken,
		LogLevel: "warn", LogFormat: "text", ShutdownTimeout: 10 * time.Second, StreamReplicas: 1,
	}
	if o.Tune != nil {
		o.Tune(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p, err := hubd.Start(ctx, assembly.FromSettings("hubd", s))
	if err != nil {
		cancel()
		t.Fatalf("hubdtest: start hubd: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.Done():
		case <-time.After(30 * time.Second):
			t.Error("hubdtest: hubd did not stop within 30s")
		}
	})
	conn, err := grpc.NewClient(p.GRPCAddr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.BearerCredentials(o.AdminToken)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	nc, err := nats.Connect(p.PublisherURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	h := &Hub{
		Process: p, Conn: conn, NC: nc, JS: js, RedisPrefix: prefix, Settings: s,
		Config: hubhooksv1.NewConfigServiceClient(conn), Logs: hubhooksv1.NewEventLogServiceClient(conn),
	}
	poll.Until(t, 20*time.Second, "hubd ready", func() bool { return ready(p.HTTPAddr) })
	return h
}

// ready reports whether /readyz answers 200.
func ready(addr string) bool {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
