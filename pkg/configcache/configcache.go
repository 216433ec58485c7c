package configcache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/metadata"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// SnapshotCountHeader is the WatchHubConfig response header that says how
// many messages form the initial snapshot.
const SnapshotCountHeader = "x-hubhooks-snapshot-count"

// Errors of the cache.
var (
	// ErrNoSnapshotCount: the server did not send a valid snapshot-count header.
	ErrNoSnapshotCount = errors.New("watch stream without " + SnapshotCountHeader + " header")
)

// Backoff bounds of Run's reconnects.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// Cache is an in-memory copy of every hub's configuration. It is safe for
// concurrent use. The configs it returns are shared: never modify them.
type Cache struct {
	client hubhooksv1.ConfigServiceClient
	log    *slog.Logger

	mu    sync.RWMutex
	hubs  map[string]*hubhooksv1.HubConfig
	ready chan struct{}
	once  sync.Once

	cbMu        sync.Mutex
	callbacks   []func(old, new *hubhooksv1.HubConfig)
	queue       []change
	dispatching bool

	connected atomic.Bool
}

type change struct{ old, new *hubhooksv1.HubConfig }

// New returns a Cache that reads from client. log nil means slog.Default().
func New(client hubhooksv1.ConfigServiceClient, log *slog.Logger) (*Cache, error) {
	if client == nil {
		return nil, errors.New("configcache: nil ConfigService client")
	}
	if log == nil {
		log = slog.Default()
	}
	return &Cache{client: client, log: log, hubs: map[string]*hubhooksv1.HubConfig{}, ready: make(chan struct{})}, nil
}

// Run keeps the cache current with WatchHubConfig(all=true), reconnecting
// with exponential backoff (100ms to 5s, with jitter) whenever the stream
// ends, until ctx ends; then it returns nil.
func (c *Cache) Run(ctx context.Context) error {
	delay := minBackoff
	for ctx.Err() == nil {
		gotSnapshot, err := c.watch(ctx)
		c.connected.Store(false)
		if ctx.Err() != nil {
			break
		}
		if gotSnapshot {
			delay = minBackoff
		}
		c.log.Warn("config watch stream ended; reconnecting", "err", err, "in", delay)
		t := time.NewTimer(delay/2 + rand.N(delay/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(delay*2, maxBackoff)
	}
	return nil
}

// watch runs one WatchHubConfig stream; it reports whether the snapshot was
// applied.
func (c *Cache) watch(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.client.WatchHubConfig(ctx, &hubhooksv1.WatchHubConfigRequest{All: true})
	if err != nil {
		return false, fmt.Errorf("open watch: %w", err)
	}
	md, err := stream.Header()
	if err != nil {
		return false, fmt.Errorf("watch header: %w", err)
	}
	n, err := snapshotCount(md)
	if err != nil {
		// A stream that ends before its header carries the reason in its status.
		if _, rerr := stream.Recv(); rerr != nil && !errors.Is(rerr, io.EOF) {
			return false, fmt.Errorf("open watch: %w", rerr)
		}
		return false, err
	}
	snap := make([]*hubhooksv1.HubConfig, 0, n)
	for len(snap) < n {
		cfg, err := stream.Recv()
		if err != nil {
			return false, fmt.Errorf("receive snapshot (%d of %d): %w", len(snap), n, err)
		}
		snap = append(snap, cfg)
	}
	c.applySnapshot(snap)
	c.connected.Store(true)
	c.once.Do(func() { close(c.ready) })
	c.log.Info("config cache snapshot applied", "hubs", n)
	for {
		cfg, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("server closed the stream")
			}
			return true, fmt.Errorf("receive change: %w", err)
		}
		c.apply(cfg)
	}
}

func snapshotCount(md metadata.MD) (int, error) {
	vs := md.Get(SnapshotCountHeader)
	if len(vs) != 1 {
		return 0, ErrNoSnapshotCount
	}
	n, err := strconv.Atoi(vs[0])
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: %q", ErrNoSnapshotCount, vs[0])
	}
	return n, nil
}

// Ready reports whether the initial snapshot has been received.
func (c *Cache) Ready() bool {
	select {
	case <-c.ready:
		return true
	default:
		return false
	}
}

// Connected reports whether the watch stream is up and its snapshot applied.
func (c *Cache) Connected() bool { return c.connected.Load() }

// WaitReady blocks until the initial snapshot has been received or ctx ends.
func (c *Cache) WaitReady(ctx context.Context) error {
	select {
	case <-c.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for config snapshot: %w", ctx.Err())
	}
}

// Get returns the cached configuration of hubID. Once the cache is Ready, a
// hub that is not cached has never been configured (it reads as disabled
// with no URLs). The value is shared: never modify it.
func (c *Cache) Get(hubID string) (*hubhooksv1.HubConfig, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	cfg, ok := c.hubs[hubID]
	return cfg, ok
}

// Len returns how many hubs are cached.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.hubs)
}

// Fetch returns the cached configuration of hubID when its version is at
// least minVersion; otherwise it asks configsvc (GetHubConfig), stores the
// answer in the cache and returns it. A hub never configured comes back
// with version 0 and is not stored. The value is shared: never modify it.
func (c *Cache) Fetch(ctx context.Context, hubID string, minVersion int64) (*hubhooksv1.HubConfig, error) {
	if cfg, ok := c.Get(hubID); ok && cfg.GetVersion() >= minVersion {
		return cfg, nil
	}
	cfg, err := c.client.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: hubID})
	if err != nil {
		return nil, fmt.Errorf("fetch config of hub %s: %w", hubID, err)
	}
	if cfg.GetVersion() == 0 {
		return cfg, nil
	}
	return c.apply(cfg), nil
}

// OnChange registers fn, called for every applied change with the previous
// and the new configuration: old is nil for a hub first seen; new is the
// unconfigured value (hub_id only, version 0) for a hub that disappeared
// (its data was lost from configsvc's store). Calls are serial, in the
// order changes were applied, and may run on the goroutine of Run or of a
// Fetch; fn may call Get and Fetch but should return quickly.
func (c *Cache) OnChange(fn func(old, new *hubhooksv1.HubConfig)) {
	c.cbMu.Lock()
	defer c.cbMu.Unlock()
	c.callbacks = append(c.callbacks, fn)
}

// apply stores cfg if it is newer than the cached version and returns the
// cached value afterwards.
func (c *Cache) apply(cfg *hubhooksv1.HubConfig) *hubhooksv1.HubConfig {
	c.mu.Lock()
	old, ok := c.hubs[cfg.GetHubId()]
	if ok && old.GetVersion() >= cfg.GetVersion() {
		c.mu.Unlock()
		return old
	}
	c.hubs[cfg.GetHubId()] = cfg
	c.enqueue(change{old: old, new: cfg})
	c.mu.Unlock()
	c.dispatch()
	return cfg
}

// applySnapshot makes snap the whole truth: every hub whose version differs
// is replaced (a snapshot may carry a lower version after the store lost
// data), hubs missing from snap are removed.
func (c *Cache) applySnapshot(snap []*hubhooksv1.HubConfig) {
	c.mu.Lock()
	seen := make(map[string]bool, len(snap))
	for _, cfg := range snap {
		id := cfg.GetHubId()
		seen[id] = true
		old, ok := c.hubs[id]
		if ok && old.GetVersion() == cfg.GetVersion() {
			continue
		}
		c.hubs[id] = cfg
		c.enqueue(change{old: old, new: cfg})
	}
	for id, old := range c.hubs {
		if !seen[id] {
			delete(c.hubs, id)
			c.enqueue(change{old: old, new: &hubhooksv1.HubConfig{HubId: id}})
		}
	}
	c.mu.Unlock()
	c.dispatch()
}

// enqueue queues a change for the callbacks; c.mu is held, so the queue
// order is the order of application.
func (c *Cache) enqueue(ch change) {
	c.cbMu.Lock()
	c.queue = append(c.queue, ch)
	c.cbMu.Unlock()
}

// dispatch runs queued callbacks unless another goroutine already does;
// that one drains the queue, so calls stay serial and a callback may call
// Fetch without deadlocking.
func (c *Cache) dispatch() {
	c.cbMu.Lock()
	if c.dispatching {
		c.cbMu.Unlock()
		return
	}
	c.dispatching = true
	for len(c.queue) > 0 {
		ch := c.queue[0]
		c.queue = c.queue[1:]
		cbs := c.callbacks
		c.cbMu.Unlock()
		for _, fn := range cbs {
			fn(ch.old, ch.new)
		}
		c.cbMu.Lock()
	}
	c.dispatching = false
	c.cbMu.Unlock()
}
