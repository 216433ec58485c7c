package expander_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/pkg/configcache"
	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/natstest"
	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/redistest"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/expander"
)

// The real cache satisfies the expander's interface.
var _ expander.ConfigLookup = (*configcache.Cache)(nil)

// configs is a small in-test ConfigLookup: cache is what Get sees (it may
// lag), truth is what configsvc would answer to Fetch.
type configs struct {
	mu      sync.Mutex
	cache   map[string]*hubhooksv1.HubConfig
	truth   map[string]*hubhooksv1.HubConfig
	fetches atomic.Int64
	panicOn string
	gate    func(hub string)
}

func newConfigs() *configs {
	return &configs{cache: map[string]*hubhooksv1.HubConfig{}, truth: map[string]*hubhooksv1.HubConfig{}}
}

// set stores cfg both in the cache and in configsvc.
func (c *configs) set(cfg *hubhooksv1.HubConfig) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cache[cfg.GetHubId()] = cfg
	c.truth[cfg.GetHubId()] = cfg
}

// setTruth changes configsvc only: the cache lags.
func (c *configs) setTruth(cfg *hubhooksv1.HubConfig) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.truth[cfg.GetHubId()] = cfg
}

func (c *configs) Get(hub string) (*hubhooksv1.HubConfig, bool) {
	c.mu.Lock()
	gate := c.gate
	panicOn := c.panicOn
	cfg, ok := c.cache[hub]
	c.mu.Unlock()
	if panicOn != "" && hub == panicOn {
		panic("config lookup exploded")
	}
	if gate != nil {
		gate(hub)
	}
	return cfg, ok
}

// setPanicOn makes Get panic for hub.
func (c *configs) setPanicOn(hub string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.panicOn = hub
}

// setGate makes Get call fn first (to hold an event in flight).
func (c *configs) setGate(fn func(hub string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gate = fn
}

func (c *configs) Fetch(_ context.Context, hub string, minVersion int64) (*hubhooksv1.HubConfig, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cfg, ok := c.cache[hub]; ok && cfg.GetVersion() >= minVersion {
		return cfg, nil
	}
	c.fetches.Add(1)
	cfg, ok := c.truth[hub]
	if !ok {
		return &hubhooksv1.HubConfig{HubId: hub}, nil
	}
	c.cache[hub] = cfg
	return cfg, nil
}

func (c *configs) Ready() bool                         { return true }
func (c *configs) WaitReady(ctx context.Context) error { return ctx.Err() }

func hubConfig(hub string, version int64, enabled bool, urlIDs ...string) *hubhooksv1.HubConfig {
	cfg := &hubhooksv1.HubConfig{HubId: hub, EventsEnabled: enabled, Version: version, Secret: "whsec_x"}
	for _, id := range urlIDs {
		cfg.CallbackUrls = append(cfg.CallbackUrls, &hubhooksv1.CallbackUrl{Id: id, Url: "https://example.com/" + id})
	}
	return cfg
}

type env struct {
	js    jetstream.JetStream
	nc    *nats.Conn
	cfgs  *configs
	reg   *prometheus.Registry
	svc   *expander.Service
	stop  func()
	cfg   expander.Config
	rules *cascade.Rules
	seen  *expander.RedisSeen
}

// start runs an expander on a fresh embedded JetStream, remembering the
// events it expanded in the real Redis under a prefix of its own.
func start(t *testing.T, cfg expander.Config) *env {
	t.Helper()
	_, nc, js := natstest.Start(t)
	e := &env{js: js, nc: nc, cfgs: newConfigs(), cfg: cfg, rules: cascade.Default(), seen: newSeen(t)}
	e.run(t)
	return e
}

func newSeen(t *testing.T) *expander.RedisSeen {
	t.Helper()
	rdb, prefix := redistest.New(t)
	seen, err := expander.NewSeen(rdb, prefix, expander.DefaultSeenWindow)
	if err != nil {
		t.Fatal(err)
	}
	return seen
}

// run starts a new Service instance on e's server.
func (e *env) run(t *testing.T) {
	t.Helper()
	e.reg = prometheus.NewRegistry()
	cfg := e.cfg
	cfg.Registerer = e.reg
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	svc, err := expander.New(cfg, e.js, e.cfgs, e.seen, e.rules)
	if err != nil {
		t.Fatalf("expander.New: %v", err)
	}
	e.svc = svc
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	stopped := false
	e.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}
	t.Cleanup(e.stop)
	poll.Until(t, 10*time.Second, "expander ready", func() bool { return svc.Ready(context.Background()) == nil })
}

// idle waits until the expander consumer has acknowledged every event.
func (e *env) idle(t *testing.T) {
	t.Helper()
	poll.Until(t, 15*time.Second, "expander idle", func() bool {
		c, err := e.js.Consumer(context.Background(), eventbus.StreamEvents, eventbus.ConsumerExpander)
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return false
		}
		s, err := e.js.Stream(context.Background(), eventbus.StreamEvents)
		if err != nil {
			return false
		}
		sinfo, err := s.Info(context.Background())
		if err != nil {
			return false
		}
		return info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= sinfo.State.LastSeq
	})
}

// streamMsgs returns every message stored in a stream.
func streamMsgs(t *testing.T, js jetstream.JetStream, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	if info.State.Msgs == 0 {
		return nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("get %s/%d: %v", stream, seq, err)
		}
		out = append(out, m)
	}
	return out
}

// jobs returns the delivery jobs of hub, live or in its overflow shard, in
// stream order.
func jobs(t *testing.T, js jetstream.JetStream, hub string) []*deliveryv1.DeliveryJob {
	t.Helper()
	var out []*deliveryv1.DeliveryJob
	for _, m := range streamMsgs(t, js, eventbus.StreamDeliveries) {
		if h, _, ok := eventbus.HubOfDeliverySubject(m.Subject); !ok || h != hub {
			continue
		}
		batch, err := eventbus.DecodeJobs(nats.Header(m.Header), m.Data)
		if err != nil {
			t.Fatalf("decode job: %v", err)
		}
		out = append(out, batch...)
	}
	return out
}

// metric returns the value of a counter (or a histogram's count) with the given labels.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := true
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				match = match && found
			}
			if match {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				if m.GetHistogram() != nil {
					return float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	return 0
}

// gauge returns the value of a gauge without labels.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}
