package auth_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hubhooks/hubhooks/pkg/auth"
	"github.com/hubhooks/hubhooks/pkg/daemon"
	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/redistest"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// pushServer's WatchHubConfig sends the hub's config at once, then every
// config put on push, until the stream ends; then it tries one more send,
// as a handler does whose change arrives while its stream is being ended.
type pushServer struct {
	hubhooksv1.UnimplementedConfigServiceServer
	push chan *hubhooksv1.HubConfig
}

func (p *pushServer) WatchHubConfig(req *hubhooksv1.WatchHubConfigRequest, stream grpc.ServerStreamingServer[hubhooksv1.HubConfig]) error {
	if err := stream.Send(&hubhooksv1.HubConfig{HubId: req.GetHubId(), Secret: "whsec_first"}); err != nil {
		return err
	}
	for {
		select {
		case <-stream.Context().Done():
			if err := stream.Send(&hubhooksv1.HubConfig{HubId: req.GetHubId(), Secret: "whsec_late"}); err != nil {
				return err
			}
			return stream.Context().Err()
		case c := <-p.push:
			if err := stream.Send(c); err != nil {
				return err
			}
		}
	}
}

type streamEnv struct {
	addr   string
	tokens *auth.TokenStore
	push   chan *hubhooksv1.HubConfig
	logs   *syncBuffer
}

// deafStore is a token store that hears no revocation announcement.
type deafStore struct{ *auth.TokenStore }

func (deafStore) WatchRevocations(ctx context.Context, _ func(string)) error {
	<-ctx.Done()
	return nil
}

// Whether an Authenticator runs Run (announcements and re-checks), and
// hears the announcements.
const (
	withoutRun = iota
	withRun
	withRunDeaf
)

// startStreamServer serves pushServer behind an Authenticator of cfg
// (admin token, tokens and log filled in), run as mode says.
func startStreamServer(t *testing.T, cfg auth.Config, mode int) *streamEnv {
	t.Helper()
	store, _ := newStore(t)
	logs := &syncBuffer{}
	cfg.AdminToken, cfg.Tokens = adminToken, store
	if mode == withRunDeaf {
		cfg.Tokens = deafStore{store}
	}
	cfg.Log = slog.New(slog.NewTextHandler(logs, nil))
	a, err := auth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gcfg := daemon.GRPCConfig{Log: cfg.Log, Unary: []grpc.UnaryServerInterceptor{a.Unary()}, Stream: []grpc.StreamServerInterceptor{a.Stream()}}
	if mode != withoutRun {
		gcfg.Companion = a.Run
	}
	srv := daemon.NewGRPCServer(gcfg)
	push := make(chan *hubhooksv1.HubConfig, 16)
	hubhooksv1.RegisterConfigServiceServer(srv, &pushServer{push: push})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ServeListener(ctx, lis, time.Second) }()
	t.Cleanup(func() { cancel(); <-done })
	if mode == withRun {
		// Run subscribes to announcements on its own time; one made before
		// would go unheard (the re-check makes up for it, an hour on in
		// these tests).
		rdb, _ := redistest.New(t)
		channel := auth.RevokedChannel(store)
		poll.Until(t, 10*time.Second, "the revocation watcher subscribed", func() bool {
			n, err := rdb.PubSubNumSub(context.Background(), channel).Result()
			return err == nil && n[channel] > 0
		})
	}
	return &streamEnv{addr: lis.Addr().String(), tokens: store, push: push, logs: logs}
}

// open opens a watch of hub with token on c and reads its first message.
func open(t *testing.T, ctx context.Context, c hubhooksv1.ConfigServiceClient, hub, token string) (grpc.ServerStreamingClient[hubhooksv1.HubConfig], error) {
	t.Helper()
	st, err := c.WatchHubConfig(ctx, &hubhooksv1.WatchHubConfigRequest{HubId: hub}, bearer(token))
	if err != nil {
		return nil, err
	}
	if _, err := st.Recv(); err != nil {
		return nil, err
	}
	return st, nil
}

// TestRevokedTokenStreamEndsAtOnce: revoking a hub token ends its open
// streams on every server, without waiting for anything to be sent; the
// secret rotated after it is never sent on them.
func TestRevokedTokenStreamEndsAtOnce(t *testing.T) {
	// The re-check is an hour away: only the announcement can end it.
	e := startStreamServer(t, auth.Config{StreamRecheck: time.Hour}, withRun)
	ctx := callCtx(t)
	tok, info, err := e.tokens.Create(ctx, "hub-a", "watcher")
	if err != nil {
		t.Fatal(err)
	}
	st, err := open(t, ctx, dial(t, e.addr), "hub-a", tok)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		for {
			c, err := st.Recv()
			if err != nil {
				got <- err
				return
			}
			if c.GetSecret() == "whsec_rotated" {
				got <- nil
				return
			}
		}
	}()
	if err := e.tokens.Revoke(ctx, "hub-a", "", info.GetId()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("stream ended with %v, want Unauthenticated: revoked", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the revoked token's stream is still open after 5s")
	}
	e.push <- &hubhooksv1.HubConfig{HubId: "hub-a", Secret: "whsec_rotated"}
}

// TestStreamSendsNothingToARevokedToken: without the announcement (Run
// not running), a stream still sends nothing to a revoked token: the next
// message ends it instead.
func TestStreamSendsNothingToARevokedToken(t *testing.T) {
	e := startStreamServer(t, auth.Config{}, withoutRun)
	ctx := callCtx(t)
	tok, _, err := e.tokens.Create(ctx, "hub-a", "watcher")
	if err != nil {
		t.Fatal(err)
	}
	st, err := open(t, ctx, dial(t, e.addr), "hub-a", tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.tokens.Revoke(ctx, "hub-a", tok, ""); err != nil {
		t.Fatal(err)
	}
	e.push <- &hubhooksv1.HubConfig{HubId: "hub-a", Secret: "whsec_rotated"}
	c, err := st.Recv()
	if err == nil {
		t.Fatalf("a revoked token received %v", c)
	}
	wantCode(t, "stream after revoke", err, codes.Unauthenticated)
}

// TestStreamRecheckEndsMissedRevocations: with the announcement missed
// (a server that hears none), the periodic re-check ends the revoked
// token's idle stream.
func TestStreamRecheckEndsMissedRevocations(t *testing.T) {
	e := startStreamServer(t, auth.Config{StreamRecheck: 50 * time.Millisecond}, withRunDeaf)
	ctx := callCtx(t)
	tok, _, err := e.tokens.Create(ctx, "hub-a", "watcher")
	if err != nil {
		t.Fatal(err)
	}
	st, err := open(t, ctx, dial(t, e.addr), "hub-a", tok)
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() { _, err := st.Recv(); ended <- err }()
	if err := e.tokens.Revoke(ctx, "hub-a", tok, ""); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		wantCode(t, "stream after revoke", err, codes.Unauthenticated)
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open")
	}
}

// TestStreamLimits: a hub token may hold MaxStreamsPerToken streams and a
// connection MaxStreamsPerConn; the next is refused with
// ResourceExhausted, and a closed stream frees its place.
func TestStreamLimits(t *testing.T) {
	e := startStreamServer(t, auth.Config{MaxStreamsPerToken: 2, MaxStreamsPerConn: 3}, withRun)
	ctx := callCtx(t)
	tok, _, err := e.tokens.Create(ctx, "hub-a", "one")
	if err != nil {
		t.Fatal(err)
	}
	tok2, _, err := e.tokens.Create(ctx, "hub-a", "two")
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, e.addr)
	var cancels []context.CancelFunc
	openOK := func(token string) {
		t.Helper()
		sctx, cancel := context.WithCancel(ctx)
		cancels = append(cancels, cancel)
		if _, err := open(t, sctx, c, "hub-a", token); err != nil {
			t.Fatalf("stream %d: %v", len(cancels), err)
		}
	}
	openOK(tok)
	openOK(tok)
	_, err = open(t, ctx, c, "hub-a", tok)
	wantCode(t, "third stream of one token", err, codes.ResourceExhausted)
	openOK(tok2)
	_, err = open(t, ctx, c, "hub-a", adminToken)
	wantCode(t, "fourth stream of one connection", err, codes.ResourceExhausted)

	// Another connection has its own count.
	if _, err := open(t, ctx, dial(t, e.addr), "hub-a", adminToken); err != nil {
		t.Fatalf("stream on another connection: %v", err)
	}
	// Closing one frees its place.
	cancels[0]()
	poll.Until(t, 5*time.Second, "a place freed", func() bool {
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		_, err := open(t, sctx, c, "hub-a", tok)
		return err == nil
	})
	for _, cancel := range cancels {
		cancel()
	}
}

// TestTokenManagementIsAdminOnly: a hub token may not create, list or
// revoke tokens, not even of its own hub, so none it mints can outlive its
// revocation.
func TestTokenManagementIsAdminOnly(t *testing.T) {
	s := startServer(t, adminToken, nil)
	c := dial(t, s.addr)
	ctx := callCtx(t)
	tok, info, err := s.tokens.Create(ctx, "hub-a", "hub admin")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateHubToken(ctx, &hubhooksv1.CreateHubTokenRequest{HubId: "hub-a"}, bearer(tok))
	wantCode(t, "CreateHubToken with a hub token", err, codes.PermissionDenied)
	_, err = c.ListHubTokens(ctx, &hubhooksv1.ListHubTokensRequest{HubId: "hub-a"}, bearer(tok))
	wantCode(t, "ListHubTokens with a hub token", err, codes.PermissionDenied)
	_, err = c.RevokeHubToken(ctx, &hubhooksv1.RevokeHubTokenRequest{HubId: "hub-a", Id: info.GetId()}, bearer(tok))
	wantCode(t, "RevokeHubToken with a hub token", err, codes.PermissionDenied)
	_, err = c.CreateHubToken(ctx, &hubhooksv1.CreateHubTokenRequest{HubId: "hub-a"}, bearer(adminToken))
	wantCode(t, "CreateHubToken with the admin token", err, codes.Unimplemented) // reaches the (test) service
}

// TestRefusalsAreSampled: a flood of refused tokens is a few log lines
// that count the refusals, not a line each.
func TestRefusalsAreSampled(t *testing.T) {
	s := startServer(t, adminToken, nil)
	c := dial(t, s.addr)
	ctx := callCtx(t)
	for range 200 {
		_, err := c.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: "hub-a"}, bearer("hht_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
		wantCode(t, "unknown token", err, codes.Unauthenticated)
	}
	lines := strings.Count(s.logs.String(), "reason="+auth.RefusalUnknownToken)
	if lines == 0 || lines > 3 {
		t.Fatalf("%d log lines for 200 refused calls, want 1 to 3:\n%s", lines, s.logs.String())
	}
}
