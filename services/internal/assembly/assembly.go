// Package assembly builds the parts every hubhooks binary is made of from
// its settings: logger, metrics, health, NATS and Redis connections, the
// authenticated gRPC server, the config cache, the URL guard, the webhook
// client and the cascade rules. The per-service mains and the all-in-one
// hubd call it, so each part is built one way only.
package assembly

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/hubhooks/hubhooks/pkg/auth"
	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/pkg/configcache"
	"github.com/hubhooks/hubhooks/pkg/daemon"
	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/urlguard"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/configsvc/hubconfig"
	"github.com/hubhooks/hubhooks/services/deliverer/deliver"
	"github.com/hubhooks/hubhooks/services/expander/expand"
	"github.com/hubhooks/hubhooks/services/internal/settings"
	"github.com/hubhooks/hubhooks/services/logger/eventlog"
	"github.com/hubhooks/hubhooks/services/logger/eventlog/logstore"
)

// Parts holds what a binary is assembled from.
type Parts struct {
	Name     string
	S        *settings.Settings
	Log      *slog.Logger
	Registry *prometheus.Registry
	Health   *daemon.Health
}

// New parses settings and builds logging, metrics and health.
func New(name string, args []string, d settings.Defaults) (*Parts, error) {
	s, err := settings.Parse(name, args, d)
	if err != nil {
		return nil, err
	}
	return FromSettings(name, s), nil
}

// FromSettings is New for settings built by the caller (tests, hubd).
func FromSettings(name string, s *settings.Settings) *Parts {
	return &Parts{
		Name:     name,
		S:        s,
		Log:      daemon.NewLogger(name, s.LogLevel, s.LogFormat),
		Registry: daemon.NewRegistry(),
		Health:   daemon.NewHealth(),
	}
}

// StreamOptions are the JetStream stream options from the settings.
func (p *Parts) StreamOptions() eventbus.Options {
	return eventbus.Options{Replicas: p.S.StreamReplicas, DuplicateWindow: p.S.DedupeWindow, EventsMaxAge: p.S.EventsMaxAge, EventsMaxBytes: p.S.EventsMaxBytes}
}

// NATS connects to url with endless reconnects and registers a readiness check.
func (p *Parts) NATS(url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := daemon.ConnectNATS(url, "hubhooks-"+p.Name, p.Log, opts...)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	p.Health.Add("nats", func(context.Context) error {
		if !nc.IsConnected() {
			return errors.New("nats: " + nc.Status().String())
		}
		return nil
	})
	return nc, js, nil
}

// Redis connects (waiting while Redis does not answer) and registers a readiness check.
func (p *Parts) Redis(ctx context.Context) (*redis.Client, error) {
	rdb, err := daemon.ConnectRedis(ctx, p.S.RedisURL, p.Log)
	if err != nil {
		return nil, err
	}
	p.Health.Add("redis", func(ctx context.Context) error { return rdb.Ping(ctx).Err() })
	return rdb, nil
}

// GRPCServer builds the gRPC server with health, reflection, authentication
// (admin token, hub tokens from tokens, or loopback-only) and optional TLS.
func (p *Parts) GRPCServer(tokens *auth.TokenStore) (*daemon.GRPCServer, error) {
	authn, err := auth.New(auth.Config{AdminToken: p.S.AdminToken, Tokens: tokens, Log: p.Log})
	if err != nil {
		return nil, err
	}
	authn.Warn()
	cfg := daemon.GRPCConfig{
		Log:    p.Log,
		Unary:  []grpc.UnaryServerInterceptor{authn.Unary()},
		Stream: []grpc.StreamServerInterceptor{authn.Stream()},
	}
	if p.S.TLSCert != "" {
		creds, err := auth.ServerTLS(p.S.TLSCert, p.S.TLSKey, p.S.TLSClientCA)
		if err != nil {
			return nil, err
		}
		cfg.Options = append(cfg.Options, grpc.Creds(creds))
	}
	return daemon.NewGRPCServer(cfg), nil
}

// TokenStore is the hub-token store on Redis.
func (p *Parts) TokenStore(rdb *redis.Client) (*auth.TokenStore, error) {
	return auth.NewTokenStore(rdb, p.S.RedisPrefix)
}

// DialConfig opens a client connection to configsvc at addr, authenticated
// with the admin token when one is set, over TLS when a CA is given.
func (p *Parts) DialConfig(addr string) (*grpc.ClientConn, error) {
	var opts []grpc.DialOption
	if p.S.TLSCA != "" {
		creds, err := auth.ClientTLS(p.S.TLSCA, p.S.TLSCert, p.S.TLSKey, "")
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithTransportCredentials(creds))
	} else {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if p.S.AdminToken != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(auth.BearerCredentials(p.S.AdminToken)))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial configsvc %s: %w", addr, err)
	}
	return conn, nil
}

// ConfigCache builds the config cache over conn and registers its readiness.
func (p *Parts) ConfigCache(conn *grpc.ClientConn) (*configcache.Cache, error) {
	c, err := configcache.New(hubhooksv1.NewConfigServiceClient(conn), p.Log)
	if err != nil {
		return nil, err
	}
	p.Health.Add("configcache", func(context.Context) error {
		if !c.Ready() {
			return errors.New("config cache has no snapshot yet")
		}
		return nil
	})
	return c, nil
}

// Guard is the URL guard from HUBHOOKS_ALLOWED_CIDRS and HUBHOOKS_HTTPS_ONLY.
func (p *Parts) Guard() (*urlguard.Guard, error) {
	return urlguard.New(urlguard.WithAllowedCIDRs(p.S.AllowedCIDRs...), urlguard.WithHTTPSOnly(p.S.HTTPSOnly))
}

// Sender is the webhook client every POST goes through.
func (p *Parts) Sender(g *urlguard.Guard) (*webhook.Client, error) {
	opts := []webhook.ClientOption{webhook.WithGuard(g)}
	if p.S.WebhookTimeout > 0 {
		opts = append(opts, webhook.WithTimeout(p.S.WebhookTimeout))
	}
	return webhook.NewClient(opts...)
}

// Rules are the cascade rules: HUBHOOKS_RULES_FILE or the built-in table.
func (p *Parts) Rules() (*cascade.Rules, error) {
	if p.S.RulesFile == "" {
		return cascade.Default(), nil
	}
	f, err := os.Open(p.S.RulesFile)
	if err != nil {
		return nil, fmt.Errorf("rules file: %w", err)
	}
	defer f.Close()
	r, err := cascade.Load(f)
	if err != nil {
		return nil, fmt.Errorf("rules file %s: %w", p.S.RulesFile, err)
	}
	return r, nil
}

// ServeHTTP serves metrics and health on lis (nil: the HTTP address) until ctx ends.
func (p *Parts) ServeHTTP(ctx context.Context, lis net.Listener) error {
	return daemon.ServeHTTP(ctx, daemon.HTTPConfig{Addr: p.S.HTTPAddr, Listener: lis, Registry: p.Registry, Health: p.Health, Pprof: p.S.Pprof, Log: p.Log})
}

// ConfigSvcConfig is configsvc's config from the settings.
func (p *Parts) ConfigSvcConfig(rules *cascade.Rules) hubconfig.Config {
	return hubconfig.Config{
		RedisPrefix: p.S.RedisPrefix, SecretGrace: p.S.SecretGrace, Registerer: p.Registry, Log: p.Log.With("component", "configsvc"),
		Rules: rules, StreamOptions: p.StreamOptions(),
	}
}

// ExpanderConfig is the expander's config from the settings.
func (p *Parts) ExpanderConfig() expand.Config {
	return expand.Config{
		Registerer: p.Registry, Log: p.Log.With("component", "expander"), StreamOptions: p.StreamOptions(),
		MaxEventBytes: p.S.MaxEventBytes,
	}
}

// DelivererConfig is the deliverer's config from the settings; rdb (the
// deliverer's Redis, which holds the event log too) lets it ask the log
// whether a job delivered again was already attempted.
func (p *Parts) DelivererConfig(rdb *redis.Client) deliver.Config {
	var recorded func(ctx context.Context, hub string, ids []string, attempts []int32) ([]bool, error)
	if log, err := logstore.New(rdb, logstore.Options{Prefix: p.S.RedisPrefix}); err == nil {
		recorded = log.RecordedAll
	}
	return deliver.Config{
		Recorded:    recorded,
		RedisPrefix: p.S.RedisPrefix, Schedule: p.S.RetrySchedule, Registerer: p.Registry, Log: p.Log.With("component", "deliverer"),
		StreamOptions: p.StreamOptions(), ShutdownTimeout: p.S.ShutdownTimeout,
		Concurrency: p.S.DeliverConcurrency, PerURLConcurrency: p.S.PerURLConcurrency, PerHubConcurrency: p.S.PerHubConcurrency,
		BreakerFailures: p.S.BreakerFailures, BreakerCooldown: p.S.BreakerCooldown, MaxRetryAfter: p.S.MaxRetryAfter,
		HoldLimit: p.S.HoldLimit,
	}
}

// LoggerConfig is the logger's config from the settings.
func (p *Parts) LoggerConfig() eventlog.Config {
	return eventlog.Config{
		RedisPrefix: p.S.RedisPrefix, Registerer: p.Registry, Log: p.Log.With("component", "logger"), StreamOptions: p.StreamOptions(),
		Retention: p.S.LogRetention, MaxEntriesPerHub: p.S.LogMaxEntriesPerHub,
	}
}

// Infra is a binary's connections to NATS (and Redis, when it uses it).
type Infra struct {
	NC    *nats.Conn
	JS    jetstream.JetStream
	Redis *redis.Client
}

// Connect connects to the NATS of the settings and, with withRedis, to
// Redis; both wait and reconnect rather than fail on an outage.
func (p *Parts) Connect(ctx context.Context, withRedis bool) (*Infra, error) {
	nc, js, err := p.NATS(p.S.NATSURL)
	if err != nil {
		return nil, err
	}
	in := &Infra{NC: nc, JS: js}
	if withRedis {
		if in.Redis, err = p.Redis(ctx); err != nil {
			nc.Close()
			return nil, err
		}
	}
	return in, nil
}

// Close drains NATS and closes Redis.
func (in *Infra) Close() {
	DrainNATS(in.NC)
	if in.Redis != nil {
		_ = in.Redis.Close()
	}
}

// Main runs a binary: run gets a context that ends on SIGINT or SIGTERM and
// the command-line arguments; an error is printed as "<name>: <err>" and
// exits 1.
func Main(name string, run func(ctx context.Context, args []string) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		stop()
		os.Exit(1)
	}
}

// DrainNATS drains nc — pending acks and publishes are flushed — waiting
// at most 5 s, then closes it.
func DrainNATS(nc *nats.Conn) {
	if err := nc.Drain(); err == nil {
		for deadline := time.Now().Add(5 * time.Second); !nc.IsClosed() && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
	}
	nc.Close()
}

// WatchedConfig dials configsvc and builds the config cache the expander and
// deliverer read hub configuration from; close releases the connection.
func (p *Parts) WatchedConfig() (cache *configcache.Cache, closeConn func(), err error) {
	conn, err := p.DialConfig(p.S.ConfigAddr)
	if err != nil {
		return nil, nil, err
	}
	if cache, err = p.ConfigCache(conn); err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return cache, func() { _ = conn.Close() }, nil
}

// RunWorker runs work (a consumer that drains when ctx ends) with the
// config cache watching until work has returned, and the HTTP server.
func (p *Parts) RunWorker(ctx context.Context, cache *configcache.Cache, work func(context.Context) error) error {
	cacheCtx, stopCache := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCache()
	var g errgroup.Group
	g.Go(func() error { _ = cache.Run(cacheCtx); return nil })
	g.Go(func() error { defer stopCache(); return work(ctx) })
	g.Go(func() error { return p.ServeHTTP(ctx, nil) })
	return g.Wait()
}

// RunServer serves gs on the gRPC address with work running beside it,
// and the HTTP server, until ctx ends.
func (p *Parts) RunServer(ctx context.Context, gs *daemon.GRPCServer, work func(context.Context) error) error {
	var g errgroup.Group
	g.Go(func() error { return gs.Serve(ctx, p.S.GRPCAddr, p.S.ShutdownTimeout) })
	g.Go(func() error { return work(ctx) })
	g.Go(func() error { return p.ServeHTTP(ctx, nil) })
	return g.Wait()
}
