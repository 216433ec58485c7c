package auth_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/hubhooks/hubhooks/pkg/auth"
	"github.com/hubhooks/hubhooks/pkg/daemon"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

const adminToken = "admin-token-0123456789abcdef"

// testConfigServer implements just enough of ConfigService to see calls
// through; it echoes the caller's identity in HubConfig.secret.
type testConfigServer struct {
	hubhooksv1.UnimplementedConfigServiceServer
}

func (testConfigServer) GetHubConfig(ctx context.Context, req *hubhooksv1.GetHubConfigRequest) (*hubhooksv1.HubConfig, error) {
	id, ok := auth.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Internal, "no identity in context")
	}
	who := "hub:" + id.HubID
	if id.Admin {
		who = "admin"
	}
	return &hubhooksv1.HubConfig{HubId: req.GetHubId(), Secret: who}, nil
}

func (testConfigServer) ListEventTypes(context.Context, *hubhooksv1.ListEventTypesRequest) (*hubhooksv1.ListEventTypesResponse, error) {
	return &hubhooksv1.ListEventTypesResponse{WebhookEventTypes: []string{"API.CREATED"}}, nil
}

func (testConfigServer) WatchHubConfig(req *hubhooksv1.WatchHubConfigRequest, stream grpc.ServerStreamingServer[hubhooksv1.HubConfig]) error {
	return stream.Send(&hubhooksv1.HubConfig{HubId: req.GetHubId()})
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type server struct {
	addr   string
	logs   *syncBuffer
	tokens *auth.TokenStore
	authn  *auth.Authenticator
}

// startServer serves ConfigService (test implementation), health and
// reflection with the authenticator on lis (127.0.0.1:0 when nil).
func startServer(t *testing.T, admin string, lis net.Listener, opts ...grpc.ServerOption) *server {
	t.Helper()
	store, _ := newStore(t)
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := auth.New(auth.Config{AdminToken: admin, Tokens: store, Log: log})
	if err != nil {
		t.Fatalf("auth.New: %v", err)
	}
	srv := daemon.NewGRPCServer(daemon.GRPCConfig{
		Log:     log,
		Unary:   []grpc.UnaryServerInterceptor{a.Unary()},
		Stream:  []grpc.StreamServerInterceptor{a.Stream()},
		Options: opts,
	})
	hubhooksv1.RegisterConfigServiceServer(srv, testConfigServer{})
	hubhooksv1.RegisterEventLogServiceServer(srv, hubhooksv1.UnimplementedEventLogServiceServer{})
	if lis == nil {
		lis, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ServeListener(ctx, lis, time.Second) }()
	t.Cleanup(func() { cancel(); <-done })
	return &server{addr: lis.Addr().String(), logs: logs, tokens: store, authn: a}
}

func dial(t *testing.T, target string, creds ...grpc.DialOption) hubhooksv1.ConfigServiceClient {
	t.Helper()
	opts := creds
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return hubhooksv1.NewConfigServiceClient(conn)
}

func callCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func bearer(token string) grpc.CallOption {
	return grpc.PerRPCCredentials(auth.BearerCredentials(token))
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("%s: code %v (%v), want %v", what, got, err, want)
	}
}

// watch opens WatchHubConfig and returns the first message's error.
func watch(ctx context.Context, c hubhooksv1.ConfigServiceClient, req *hubhooksv1.WatchHubConfigRequest, opts ...grpc.CallOption) error {
	st, err := c.WatchHubConfig(ctx, req, opts...)
	if err != nil {
		return err
	}
	if _, err := st.Recv(); err != nil {
		return err
	}
	for {
		if _, err := st.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func TestAuthenticatorWithAdminToken(t *testing.T) {
	s := startServer(t, adminToken, nil)
	c := dial(t, s.addr)
	logConn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logConn.Close() })
	logs := hubhooksv1.NewEventLogServiceClient(logConn)
	ctx := callCtx(t)

	hubTok, _, err := s.tokens.Create(ctx, "hub-a", "test")
	if err != nil {
		t.Fatal(err)
	}
	revokedTok, _, err := s.tokens.Create(ctx, "hub-a", "to revoke")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.tokens.Revoke(ctx, "hub-a", revokedTok, ""); err != nil {
		t.Fatal(err)
	}
	hubA := &hubhooksv1.GetHubConfigRequest{HubId: "hub-a"}
	hubB := &hubhooksv1.GetHubConfigRequest{HubId: "hub-b"}

	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"no token", func() error { _, err := c.GetHubConfig(ctx, hubA); return err }, codes.Unauthenticated},
		{"wrong token", func() error { _, err := c.GetHubConfig(ctx, hubA, bearer("wrong-token-0123456789")); return err }, codes.Unauthenticated},
		{"admin token prefix", func() error { _, err := c.GetHubConfig(ctx, hubA, bearer(adminToken[:20])); return err }, codes.Unauthenticated},
		{"well-formed unknown hub token", func() error {
			_, err := c.GetHubConfig(ctx, hubA, bearer("hht_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
			return err
		}, codes.Unauthenticated},
		{"revoked token", func() error { _, err := c.GetHubConfig(ctx, hubA, bearer(revokedTok)); return err }, codes.Unauthenticated},
		{"basic auth", func() error {
			md := metadata.Pairs("authorization", "Basic "+adminToken)
			_, err := c.GetHubConfig(metadata.NewOutgoingContext(ctx, md), hubA)
			return err
		}, codes.Unauthenticated},
		{"two authorization headers", func() error {
			md := metadata.Pairs("authorization", "Bearer "+adminToken, "authorization", "Bearer "+hubTok)
			_, err := c.GetHubConfig(metadata.NewOutgoingContext(ctx, md), hubA)
			return err
		}, codes.Unauthenticated},
		{"lower-case bearer", func() error {
			md := metadata.Pairs("authorization", "bearer "+adminToken)
			_, err := c.GetHubConfig(metadata.NewOutgoingContext(ctx, md), hubA)
			return err
		}, codes.OK},
		{"no token on ListEventTypes", func() error { _, err := c.ListEventTypes(ctx, &hubhooksv1.ListEventTypesRequest{}); return err }, codes.Unauthenticated},
		{"no token on WatchHubConfig", func() error {
			return watch(ctx, c, &hubhooksv1.WatchHubConfigRequest{HubId: "hub-a"})
		}, codes.Unauthenticated},

		{"admin on hub-a", func() error { _, err := c.GetHubConfig(ctx, hubA, bearer(adminToken)); return err }, codes.OK},
		{"admin on hub-b", func() error { _, err := c.GetHubConfig(ctx, hubB, bearer(adminToken)); return err }, codes.OK},
		{"admin watches all", func() error {
			return watch(ctx, c, &hubhooksv1.WatchHubConfigRequest{All: true}, bearer(adminToken))
		}, codes.OK},
		{"admin passes to an unimplemented method", func() error {
			_, err := c.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: "hub-b"}, bearer(adminToken))
			return err
		}, codes.Unimplemented},

		{"hub token on own hub", func() error { _, err := c.GetHubConfig(ctx, hubA, bearer(hubTok)); return err }, codes.OK},
		{"hub token on another hub", func() error { _, err := c.GetHubConfig(ctx, hubB, bearer(hubTok)); return err }, codes.PermissionDenied},
		{"hub token without hub id", func() error {
			_, err := c.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{}, bearer(hubTok))
			return err
		}, codes.PermissionDenied},
		{"hub token on ListEventTypes", func() error {
			_, err := c.ListEventTypes(ctx, &hubhooksv1.ListEventTypesRequest{}, bearer(hubTok))
			return err
		}, codes.OK},
		{"hub token watches own hub", func() error {
			return watch(ctx, c, &hubhooksv1.WatchHubConfigRequest{HubId: "hub-a"}, bearer(hubTok))
		}, codes.OK},
		{"hub token watches another hub", func() error {
			return watch(ctx, c, &hubhooksv1.WatchHubConfigRequest{HubId: "hub-b"}, bearer(hubTok))
		}, codes.PermissionDenied},
		{"hub token watches all", func() error {
			return watch(ctx, c, &hubhooksv1.WatchHubConfigRequest{All: true, HubId: "hub-a"}, bearer(hubTok))
		}, codes.PermissionDenied},
		{"admin passes to an admin-only method", func() error {
			_, err := logs.PurgeEventLogs(ctx, &hubhooksv1.PurgeEventLogsRequest{HubId: "hub-a"}, bearer(adminToken))
			return err
		}, codes.Unimplemented},
		{"hub token on an admin-only method for its own hub", func() error {
			_, err := logs.PurgeEventLogs(ctx, &hubhooksv1.PurgeEventLogsRequest{HubId: "hub-a"}, bearer(hubTok))
			return err
		}, codes.PermissionDenied},
		{"hub token on another hub's unimplemented method", func() error {
			_, err := c.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: "hub-b"}, bearer(hubTok))
			return err
		}, codes.PermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantCode(t, tt.name, tt.call(), tt.want) })
	}

	// The handler sees who called.
	cfg, err := c.GetHubConfig(ctx, hubA, bearer(hubTok))
	if err != nil || cfg.GetSecret() != "hub:hub-a" {
		t.Fatalf("identity seen by handler: %v, %v", cfg.GetSecret(), err)
	}
	cfg, err = c.GetHubConfig(ctx, hubB, bearer(adminToken))
	if err != nil || cfg.GetSecret() != "admin" {
		t.Fatalf("identity seen by handler: %v, %v", cfg.GetSecret(), err)
	}

	// Health is open.
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hr, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health without token: %v, %v", hr, err)
	}

	// Revoking a token in use shuts it out at once.
	if err := s.tokens.Revoke(ctx, "hub-a", hubTok, ""); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetHubConfig(ctx, hubA, bearer(hubTok))
	wantCode(t, "hub token after revoke", err, codes.Unauthenticated)

	for _, tok := range []string{adminToken, hubTok, revokedTok} {
		if strings.Contains(s.logs.String(), tok) {
			t.Fatalf("a token appears in the logs:\n%s", s.logs.String())
		}
	}
	if s.authn.LoopbackOnly() {
		t.Fatal("LoopbackOnly with an admin token")
	}
}

func TestAuthenticatorLoopbackMode(t *testing.T) {
	s := startServer(t, "", nil)
	c := dial(t, s.addr)
	ctx := callCtx(t)
	hubTok, _, err := s.tokens.Create(ctx, "hub-a", "")
	if err != nil {
		t.Fatal(err)
	}

	cfg, err := c.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: "hub-b"})
	if err != nil || cfg.GetSecret() != "admin" {
		t.Fatalf("loopback caller without token: %v, %v", cfg, err)
	}
	if err := watch(ctx, c, &hubhooksv1.WatchHubConfigRequest{All: true}); err != nil {
		t.Fatalf("loopback caller watches all: %v", err)
	}
	// A token that is sent is still checked.
	_, err = c.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: "hub-a"}, bearer(hubTok))
	wantCode(t, "loopback hub token on own hub", err, codes.OK)
	_, err = c.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: "hub-b"}, bearer(hubTok))
	wantCode(t, "loopback hub token on another hub", err, codes.PermissionDenied)
	_, err = c.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: "hub-a"}, bearer("bogus-token"))
	wantCode(t, "loopback bogus token", err, codes.Unauthenticated)

	// Start-up warning.
	if !s.authn.LoopbackOnly() {
		t.Fatal("LoopbackOnly false without admin token")
	}
	s.authn.Warn()
	if !strings.Contains(s.logs.String(), "HUBHOOKS_ADMIN_TOKEN is not set") {
		t.Fatalf("no start-up warning in logs:\n%s", s.logs.String())
	}
}

func TestAuthenticatorLoopbackModeUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "grpc.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "", lis)
	c := dial(t, "unix://"+sock)
	if _, err := c.GetHubConfig(callCtx(t), &hubhooksv1.GetHubConfigRequest{HubId: "hub-a"}); err != nil {
		t.Fatalf("unix socket caller without token: %v", err)
	}
	_ = s
}

// TestAuthenticatorLoopbackModeRefusesRemote calls the interceptor as the
// gRPC server would for a caller from another machine.
func TestAuthenticatorLoopbackModeRefusesRemote(t *testing.T) {
	store, _ := newStore(t)
	logs := &syncBuffer{}
	tests := []struct {
		name  string
		admin string
		addr  net.Addr
		token string
		want  codes.Code
	}{
		{"remote without admin token", "", &net.TCPAddr{IP: net.ParseIP("10.0.0.5"), Port: 5000}, "", codes.Unauthenticated},
		{"remote v6 without admin token", "", &net.TCPAddr{IP: net.ParseIP("2001:db8::5"), Port: 5000}, "", codes.Unauthenticated},
		{"remote with admin token configured and sent", adminToken, &net.TCPAddr{IP: net.ParseIP("10.0.0.5"), Port: 5000}, adminToken, codes.OK},
		{"mapped loopback", "", &net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.2"), Port: 5000}, "", codes.OK},
		{"ipv6 loopback", "", &net.TCPAddr{IP: net.IPv6loopback, Port: 5000}, "", codes.OK},
		{"no peer", "", nil, "", codes.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := auth.New(auth.Config{AdminToken: tt.admin, Tokens: store, Log: slog.New(slog.NewTextHandler(logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if tt.addr != nil {
				ctx = peer.NewContext(ctx, &peer.Peer{Addr: tt.addr})
			}
			if tt.token != "" {
				ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+tt.token))
			}
			info := &grpc.UnaryServerInfo{FullMethod: "/hubhooks.v1.ConfigService/GetHubConfig"}
			_, err = a.Unary()(ctx, &hubhooksv1.GetHubConfigRequest{HubId: "hub-a"}, info, func(context.Context, any) (any, error) {
				return &hubhooksv1.HubConfig{}, nil
			})
			wantCode(t, tt.name, err, tt.want)
			if tt.want == codes.Unauthenticated && !strings.Contains(status.Convert(err).Message(), "HUBHOOKS_ADMIN_TOKEN") {
				t.Fatalf("refusal does not say to set HUBHOOKS_ADMIN_TOKEN: %v", err)
			}
		})
	}
	if strings.Contains(logs.String(), adminToken) {
		t.Fatal("admin token in logs")
	}
}

func TestConfigValidate(t *testing.T) {
	store, _ := newStore(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name    string
		cfg     auth.Config
		wantErr bool
	}{
		{"ok", auth.Config{AdminToken: adminToken, Tokens: store, Log: log}, false},
		{"ok loopback", auth.Config{Tokens: store, Log: log}, false},
		{"nil tokens", auth.Config{Log: log}, true},
		{"nil log", auth.Config{Tokens: store}, true},
		{"short admin token", auth.Config{AdminToken: "short", Tokens: store, Log: log}, true},
		{"admin token with space", auth.Config{AdminToken: "admin token 0123456789", Tokens: store, Log: log}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := auth.New(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
	// Every problem at once.
	err := auth.Config{AdminToken: "x"}.Validate()
	if err == nil || strings.Count(err.Error(), "\n") < 2 {
		t.Fatalf("Validate should report all three problems: %v", err)
	}
}

func TestBearerCredentials(t *testing.T) {
	md, err := auth.BearerCredentials("abc").GetRequestMetadata(context.Background())
	if err != nil || md["authorization"] != "Bearer abc" {
		t.Fatalf("metadata = %v, %v", md, err)
	}
	md, err = auth.BearerCredentials("").GetRequestMetadata(context.Background())
	if err != nil || len(md) != 0 {
		t.Fatalf("empty token metadata = %v, %v", md, err)
	}
	if auth.BearerCredentials("abc").RequireTransportSecurity() {
		t.Fatal("RequireTransportSecurity must be false (loopback without TLS)")
	}
	var _ credentials.PerRPCCredentials = auth.BearerCredentials("x")
}
