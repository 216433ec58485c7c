// Package assembly builds the parts every hubhooks binary is made of from
// its settings: logger, metrics, health, NATS and Redis connections, the
// authenticated gRPC server, the config cache, the URL guard, the webhook
// client and the cascade rules. The per-service mains and the all-in-one
// hubd call it, so each part is built one way only.
package assembly

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
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
	"github.com/hubhooks/hubhooks/pkg/tracing"
	"github.com/hubhooks/hubhooks/pkg/urlguard"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/configsvc"
	"github.com/hubhooks/hubhooks/services/deliverer"
	"github.com/hubhooks/hubhooks/services/expander"
	"github.com/hubhooks/hubhooks/services/gateway"
	"github.com/hubhooks/hubhooks/services/internal/natsauth"
	"github.com/hubhooks/hubhooks/services/internal/settings"
	"github.com/hubhooks/hubhooks/services/internal/urlhealth"
	"github.com/hubhooks/hubhooks/services/logger"
	"github.com/hubhooks/hubhooks/services/logger/logstore"
	"github.com/hubhooks/hubhooks/services/operations"
)

// Parts holds what a binary is assembled from.
type Parts struct {
	Name     string
	Settings *settings.Settings
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
		Settings: s,
		Log:      daemon.NewLogger(name, s.LogLevel, s.LogFormat),
		Registry: daemon.NewRegistry(),
		Health:   daemon.NewHealth(),
	}
}

// StreamOptions are the JetStream stream options from the settings.
func (p *Parts) StreamOptions() eventbus.Options {
	return eventbus.Options{Replicas: p.Settings.StreamReplicas, DuplicateWindow: p.Settings.DedupeWindow, EventsMaxAge: p.Settings.EventsMaxAge, EventsMaxBytes: p.Settings.EventsMaxBytes}
}

// NATS connects to url with endless reconnects and registers a readiness
// check. opts authenticate (NATSCredentials, or hubd's in-process ones);
// replies arrive on the binary's own inbox (natsauth.InboxPrefix), which
// no other identity may read.
func (p *Parts) NATS(url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	opts = append(opts, nats.CustomInboxPrefix(natsauth.InboxPrefix(natsauth.Role(p.Name))))
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
	p.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hubhooks_nats_connected",
		Help: "1 while the process is connected to NATS, 0 while it waits to reconnect.",
	}, func() float64 { return boolGauge(nc.IsConnected()) }))
	return nc, js, nil
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// WatchLag exports the backlog of the durable consumers the binary reads
// (hubhooks_consumer_pending_messages and ..._ack_pending_messages). Call
// it once per process.
func (p *Parts) WatchLag(js jetstream.JetStream, consumers ...eventbus.ConsumerRef) error {
	c, err := eventbus.NewLagCollector(js, consumers...)
	if err != nil {
		return err
	}
	return p.Registry.Register(c)
}

// NATSCredentials are the options that authenticate this binary to an
// external NATS: a credentials file (HUBHOOKS_NATS_CREDS) or a user and
// password (HUBHOOKS_NATS_USER, HUBHOOKS_NATS_PASSWORD), and TLS with
// HUBHOOKS_NATS_TLS_CA (a client certificate with HUBHOOKS_NATS_TLS_CERT
// and _KEY). None when nothing is set: credentials in HUBHOOKS_NATS_URL
// still apply.
func (p *Parts) NATSCredentials() ([]nats.Option, error) {
	s := p.Settings
	var opts []nats.Option
	switch {
	case s.NATSCreds != "":
		if _, err := os.Stat(s.NATSCreds); err != nil {
			return nil, fmt.Errorf("nats credentials file: %w", err)
		}
		opts = append(opts, nats.UserCredentials(s.NATSCreds))
	case s.NATSUser != "":
		opts = append(opts, nats.UserInfo(s.NATSUser, s.NATSPassword))
	}
	if s.NATSTLSCA != "" {
		opts = append(opts, nats.RootCAs(s.NATSTLSCA))
	}
	if s.NATSTLSCert != "" {
		opts = append(opts, nats.ClientCert(s.NATSTLSCert, s.NATSTLSKey))
	}
	return opts, nil
}

// Redis connects (waiting while Redis does not answer) and registers a readiness check.
func (p *Parts) Redis(ctx context.Context) (redis.UniversalClient, error) {
	rdb, err := daemon.ConnectRedis(ctx, p.Settings.Redis(), p.Log)
	if err != nil {
		return nil, err
	}
	p.Health.Add("redis", func(ctx context.Context) error { return rdb.Ping(ctx).Err() })
	p.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hubhooks_redis_up",
		Help: "1 when Redis answered a PING at scrape time (within 1s), 0 when it did not.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return boolGauge(rdb.Ping(ctx).Err() == nil)
	}))
	return rdb, nil
}

// GRPCServer builds the gRPC server with health, reflection, authentication
// (admin token, hub tokens from tokens, or loopback-only) and optional TLS.
func (p *Parts) GRPCServer(tokens *auth.TokenStore) (*daemon.GRPCServer, error) {
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hubhooks_grpc_calls_refused_total",
		Help: "gRPC calls refused by authentication, by reason (malformed, not_loopback, missing, unknown_token); the log has at most one line per reason every 10s.",
	}, []string{"reason"})
	for _, r := range []string{auth.RefusalMalformed, auth.RefusalNotLoopback, auth.RefusalMissing, auth.RefusalUnknownToken} {
		refused.WithLabelValues(r)
	}
	p.Registry.MustRegister(refused)
	authn, err := auth.New(auth.Config{
		AdminToken: p.Settings.AdminToken, Tokens: tokens, Log: p.Log,
		MaxStreamsPerToken: p.Settings.MaxStreamsPerToken, MaxStreamsPerConn: p.Settings.MaxStreamsPerConn,
		Refused: func(reason string) { refused.WithLabelValues(reason).Inc() },
	})
	if err != nil {
		return nil, err
	}
	authn.Warn()
	cfg := daemon.GRPCConfig{
		Log:       p.Log,
		Unary:     []grpc.UnaryServerInterceptor{authn.Unary()},
		Stream:    []grpc.StreamServerInterceptor{authn.Stream()},
		Companion: authn.Run,
	}
	if p.Settings.TLSCert != "" {
		creds, err := auth.ServerTLS(p.Settings.TLSCert, p.Settings.TLSKey, p.Settings.TLSClientCA)
		if err != nil {
			return nil, err
		}
		cfg.Options = append(cfg.Options, grpc.Creds(creds))
	}
	return daemon.NewGRPCServer(cfg), nil
}

// TokenStore is the hub-token store on Redis.
func (p *Parts) TokenStore(rdb redis.UniversalClient) (*auth.TokenStore, error) {
	return auth.NewTokenStore(rdb, p.Settings.RedisPrefix)
}

// DialConfig opens a client connection to configsvc at addr, authenticated
// with the admin token when one is set, over TLS when a CA is given.
func (p *Parts) DialConfig(addr string) (*grpc.ClientConn, error) {
	opts, err := p.transport()
	if err != nil {
		return nil, err
	}
	if p.Settings.AdminToken != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(auth.BearerCredentials(p.Settings.AdminToken)))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial configsvc %s: %w", addr, err)
	}
	return conn, nil
}

// DialGateway opens the HTTP gateway's client connection to a gRPC server
// at addr (hubd's own, configsvc or the logger), over TLS when a CA is
// given, with no credentials of its own: each call carries its caller's
// token. Responses may be as large as a log entry with every attempt.
func (p *Parts) DialGateway(addr string) (*grpc.ClientConn, error) {
	opts, err := p.transport()
	if err != nil {
		return nil, err
	}
	opts = append(opts, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return conn, nil
}

// transport is the dial option of the transport: TLS with HUBHOOKS_TLS_CA
// (and the client certificate, for mTLS) when the CA is set, else plain.
func (p *Parts) transport() ([]grpc.DialOption, error) {
	if p.Settings.TLSCA == "" {
		return []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, nil
	}
	creds, err := auth.ClientTLS(p.Settings.TLSCA, p.Settings.TLSCert, p.Settings.TLSKey, "")
	if err != nil {
		return nil, err
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(creds)}, nil
}

// Gateway builds the HTTP/JSON API and console over config and logs (see
// DialGateway), refusing other machines when no admin token is set.
func (p *Parts) Gateway(config, logs grpc.ClientConnInterface) (*gateway.Gateway, error) {
	return gateway.New(gateway.Config{
		LoopbackOnly: p.Settings.AdminToken == "", ShutdownTimeout: p.Settings.ShutdownTimeout,
		Log: p.Log.With("component", "gateway"),
	}, config, logs)
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

// StartTracing sets up OpenTelemetry tracing from the settings (OTLP to
// HUBHOOKS_OTLP_ENDPOINT; nothing when it is unset) before the parts that
// trace are built. stop flushes the spans; call it at exit.
func (p *Parts) StartTracing(ctx context.Context) (stop func(), err error) {
	shutdown, err := tracing.Setup(ctx, tracing.Config{
		Endpoint: p.Settings.OTLPEndpoint, Insecure: p.Settings.OTLPInsecure, Service: p.Name, SampleRatio: p.Settings.TraceSampleRatio,
	})
	if err != nil {
		return nil, err
	}
	if p.Settings.OTLPEndpoint != "" {
		p.Log.Info("tracing on", "otlp_endpoint", p.Settings.OTLPEndpoint, "sample_ratio", p.Settings.TraceSampleRatio)
	}
	return func() {
		if err := shutdown(context.Background()); err != nil {
			p.Log.Warn("tracing: flush at exit", "err", err)
		}
	}, nil
}

// Guard is the URL guard from HUBHOOKS_ALLOWED_CIDRS and HUBHOOKS_HTTPS_ONLY.
func (p *Parts) Guard() (*urlguard.Guard, error) {
	return urlguard.New(urlguard.WithAllowedCIDRs(p.Settings.AllowedCIDRs...), urlguard.WithHTTPSOnly(p.Settings.HTTPSOnly))
}

// Sender is the webhook client every POST goes through.
func (p *Parts) Sender(g *urlguard.Guard) (*webhook.Client, error) {
	opts := []webhook.ClientOption{webhook.WithGuard(g)}
	if tracing.Enabled() {
		opts = append(opts, webhook.WithTracing())
	}
	if p.Settings.WebhookTimeout > 0 {
		opts = append(opts, webhook.WithTimeout(p.Settings.WebhookTimeout))
	}
	return webhook.NewClient(opts...)
}

// Rules are the cascade rules: HUBHOOKS_RULES_FILE or the built-in table.
func (p *Parts) Rules() (*cascade.Rules, error) {
	if p.Settings.RulesFile == "" {
		return cascade.Default(), nil
	}
	f, err := os.Open(p.Settings.RulesFile)
	if err != nil {
		return nil, fmt.Errorf("rules file: %w", err)
	}
	defer f.Close()
	r, err := cascade.Load(f)
	if err != nil {
		return nil, fmt.Errorf("rules file %s: %w", p.Settings.RulesFile, err)
	}
	return r, nil
}

// ServeHTTP serves metrics and health on lis (nil: the HTTP address) until ctx ends.
func (p *Parts) ServeHTTP(ctx context.Context, lis net.Listener) error {
	return daemon.ServeHTTP(ctx, daemon.HTTPConfig{Addr: p.Settings.HTTPAddr, Listener: lis, Registry: p.Registry, Health: p.Health, Pprof: p.Settings.Pprof, Log: p.Log})
}

// ConfigSvcConfig is configsvc's config from the settings.
func (p *Parts) ConfigSvcConfig(rules *cascade.Rules) configsvc.Config {
	return configsvc.Config{
		RedisPrefix: p.Settings.RedisPrefix, SecretGrace: p.Settings.SecretGrace, Registerer: p.Registry, Log: p.Log.With("component", "configsvc"),
		Rules: rules, StreamOptions: p.StreamOptions(), TestEventsPerMinute: p.Settings.TestEventsPerMinute,
	}
}

// ExpansionLimits bound what one domain event may expand into, for the
// expander and for replays.
func (p *Parts) ExpansionLimits() expander.Limits {
	return expander.Limits{MaxWebhooks: p.Settings.MaxWebhooksPerEvent, MaxWebhookBytes: p.Settings.MaxWebhookBytes, MaxTotalBytes: p.Settings.MaxExpansionBytes}
}

// ExpanderConfig is the expander's config from the settings.
func (p *Parts) ExpanderConfig() expander.Config {
	return expander.Config{
		Registerer: p.Registry, Log: p.Log.With("component", "expander"), StreamOptions: p.StreamOptions(),
		MaxEventBytes: p.Settings.MaxEventBytes, ReadAheadBytes: p.Settings.ReadAheadBytes, Limits: p.ExpansionLimits(),
	}
}

// Expander builds the expander over the connections given; it remembers
// the domain events it expanded in rdb for HUBHOOKS_SEEN_WINDOW.
func (p *Parts) Expander(js jetstream.JetStream, rdb redis.UniversalClient, configs expander.ConfigLookup, rules *cascade.Rules) (*expander.Service, error) {
	seen, err := expander.NewSeen(rdb, p.Settings.RedisPrefix, p.Settings.SeenWindow)
	if err != nil {
		return nil, err
	}
	return expander.New(p.ExpanderConfig(), js, configs, seen, rules)
}

// DelivererConfig is the deliverer's config from the settings.
func (p *Parts) DelivererConfig() deliverer.Config {
	return deliverer.Config{
		RedisPrefix: p.Settings.RedisPrefix, Schedule: p.Settings.RetrySchedule, Registerer: p.Registry, Log: p.Log.With("component", "deliverer"),
		StreamOptions: p.StreamOptions(), ShutdownTimeout: p.Settings.ShutdownTimeout,
		Concurrency: p.Settings.DeliverConcurrency, PerURLConcurrency: p.Settings.PerURLConcurrency, AdaptiveConcurrency: p.Settings.AdaptiveConcurrency, BacklogBrake: p.Settings.BacklogBrake, PerHubConcurrency: p.Settings.PerHubConcurrency,
		BreakerFailures: p.Settings.BreakerFailures, BreakerCooldown: p.Settings.BreakerCooldown, MaxRetryAfter: p.Settings.MaxRetryAfter,
		HoldLimit: p.Settings.HoldLimit, RedisWaitReplicas: p.Settings.RedisWaitReplicas, RedisWaitTimeout: p.Settings.RedisWaitTimeout,
	}
}

// Deliverer builds the deliverer over the connections given. It asks the
// event log on rdb (the logger's store, read only) which attempts are
// recorded already.
func (p *Parts) Deliverer(js jetstream.JetStream, rdb redis.UniversalClient, configs deliverer.ConfigSource, sender webhook.Sender) (*deliverer.Service, error) {
	eventLog, err := logstore.New(rdb, logstore.Options{Prefix: p.Settings.RedisPrefix})
	if err != nil {
		return nil, fmt.Errorf("deliverer: event log: %w", err)
	}
	return deliverer.New(p.DelivererConfig(), js, rdb, configs, eventLog, sender)
}

// LoggerConfig is the logger's config from the settings.
func (p *Parts) LoggerConfig() logger.Config {
	return logger.Config{
		RedisPrefix: p.Settings.RedisPrefix, Registerer: p.Registry, Log: p.Log.With("component", "logger"), StreamOptions: p.StreamOptions(),
		Retention: p.Settings.LogRetention, MaxEntriesPerHub: p.Settings.LogMaxEntriesPerHub, MaxBytesPerHub: p.Settings.LogMaxBytesPerHub,
		RedisWaitReplicas: p.Settings.RedisWaitReplicas, RedisWaitTimeout: p.Settings.RedisWaitTimeout,
	}
}

// OperationsConfig is the OperationsService's config from the settings.
func (p *Parts) OperationsConfig() operations.Config {
	return operations.Config{
		BulkRate: float64(p.Settings.BulkRate), BulkMaxBacklog: p.Settings.BulkMaxBacklog, MaxEventBytes: p.Settings.MaxEventBytes, ExpansionLimits: p.ExpansionLimits(),
		AutoDisableAfter: p.Settings.AutoDisableAfter, AutoDisableOff: p.Settings.AutoDisableAfter == 0,
		StreamOptions: p.StreamOptions(), Registerer: p.Registry, Log: p.Log.With("component", "operations"),
	}
}

// Operations builds the OperationsService over the connections given: the
// event log it reads (log), configsvc (configs) and Redis (the URL health
// the deliverer notes).
func (p *Parts) Operations(js jetstream.JetStream, rdb redis.UniversalClient, log operations.LogStore, configs operations.Configs, rules *cascade.Rules) (*operations.Service, error) {
	health, err := urlhealth.New(rdb, p.Settings.RedisPrefix)
	if err != nil {
		return nil, err
	}
	return operations.New(p.OperationsConfig(), js, log, configs, health, rules)
}

// Infra is a binary's connections to NATS (and Redis, when it uses it).
type Infra struct {
	NC    *nats.Conn
	JS    jetstream.JetStream
	Redis redis.UniversalClient

	stopTracing func()
}

// Connect connects to the NATS of the settings and, with withRedis, to
// Redis; both wait and reconnect rather than fail on an outage.
func (p *Parts) Connect(ctx context.Context, withRedis bool) (*Infra, error) {
	creds, err := p.NATSCredentials()
	if err != nil {
		return nil, err
	}
	stopTracing, err := p.StartTracing(ctx)
	if err != nil {
		return nil, err
	}
	nc, js, err := p.NATS(p.Settings.NATSURL, creds...)
	if err != nil {
		stopTracing()
		return nil, err
	}
	in := &Infra{NC: nc, JS: js, stopTracing: stopTracing}
	if withRedis {
		if in.Redis, err = p.Redis(ctx); err != nil {
			nc.Close()
			stopTracing()
			return nil, err
		}
	}
	return in, nil
}

// Close drains NATS, closes Redis and flushes the traces.
func (in *Infra) Close() {
	DrainNATS(in.NC)
	if in.Redis != nil {
		_ = in.Redis.Close()
	}
	in.stopTracing()
}

// Main runs a binary: run gets a context that ends on SIGINT or SIGTERM and
// the command-line arguments; an error is printed as "<name>: <err>" and
// exits 1. -h (flag.ErrHelp) exits 0 after the flags were printed, and
// -version (settings.ErrVersion) prints the name, version and Go version.
func Main(name string, run func(ctx context.Context, args []string) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:])
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		// -h: the flags were printed; asking for them is not a failure.
	case errors.Is(err, settings.ErrVersion):
		fmt.Println(name, webhook.Version, runtime.Version())
	default:
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
	conn, err := p.DialConfig(p.Settings.ConfigAddr)
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
// config cache watching until work has returned, and the HTTP server. When
// either fails, the other stops too and the error is returned: a process
// whose work has failed exits, to be started again, rather than answering
// /readyz "not ready" forever.
func (p *Parts) RunWorker(ctx context.Context, cache *configcache.Cache, work func(context.Context) error) error {
	cacheCtx, stopCache := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCache()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { _ = cache.Run(cacheCtx); return nil })
	g.Go(func() error { defer stopCache(); return work(gctx) })
	g.Go(func() error { return p.ServeHTTP(gctx, nil) })
	return g.Wait()
}

// RunServer serves gs on the gRPC address with work running beside it,
// and the HTTP server, until ctx ends or one of them fails (then the
// others stop, as in RunWorker).
func (p *Parts) RunServer(ctx context.Context, gs *daemon.GRPCServer, work func(context.Context) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return gs.Serve(gctx, p.Settings.GRPCAddr, p.Settings.ShutdownTimeout) })
	g.Go(func() error { return work(gctx) })
	g.Go(func() error { return p.ServeHTTP(gctx, nil) })
	return g.Wait()
}
