package configsvc_test

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hubhooks/hubhooks/pkg/configcache"
	"github.com/hubhooks/hubhooks/pkg/poll"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// changeLog records OnChange calls.
type changeLog struct {
	mu  sync.Mutex
	got []string // "hub:oldVersion->newVersion", old -1 when nil
}

func (l *changeLog) record(old, new *hubhooksv1.HubConfig) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ov := int64(-1)
	if old != nil {
		ov = old.GetVersion()
	}
	l.got = append(l.got, new.GetHubId()+":"+itoa(ov)+"->"+itoa(new.GetVersion()))
}

func (l *changeLog) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, g := range l.got {
		if g == s {
			return true
		}
	}
	return false
}

func itoa(v int64) string {
	if v < 0 {
		return "nil"
	}
	return strconv.FormatInt(v, 10)
}

func TestConfigCache(t *testing.T) {
	e := newEnv(t)
	a := e.startServer(t, "")
	ctx := ctxT(t)
	mustEnable := func(c hubhooksv1.ConfigServiceClient, hub string, on bool) *hubhooksv1.HubConfig {
		t.Helper()
		cfg, err := c.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: hub, Enabled: on})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	mustEnable(a.client, "c1", true)
	if _, err := a.client.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "c2", Url: "https://example.com/c2"}); err != nil {
		t.Fatal(err)
	}

	cache, err := configcache.New(dial(t, a.addr), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	log := &changeLog{}
	cache.OnChange(log.record)
	if cache.Ready() {
		t.Fatal("ready before Run")
	}
	runCtx, cancel := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- cache.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-runDone; err != nil {
			t.Errorf("cache Run: %v", err)
		}
	})
	if err := cache.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if c1, ok := cache.Get("c1"); !ok || !c1.GetEventsEnabled() || c1.GetVersion() != 1 {
		t.Fatalf("Get(c1) = %v, %v", c1, ok)
	}
	if c2, ok := cache.Get("c2"); !ok || len(c2.GetCallbackUrls()) != 1 {
		t.Fatalf("Get(c2) = %v, %v", c2, ok)
	}
	if _, ok := cache.Get("nobody"); ok {
		t.Fatal("Get of an unconfigured hub found something")
	}
	if !log.has("c1:nil->1") || !log.has("c2:nil->1") {
		t.Fatalf("OnChange calls = %v", log.got)
	}

	// Live change.
	mustEnable(a.client, "c1", false)
	poll.Until(t, 5*time.Second, "c1 v2 in the cache", func() bool { c, _ := cache.Get("c1"); return c.GetVersion() == 2 })
	poll.Until(t, time.Second, "OnChange c1 1->2", func() bool { return log.has("c1:1->2") })

	// Fetch falls back to GetHubConfig when the cache is behind (here: a
	// cache that is not running at all).
	cold, err := configcache.New(a.client, nil)
	if err != nil {
		t.Fatal(err)
	}
	coldLog := &changeLog{}
	cold.OnChange(coldLog.record)
	if _, ok := cold.Get("c1"); ok {
		t.Fatal("cold cache has c1")
	}
	got, err := cold.Fetch(ctx, "c1", 2)
	if err != nil || got.GetVersion() != 2 {
		t.Fatalf("Fetch = %v, %v", got, err)
	}
	if c, ok := cold.Get("c1"); !ok || c.GetVersion() != 2 || !coldLog.has("c1:nil->2") {
		t.Fatalf("Fetch did not store its answer: %v %v %v", c, ok, coldLog.got)
	}
	mustEnable(a.client, "c1", true) // v3
	if got, err = cold.Fetch(ctx, "c1", 2); err != nil || got.GetVersion() != 2 {
		t.Fatalf("Fetch(min 2) = %v, %v; want the cached v2", got, err)
	}
	if got, err = cold.Fetch(ctx, "c1", 3); err != nil || got.GetVersion() != 3 {
		t.Fatalf("Fetch(min 3) = %v, %v; want v3 from configsvc", got, err)
	}
	if got, err = cold.Fetch(ctx, "nobody", 0); err != nil || got.GetVersion() != 0 || got.GetHubId() != "nobody" {
		t.Fatalf("Fetch(unconfigured) = %v, %v", got, err)
	}
	if _, ok := cold.Get("nobody"); ok {
		t.Fatal("Fetch stored an unconfigured hub")
	}
	poll.Until(t, 5*time.Second, "c1 v3 in the running cache", func() bool { c, _ := cache.Get("c1"); return c.GetVersion() == 3 })

	// The server goes away; meanwhile c1 changes through another replica and
	// c2 disappears (its data lost). After the restart the cache applies the
	// new snapshot and reports both.
	a.stop()
	poll.Until(t, 5*time.Second, "cache disconnected", func() bool { return !cache.Connected() })
	b := e.startServer(t, "")
	mustEnable(b.client, "c1", false) // v4
	if err := e.rdb.Del(ctx, e.prefix+"{cfg}:hub:c2").Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.SRem(ctx, e.prefix+"{cfg}:hubs", "c2").Err(); err != nil {
		t.Fatal(err)
	}
	if !cache.Ready() {
		t.Fatal("cache stopped being ready while disconnected")
	}
	if c, _ := cache.Get("c1"); c.GetVersion() != 3 {
		t.Fatalf("cache changed while disconnected: %v", c)
	}
	e.startServer(t, a.addr) // restart on the same address
	poll.Until(t, 15*time.Second, "c1 v4 after reconnect", func() bool { c, _ := cache.Get("c1"); return c.GetVersion() == 4 })
	poll.Until(t, time.Second, "c2 gone", func() bool { _, ok := cache.Get("c2"); return !ok })
	poll.Until(t, time.Second, "OnChange for both", func() bool { return log.has("c1:3->4") && log.has("c2:1->0") })
	if c, _ := cache.Get("c1"); c.GetEventsEnabled() {
		t.Fatal("c1 should be disabled after reconnect")
	}
}
