package auth_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/hubhooks/hubhooks/pkg/auth"
	"github.com/hubhooks/hubhooks/pkg/daemon"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// TestRefusalsCounted: a flood of refused calls is one log line
// per reason and interval (saying how many were refused since the last
// line) and every refusal is counted by reason; no token is logged.
func TestRefusalsCounted(t *testing.T) {
	store, _ := newStore(t)
	logs := &syncBuffer{}
	var mu sync.Mutex
	counted := map[string]int{}
	const every = 2 * time.Second
	a, err := auth.New(auth.Config{AdminToken: adminToken, Tokens: store, RefusalLogInterval: every,
		Log: slog.New(slog.NewTextHandler(logs, nil)),
		Refused: func(reason string) {
			mu.Lock()
			counted[reason]++
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	srv := daemon.NewGRPCServer(daemon.GRPCConfig{Log: slog.New(slog.DiscardHandler),
		Unary: []grpc.UnaryServerInterceptor{a.Unary()}, Stream: []grpc.StreamServerInterceptor{a.Stream()}})
	hubhooksv1.RegisterConfigServiceServer(srv, testConfigServer{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ServeListener(ctx, lis, time.Second) }()
	t.Cleanup(func() { cancel(); <-done })
	c := dial(t, lis.Addr().String())

	lines := func(reason string) []string {
		var out []string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "grpc call refused") && strings.Contains(l, "reason="+reason) {
				out = append(out, l)
			}
		}
		return out
	}
	const flood = 40
	start := time.Now()
	for i := range flood {
		_, err := c.GetHubConfig(callCtx(t), &hubhooksv1.GetHubConfigRequest{HubId: "h"}, bearer("hht_guess"+strings.Repeat("x", i)))
		wantCode(t, "unknown token", err, codes.Unauthenticated)
	}
	for range 3 {
		_, err := c.GetHubConfig(callCtx(t), &hubhooksv1.GetHubConfigRequest{HubId: "h"})
		wantCode(t, "no token", err, codes.Unauthenticated)
	}
	// One line per reason and interval begun: one, unless the calls took
	// longer than the interval on a loaded machine.
	most := 1 + int(time.Since(start)/every)
	if got := lines(auth.RefusalUnknownToken); len(got) < 1 || len(got) > most {
		t.Fatalf("%d refused calls with unknown tokens gave %d log lines, want 1 to %d:\n%s", flood, len(got), most, logs.String())
	}
	if got := lines(auth.RefusalMissing); len(got) < 1 || len(got) > most {
		t.Fatalf("3 calls without a token gave %d log lines, want 1 to %d", len(got), most)
	}
	mu.Lock()
	if counted[auth.RefusalUnknownToken] != flood || counted[auth.RefusalMissing] != 3 {
		t.Errorf("counted %v, want %d %s and 3 %s", counted, flood, auth.RefusalUnknownToken, auth.RefusalMissing)
	}
	mu.Unlock()

	// After the interval the next refusal is logged with the count of
	// those not logged.
	time.Sleep(every)
	_, err = c.GetHubConfig(callCtx(t), &hubhooksv1.GetHubConfigRequest{HubId: "h"}, bearer("hht_guess-again"))
	wantCode(t, "unknown token", err, codes.Unauthenticated)
	got := lines(auth.RefusalUnknownToken)
	if most == 1 && (len(got) != 2 || !strings.Contains(got[1], "refused_since_last_line=39")) {
		t.Fatalf("after the interval: lines %q, want a second one with refused_since_last_line=39", got)
	}
	if strings.Contains(logs.String(), "hht_guess") {
		t.Fatalf("a token appears in the logs:\n%s", logs.String())
	}
}
