package configsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// URLChecker validates callback URLs; *urlguard.Guard implements it. It is
// called concurrently.
type URLChecker interface {
	// CheckURL returns raw parsed, or an error saying why it is refused.
	CheckURL(raw string) (*url.URL, error)
}

// TokenStore keeps hub-scoped bearer tokens (pkg/auth implements it). It is
// called concurrently. Errors that mean "no such token" must wrap
// ErrTokenNotFound or have a method NotFound() bool returning true; gRPC
// status errors are passed to the caller unchanged.
type TokenStore interface {
	// Create makes a token for hubID and returns its value (shown once) and
	// its description.
	Create(ctx context.Context, hubID, description string) (token string, info *hubhooksv1.HubToken, err error)
	// Revoke revokes a token of hubID named by its value or its id (exactly one is set).
	Revoke(ctx context.Context, hubID, token, id string) error
	// List describes hubID's tokens, without their values.
	List(ctx context.Context, hubID string) ([]*hubhooksv1.HubToken, error)
}

// Change kinds, the label of hubhooks_configsvc_config_changes_total and the
// "kind" of feed entries.
const (
	KindEventsEnabled   = "events_enabled"
	KindURLAdded        = "url_added"
	KindURLRemoved      = "url_removed"
	KindSecretGenerated = "secret_generated"
	KindURLConfigured   = "url_configured"
	KindURLUpdated      = "url_updated"
	KindHubDeleted      = "hub_deleted"
)

// Service is the configsvc: the ConfigService gRPC API over the Redis store,
// and the change-feed reader that feeds WatchHubConfig streams.
type Service struct {
	cfg    Config
	log    *slog.Logger
	store  *Store
	js     jetstream.JetStream
	guard  URLChecker
	sender webhook.Sender
	tokens TokenStore
	rules  RuleLister
	types  map[string]bool
	broker *broker

	streamsReady atomic.Bool
	feedHealthy  atomic.Bool

	changes    *prometheus.CounterVec
	testEvents *prometheus.CounterVec
	resyncs    prometheus.Counter
}

// New builds a Service. Every dependency is required.
func New(cfg Config, rdb redis.UniversalClient, js jetstream.JetStream, guard URLChecker, sender webhook.Sender, tokens TokenStore) (*Service, error) {
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if rdb == nil {
		errs = append(errs, errors.New("nil redis client"))
	}
	if js == nil {
		errs = append(errs, errors.New("nil jetstream"))
	}
	if guard == nil {
		errs = append(errs, errors.New("nil url checker"))
	}
	if sender == nil {
		errs = append(errs, errors.New("nil webhook sender"))
	}
	if tokens == nil {
		errs = append(errs, errors.New("nil token store"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("configsvc: %w", err)
	}
	cfg = cfg.withDefaults()
	if cfg.Rules == nil {
		cfg.Rules = cascade.Default()
	}
	store, err := NewStore(rdb, cfg.RedisPrefix, cfg.FeedMaxLen, cfg.Now)
	if err != nil {
		return nil, fmt.Errorf("configsvc: %w", err)
	}
	s := &Service{
		cfg: cfg, log: cfg.Log, store: store, js: js, guard: guard, sender: sender, tokens: tokens,
		rules: cfg.Rules, types: map[string]bool{},
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubhooks_configsvc_config_changes_total",
			Help: "Hub configuration changes written, by kind.",
		}, []string{"kind"}),
		testEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubhooks_configsvc_test_events_total",
			Help: "Test events sent with SendTestEvent, by result (succeeded, failed).",
		}, []string{"result"}),
		resyncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_configsvc_feed_resyncs_total",
			Help: "Times the change-feed reader lost its place and re-sent snapshots to watchers.",
		}),
	}
	gauge := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "hubhooks_configsvc_watchers",
		Help: "Open WatchHubConfig streams.",
	})
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hubhooks_configsvc_watchers_dropped_total",
		Help: "WatchHubConfig streams ended by the server, by reason (slow, reset, shutdown).",
	}, []string{"reason"})
	for _, c := range []prometheus.Collector{s.changes, s.testEvents, s.resyncs, gauge, dropped} {
		if err := cfg.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("configsvc: register metrics: %w", err)
		}
	}
	for _, k := range []string{KindEventsEnabled, KindURLAdded, KindURLRemoved, KindSecretGenerated, KindURLConfigured, KindURLUpdated, KindHubDeleted} {
		s.changes.WithLabelValues(k)
	}
	for _, st := range []hubhooksv1.DeliveryStatus{hubhooksv1.StatusSucceeded, hubhooksv1.StatusFailed} {
		s.testEvents.WithLabelValues(st.APIName())
	}
	s.broker = newBroker(gauge, dropped)
	for _, t := range s.rules.EventTypes().GetWebhookEventTypes() {
		s.types[t] = true
	}
	return s, nil
}

// Register registers the ConfigService on s (a *grpc.Server, or anything
// embedding one).
func (s *Service) Register(r grpc.ServiceRegistrar) {
	hubhooksv1.RegisterConfigServiceServer(r, &grpcServer{svc: s})
}

// Ready reports nil when the service can serve every method: the attempts
// stream is ensured and the change-feed reader is running (it reads Redis,
// so it stops being healthy when Redis does not answer). Redis itself is
// checked once per process (assembly's "redis" check).
func (s *Service) Ready(context.Context) error {
	if !s.streamsReady.Load() {
		return errors.New("configsvc: jetstream streams not ensured yet")
	}
	if !s.broker.isRunning() || !s.feedHealthy.Load() {
		return errors.New("configsvc: change feed reader not running")
	}
	return nil
}

// Run ensures the JetStream streams, then reads the change feed and fans it
// out to the WatchHubConfig streams until ctx ends. At the end it closes
// every watch stream with UNAVAILABLE (so clients reconnect to another
// replica and a graceful gRPC stop is not held up) and returns nil.
func (s *Service) Run(ctx context.Context) error {
	if err := eventbus.Ensure(ctx, s.js, eventbus.AttemptsStreamConfig(s.cfg.StreamOptions), eventbus.OpsStreamConfig(s.cfg.StreamOptions)); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("configsvc: %w", err)
	}
	s.streamsReady.Store(true)

	// Establish the feed position before accepting watchers, so that no
	// change between a watcher's snapshot and the first read is missed.
	var epoch, lastID string
	for b := newBackoff(); ; {
		var err error
		if epoch, err = s.store.Epoch(ctx); err == nil {
			lastID, err = s.store.FeedLastID(ctx)
		}
		if err == nil {
			break
		}
		if !b.wait(ctx) {
			return nil
		}
		s.log.Warn("cannot read config change feed position; retrying", "err", err)
	}
	s.broker.start()
	s.feedHealthy.Store(true)
	defer s.broker.stop(status.Error(codes.Unavailable, "configsvc is shutting down; reconnect"))
	defer s.feedHealthy.Store(false)

	const batch = 512
	lost := false
	b := newBackoff()
	nextEpochCheck := time.Now().Add(s.cfg.EpochCheck)
	for ctx.Err() == nil {
		entries, err := s.store.ReadFeed(ctx, lastID, s.cfg.FeedBlock, batch)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if !lost {
				s.log.Warn("config change feed read failed; will re-send snapshots when Redis is back", "err", err)
			}
			lost = true
			s.feedHealthy.Store(false)
			b.wait(ctx)
			continue
		}
		resync := lost
		if !resync && len(entries) == batch {
			// Reading full batches: make sure the feed was not trimmed past us.
			if resync, err = s.store.FeedTrimmedAfter(ctx, lastID); err != nil {
				lost = true
				b.wait(ctx)
				continue
			}
		}
		if resync || time.Now().After(nextEpochCheck) {
			e, err := s.store.Epoch(ctx)
			if err != nil {
				lost = true
				b.wait(ctx)
				continue
			}
			nextEpochCheck = time.Now().Add(s.cfg.EpochCheck)
			if e != epoch {
				// Redis lost its data: versions may restart, so clients
				// must replace their state rather than apply by version.
				s.resyncs.Inc()
				s.log.Warn("config store was reset (Redis lost its data); disconnecting watchers so they take a fresh snapshot")
				epoch, lastID = e, "0-0"
				s.broker.dropAll("reset", status.Error(codes.Unavailable, "config store was reset; reconnect for a fresh snapshot"))
				lost = false
				s.feedHealthy.Store(true)
				continue
			}
			if resync {
				s.resyncs.Inc()
				s.log.Info("config change feed resumed; re-sending snapshots to watchers")
				s.broker.resync()
			}
			lost = false
			s.feedHealthy.Store(true)
		}
		b.reset()
		if len(entries) == 0 {
			continue
		}
		if err := s.fanOut(ctx, entries); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("loading changed configs failed; retrying", "err", err)
				b.wait(ctx)
			}
			continue // lastID not advanced: the same entries are read again
		}
		lastID = entries[len(entries)-1].ID
	}
	return nil
}

// fanOut loads the current configs of the hubs named by entries and hands
// them to the watchers.
func (s *Service) fanOut(ctx context.Context, entries []FeedEntry) error {
	seen := map[string]bool{}
	var ids []string
	for _, e := range entries {
		if e.HubID != "" && !seen[e.HubID] {
			seen[e.HubID] = true
			ids = append(ids, e.HubID)
		}
	}
	cfgs, err := s.store.GetMany(ctx, ids)
	if err != nil {
		return err
	}
	s.broker.publish(cfgs)
	return nil
}

// mutate writes one change of a hub: fn changes a private copy; the first
// write of a hub gives it a secret, and every write drops expired previous
// secrets.
func (s *Service) mutate(ctx context.Context, hubID, kind string, fn func(next *hubhooksv1.HubConfig, now time.Time) (bool, error)) (*hubhooksv1.HubConfig, error) {
	now := s.cfg.Now()
	cfg, wrote, err := s.store.Update(ctx, hubID, kind, func(next *hubhooksv1.HubConfig) (bool, error) {
		changed, err := fn(next, now)
		if err != nil {
			return false, err
		}
		if changed || next.GetVersion() == 0 {
			if next.Secret == "" {
				next.Secret = webhook.NewSecret()
			}
			keep := next.PreviousSecrets[:0]
			for _, p := range next.PreviousSecrets {
				if p.GetExpiresAt().AsTime().After(now) && len(keep) < s.cfg.MaxPreviousSecrets {
					keep = append(keep, p)
				}
			}
			next.PreviousSecrets = keep
			changed = true
		}
		return changed, nil
	})
	if err != nil {
		return nil, err
	}
	if wrote {
		s.changes.WithLabelValues(kind).Inc()
		s.log.Info("hub config changed", "hub_id", hubID, "kind", kind, "version", cfg.GetVersion())
	}
	return cfg, nil
}

// backoff is an exponential delay from 100ms to 5s.
type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{d: 100 * time.Millisecond} }

func (b *backoff) reset() { b.d = 100 * time.Millisecond }

// wait sleeps the current delay and doubles it; false when ctx ended.
func (b *backoff) wait(ctx context.Context) bool {
	t := time.NewTimer(b.d)
	defer t.Stop()
	b.d = min(b.d*2, 5*time.Second)
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
