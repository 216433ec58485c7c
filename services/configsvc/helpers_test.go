package configsvc_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/natstest"
	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/redistest"
	"github.com/hubhooks/hubhooks/pkg/urlguard"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/configsvc"
)

// clock is a settable clock for secret expiry.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// tokenStore is a tiny in-memory TokenStore for the tests.
type tokenStore struct {
	mu     sync.Mutex
	tokens map[string]*hubhooksv1.HubToken // by token value
}

func (s *tokenStore) Create(_ context.Context, hubID, description string) (string, *hubhooksv1.HubToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tokens == nil {
		s.tokens = map[string]*hubhooksv1.HubToken{}
	}
	tok := webhook.RandomID("hht_")
	info := &hubhooksv1.HubToken{Id: webhook.RandomID("tok_"), HubId: hubID, Description: description, CreatedAt: timestamppb.Now(), Prefix: tok[:8]}
	s.tokens[tok] = info
	return tok, info, nil
}

func (s *tokenStore) Revoke(_ context.Context, hubID, token, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for v, info := range s.tokens {
		if info.GetHubId() == hubID && (v == token || info.GetId() == id) {
			delete(s.tokens, v)
			return nil
		}
	}
	return configsvc.ErrTokenNotFound
}

func (s *tokenStore) List(_ context.Context, hubID string) ([]*hubhooksv1.HubToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*hubhooksv1.HubToken
	for _, info := range s.tokens {
		if info.GetHubId() == hubID {
			out = append(out, info)
		}
	}
	return out, nil
}

// env is the shared infrastructure of one test: a Redis prefix, JetStream,
// a clock, a URL guard that lets loopback through (for httptest receivers).
type env struct {
	rdb    *redis.Client
	prefix string
	js     jetstream.JetStream
	clock  *clock
	guard  *urlguard.Guard
	sender webhook.Sender
	tokens configsvc.TokenStore
}

func newEnv(t *testing.T) *env {
	t.Helper()
	rdb, prefix := redistest.New(t)
	_, _, js := natstest.Start(t)
	guard, err := urlguard.New(urlguard.WithAllowedCIDRs("127.0.0.0/8"))
	if err != nil {
		t.Fatal(err)
	}
	client, err := webhook.NewClient(webhook.WithGuard(guard), webhook.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return &env{
		rdb: rdb, prefix: prefix, js: js, guard: guard, sender: client, tokens: &tokenStore{},
		clock: &clock{now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)},
	}
}

// server is one configsvc replica serving gRPC on 127.0.0.1.
type server struct {
	svc    *configsvc.Service
	reg    *prometheus.Registry
	addr   string
	stop   func()
	client hubhooksv1.ConfigServiceClient
}

type option func(*configsvc.Config, *redis.Client) *redis.Client

// startServer starts a Service (Run included) and its gRPC server on addr
// ("" for a random port) and waits until it is ready. stop ends both; it is
// also registered with t.Cleanup.
func (e *env) startServer(t *testing.T, addr string, opts ...option) *server {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := configsvc.Config{
		RedisPrefix: e.prefix,
		Registerer:  reg,
		Log:         slog.New(slog.DiscardHandler),
		Now:         e.clock.Now,
		FeedBlock:   200 * time.Millisecond,
	}
	rdb := e.rdb
	for _, o := range opts {
		rdb = o(&cfg, rdb)
	}
	svc, err := configsvc.New(cfg, rdb, e.js, e.guard, e.sender, e.tokens)
	if err != nil {
		t.Fatal(err)
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lis net.Listener
	poll.Until(t, 5*time.Second, "listen on "+addr, func() bool {
		lis, err = net.Listen("tcp", addr)
		return err == nil
	})
	gs := grpc.NewServer()
	svc.Register(gs)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- svc.Run(ctx) }()
	go func() { _ = gs.Serve(lis) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-runDone; err != nil {
				t.Errorf("Run: %v", err)
			}
			gs.Stop()
		})
	}
	t.Cleanup(stop)
	poll.Until(t, 10*time.Second, "service ready", func() bool { return svc.Ready(context.Background()) == nil })
	return &server{svc: svc, reg: reg, addr: lis.Addr().String(), stop: stop, client: dial(t, lis.Addr().String())}
}

func dial(t *testing.T, addr string) hubhooksv1.ConfigServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.5, MaxDelay: 200 * time.Millisecond}}),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return hubhooksv1.NewConfigServiceClient(conn)
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantCode fails unless err has code want.
func wantCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("code = %s (%v), want %s", got, err, want)
	}
	if want != codes.OK {
		if s, _ := status.FromError(err); s.Message() == "" {
			t.Fatalf("error %v has no message", err)
		}
	}
}

// feedLen is the length of the change feed.
func (e *env) feedLen(t *testing.T) int64 {
	t.Helper()
	n, err := e.rdb.XLen(context.Background(), e.prefix+"{cfg}:feed").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	}
	return n
}

// counter returns the value of a labelled counter registered by s.
func counter(t *testing.T, s *server, name, label string) float64 {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" && len(m.GetLabel()) == 0 {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					return m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("metric %s{%s} not found", name, label)
	return 0
}
