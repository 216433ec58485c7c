package configcache_test

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/hubhooks/hubhooks/pkg/configcache"
	"github.com/hubhooks/hubhooks/pkg/poll"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

func TestNewRejectsNilClient(t *testing.T) {
	if _, err := configcache.New(nil, nil); err == nil {
		t.Fatal("New(nil) succeeded")
	}
}

// session is one scripted WatchHubConfig stream.
type session struct {
	header *int // nil: no snapshot-count header
	snap   []*hubhooksv1.HubConfig
	live   chan *hubhooksv1.HubConfig // closed: the stream ends
}

// scripted serves WatchHubConfig from sessions in order and GetHubConfig from get.
type scripted struct {
	hubhooksv1.UnimplementedConfigServiceServer
	sessions chan *session
	mu       sync.Mutex
	get      map[string]*hubhooksv1.HubConfig
}

func (s *scripted) WatchHubConfig(req *hubhooksv1.WatchHubConfigRequest, st grpc.ServerStreamingServer[hubhooksv1.HubConfig]) error {
	if !req.GetAll() {
		panic("cache must watch all hubs")
	}
	var sess *session
	select {
	case sess = <-s.sessions:
	case <-st.Context().Done():
		return st.Context().Err()
	}
	md := metadata.MD{}
	if sess.header != nil {
		md.Set(configcache.SnapshotCountHeader, strconv.Itoa(*sess.header))
	}
	if err := st.SendHeader(md); err != nil {
		return err
	}
	for _, c := range sess.snap {
		if err := st.Send(c); err != nil {
			return err
		}
	}
	for c := range sess.live {
		if err := st.Send(c); err != nil {
			return err
		}
	}
	return nil
}

func (s *scripted) GetHubConfig(_ context.Context, req *hubhooksv1.GetHubConfigRequest) (*hubhooksv1.HubConfig, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.get[req.GetHubId()]; ok {
		return c, nil
	}
	return &hubhooksv1.HubConfig{HubId: req.GetHubId()}, nil
}

func startScripted(t *testing.T) (*scripted, hubhooksv1.ConfigServiceClient) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &scripted{sessions: make(chan *session, 10), get: map[string]*hubhooksv1.HubConfig{}}
	gs := grpc.NewServer()
	hubhooksv1.RegisterConfigServiceServer(gs, srv)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return srv, hubhooksv1.NewConfigServiceClient(conn)
}

func hc(hub string, v int64) *hubhooksv1.HubConfig {
	return &hubhooksv1.HubConfig{HubId: hub, Version: v}
}

func intp(n int) *int { return &n }

func version(c *configcache.Cache, hub string) int64 {
	cfg, ok := c.Get(hub)
	if !ok {
		return -1
	}
	return cfg.GetVersion()
}

func TestCacheAppliesByVersionAndReplacesOnReconnect(t *testing.T) {
	srv, client := startScripted(t)
	cache, err := configcache.New(client, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var changes []string
	cache.OnChange(func(old, new *hubhooksv1.HubConfig) {
		// A callback may call Fetch and Get without deadlocking.
		_, _ = cache.Fetch(context.Background(), new.GetHubId(), 0)
		mu.Lock()
		defer mu.Unlock()
		o := "nil"
		if old != nil {
			o = strconv.FormatInt(old.GetVersion(), 10)
		}
		changes = append(changes, new.GetHubId()+":"+o+"->"+strconv.FormatInt(new.GetVersion(), 10))
	})
	has := func(s string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range changes {
			if c == s {
				return true
			}
		}
		return false
	}

	// A stream without the header is not trusted; the cache reconnects.
	bad := &session{live: make(chan *hubhooksv1.HubConfig)}
	close(bad.live)
	srv.sessions <- bad
	live1 := make(chan *hubhooksv1.HubConfig, 10)
	srv.sessions <- &session{header: intp(2), snap: []*hubhooksv1.HubConfig{hc("a", 3), hc("b", 1)}, live: live1}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cache.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := cache.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	if version(cache, "a") != 3 || version(cache, "b") != 1 {
		t.Fatalf("after snapshot: a v%d b v%d", version(cache, "a"), version(cache, "b"))
	}

	// Live changes apply by version: older and equal ones are ignored.
	live1 <- hc("a", 2)
	live1 <- hc("a", 3)
	live1 <- hc("a", 4)
	live1 <- hc("c", 1)
	poll.Until(t, 10*time.Second, "c v1", func() bool { return version(cache, "c") == 1 })
	if version(cache, "a") != 4 || has("a:3->2") || !has("a:3->4") || !has("c:nil->1") {
		t.Fatalf("a v%d, changes %v", version(cache, "a"), changes)
	}

	// Reconnect: the new snapshot is the whole truth. b changed, c is gone.
	live2 := make(chan *hubhooksv1.HubConfig)
	defer close(live2)
	srv.sessions <- &session{header: intp(2), snap: []*hubhooksv1.HubConfig{hc("a", 4), hc("b", 2)}, live: live2}
	close(live1)
	poll.Until(t, 10*time.Second, "b v2", func() bool { return version(cache, "b") == 2 })
	poll.Until(t, 10*time.Second, "c gone", func() bool { return version(cache, "c") == -1 })
	poll.Until(t, 10*time.Second, "OnChange", func() bool { return has("b:1->2") && has("c:1->0") })
	if has("a:4->4") {
		t.Fatal("unchanged hub reported")
	}
	if !cache.Ready() || cache.Len() != 2 {
		t.Fatalf("ready %v, len %d", cache.Ready(), cache.Len())
	}
}
