package configsvc_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hubhooks/hubhooks/pkg/poll"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/configsvc"
)

// watch opens a WatchHubConfig stream and returns it with its snapshot.
func watch(t *testing.T, ctx context.Context, c hubhooksv1.ConfigServiceClient, req *hubhooksv1.WatchHubConfigRequest) (grpc.ServerStreamingClient[hubhooksv1.HubConfig], []*hubhooksv1.HubConfig) {
	t.Helper()
	st, err := c.WatchHubConfig(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	md, err := st.Header()
	if err != nil {
		t.Fatal(err)
	}
	vs := md.Get(configsvc.SnapshotCountHeader)
	if len(vs) != 1 {
		t.Fatalf("header %s = %v", configsvc.SnapshotCountHeader, vs)
	}
	n, err := strconv.Atoi(vs[0])
	if err != nil {
		t.Fatal(err)
	}
	snap := make([]*hubhooksv1.HubConfig, 0, n)
	for range n {
		cfg, err := st.Recv()
		if err != nil {
			t.Fatalf("snapshot: %v", err)
		}
		snap = append(snap, cfg)
	}
	return st, snap
}

// recvUntil receives until a config of hub with at least version arrives.
func recvUntil(t *testing.T, st grpc.ServerStreamingClient[hubhooksv1.HubConfig], hub string, version int64) *hubhooksv1.HubConfig {
	t.Helper()
	for {
		cfg, err := st.Recv()
		if err != nil {
			t.Fatalf("waiting for %s v%d: %v", hub, version, err)
		}
		if cfg.GetHubId() == hub && cfg.GetVersion() >= version {
			return cfg
		}
	}
}

func TestWatchHubConfig(t *testing.T) {
	e := newEnv(t)
	a := e.startServer(t, "")
	b := e.startServer(t, "") // a second replica on the same prefix
	ctx := ctxT(t)
	for _, h := range []string{"w1", "w2"} {
		if _, err := a.client.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: h, Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}

	all, snap := watch(t, ctx, b.client, &hubhooksv1.WatchHubConfigRequest{All: true})
	if len(snap) != 2 || snap[0].GetHubId() != "w1" || snap[1].GetHubId() != "w2" || !snap[0].GetEventsEnabled() {
		t.Fatalf("all snapshot = %v", snap)
	}
	one, snap1 := watch(t, ctx, b.client, &hubhooksv1.WatchHubConfigRequest{HubId: "w2"})
	if len(snap1) != 1 || snap1[0].GetHubId() != "w2" || snap1[0].GetVersion() != 1 {
		t.Fatalf("one-hub snapshot = %v", snap1)
	}
	fresh, snap2 := watch(t, ctx, b.client, &hubhooksv1.WatchHubConfigRequest{HubId: "fresh"})
	if len(snap2) != 1 || snap2[0].GetVersion() != 0 || snap2[0].GetSecret() != "" {
		t.Fatalf("never-configured snapshot = %v", snap2)
	}
	if _, err := b.client.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: "fresh"}); err != nil {
		t.Fatal(err)
	}

	// Changes made through replica a reach the watchers of replica b: the
	// disabling of triggers and the removal of a URL are config changes too.
	cfg, err := a.client.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "w2", Url: "https://example.com/h"})
	if err != nil {
		t.Fatal(err)
	}
	if got := recvUntil(t, all, "w2", cfg.GetVersion()); len(got.GetCallbackUrls()) != 1 {
		t.Fatalf("all watcher got %v", got)
	}
	if got := recvUntil(t, one, "w2", cfg.GetVersion()); len(got.GetCallbackUrls()) != 1 {
		t.Fatalf("one-hub watcher got %v", got)
	}
	if _, err := a.client.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: "w1", Enabled: false}); err != nil {
		t.Fatal(err)
	}
	if got := recvUntil(t, all, "w1", 2); got.GetEventsEnabled() {
		t.Fatalf("all watcher got %v, want triggers disabled", got)
	}
	if _, err := a.client.RemoveCallbackUrl(ctx, &hubhooksv1.RemoveCallbackUrlRequest{HubId: "w2", Url: "https://example.com/h"}); err != nil {
		t.Fatal(err)
	}
	if got := recvUntil(t, one, "w2", 3); len(got.GetCallbackUrls()) != 0 {
		t.Fatalf("one-hub watcher got %v, want the URL removed", got)
	}
	// The one-hub watcher of "fresh" sees its first write, and nothing of w1/w2.
	if _, err := a.client.GenerateSecret(ctx, &hubhooksv1.GenerateSecretRequest{HubId: "fresh"}); err != nil {
		t.Fatal(err)
	}
	got, err := fresh.Recv()
	if err != nil || got.GetHubId() != "fresh" || got.GetVersion() != 1 {
		t.Fatalf("fresh watcher got %v, %v", got, err)
	}
	if v := counter(t, b, "hubhooks_configsvc_watchers", ""); v != 3 {
		t.Fatalf("watchers gauge = %v, want 3", v)
	}
}

// serviceClient is a Redis client of its own for a service, without
// transparent retries, named so that the test can kill its connections.
func serviceClient(t *testing.T, name string) func(*configsvc.Config, *redis.Client) *redis.Client {
	return func(_ *configsvc.Config, base *redis.Client) *redis.Client {
		opts := *base.Options()
		opts.MaxRetries = -1
		opts.ClientName = name
		rdb := redis.NewClient(&opts)
		t.Cleanup(func() { _ = rdb.Close() })
		return rdb
	}
}

func killClients(t *testing.T, rdb *redis.Client, name string) int {
	t.Helper()
	ctx := context.Background()
	list, err := rdb.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, line := range strings.Split(list, "\n") {
		if !strings.Contains(line, " name="+name+" ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if id, ok := strings.CutPrefix(f, "id="); ok {
				n, _ := strconv.ParseInt(id, 10, 64)
				if err := rdb.ClientKillByFilter(ctx, "ID", strconv.FormatInt(n, 10)).Err(); err == nil {
					killed++
				}
			}
		}
	}
	return killed
}

func TestWatchResendsSnapshotWhenFeedReaderLosesItsPlace(t *testing.T) {
	e := newEnv(t)
	name := "hubconfig-test-" + strings.TrimSuffix(strings.TrimPrefix(e.prefix, "hhtest:"), ":")
	s := e.startServer(t, "", serviceClient(t, name))
	ctx := ctxT(t)
	for _, h := range []string{"r1", "r2"} {
		if _, err := s.client.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: h, Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	st, snap := watch(t, ctx, s.client, &hubhooksv1.WatchHubConfigRequest{All: true})
	if len(snap) != 2 {
		t.Fatalf("snapshot = %v", snap)
	}
	// Kill the service's connections until the feed reader notices: a
	// connection killed while it sits idle in the pool (between two XREADs)
	// is replaced by go-redis's health check without an error, and then
	// nothing is lost; on a busy machine that happens.
	before := counter(t, s, "hubhooks_configsvc_feed_resyncs_total", "")
	for attempt := 0; ; attempt++ {
		if killClients(t, e.rdb, name) == 0 {
			t.Fatal("no service connection to kill")
		}
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) && counter(t, s, "hubhooks_configsvc_feed_resyncs_total", "") == before {
			time.Sleep(20 * time.Millisecond)
		}
		if counter(t, s, "hubhooks_configsvc_feed_resyncs_total", "") > before {
			break
		}
		if attempt == 10 {
			t.Fatal("the feed reader never noticed its connection was killed")
		}
	}
	// With no config change at all, the watcher gets both hubs again.
	seen := map[string]bool{}
	for len(seen) < 2 {
		cfg, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		seen[cfg.GetHubId()] = true
	}
	poll.Until(t, 5*time.Second, "ready again", func() bool { return s.svc.Ready(ctx) == nil })
	// And live changes still flow afterwards.
	if _, err := s.client.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: "r1", Enabled: false}); err != nil {
		t.Fatal(err)
	}
	if got := recvUntil(t, st, "r1", 2); got.GetEventsEnabled() {
		t.Fatalf("got %v", got)
	}
}

func TestWatchEndsWhenStoreWasReset(t *testing.T) {
	e := newEnv(t)
	s := e.startServer(t, "", func(c *configsvc.Config, r *redis.Client) *redis.Client {
		c.EpochCheck = 50 * time.Millisecond
		return r
	})
	ctx := ctxT(t)
	st, _ := watch(t, ctx, s.client, &hubhooksv1.WatchHubConfigRequest{All: true})
	// Redis losing its data looks like a new epoch.
	if err := e.rdb.Del(ctx, e.prefix+"{cfg}:epoch").Err(); err != nil {
		t.Fatal(err)
	}
	_, err := st.Recv()
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "reset") {
		t.Fatalf("Recv = %v, want UNAVAILABLE (store reset)", err)
	}
	// A new watcher is accepted afterwards.
	if _, snap := watch(t, ctx, s.client, &hubhooksv1.WatchHubConfigRequest{All: true}); len(snap) != 0 {
		t.Fatalf("snapshot after reset = %v", snap)
	}
}

func TestWatchEndsOnShutdown(t *testing.T) {
	e := newEnv(t)
	s := e.startServer(t, "")
	ctx := ctxT(t)
	st, _ := watch(t, ctx, s.client, &hubhooksv1.WatchHubConfigRequest{HubId: "x"})
	done := make(chan error, 1)
	go func() { _, err := st.Recv(); done <- err }()
	s.stop()
	select {
	case err := <-done:
		if c := status.Code(err); c != codes.Unavailable {
			t.Fatalf("Recv after shutdown = %v, want UNAVAILABLE", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch stream still open after Run ended")
	}
}
