// Package settings reads the HUBHOOKS_* settings every hubhooks binary
// shares, from flags with environment fallbacks, and validates them all at
// once.
package settings

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/hubhooks/hubhooks/pkg/auth"
	"github.com/hubhooks/hubhooks/pkg/daemon"
	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/publisher"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	"github.com/hubhooks/hubhooks/services/configsvc"
	"github.com/hubhooks/hubhooks/services/deliverer"
	"github.com/hubhooks/hubhooks/services/expander"
	"github.com/hubhooks/hubhooks/services/logger/logstore"
	"github.com/hubhooks/hubhooks/services/operations"
)

// Settings are the process settings (README.md, "Settings") plus
// operational knobs. A knob a service has a default for takes that default
// from the service, so the two cannot disagree.
type Settings struct {
	NATSURL       string
	NATSListen    string
	NATSListenSet bool
	// NATSPublisherPassword is the password of the user "publisher" on
	// hubd's embedded NATS; empty makes hubd generate one and keep it in
	// DataDir.
	NATSPublisherPassword string
	// NATSCreds, or NATSUser and NATSPassword, authenticate this service to
	// an external NATS (HUBHOOKS_NATS_URL); see NATSCredentials.
	NATSCreds    string
	NATSUser     string
	NATSPassword string
	// NATSTLSCA verifies an external NATS server's certificate;
	// NATSTLSCert and NATSTLSKey are this service's client certificate.
	NATSTLSCA   string
	NATSTLSCert string
	NATSTLSKey  string
	RedisURL    string
	RedisPrefix string
	// RedisSentinelAddrs with RedisSentinelMaster reach Redis through
	// Sentinel; RedisClusterAddrs reach a Redis Cluster (daemon.RedisConfig).
	RedisSentinelAddrs  []string
	RedisSentinelMaster string
	RedisClusterAddrs   []string
	GRPCAddr            string
	ConfigAddr          string
	LogsAddr            string
	HTTPAddr            string
	APIAddr             string
	DataDir             string
	RetrySchedule       []time.Duration
	AllowedCIDRs        []string
	AdminToken          string
	SecretGrace         time.Duration
	HTTPSOnly           bool
	LogLevel            string
	LogFormat           string
	RulesFile           string
	Pprof               bool
	ShutdownTimeout     time.Duration
	StreamReplicas      int
	DedupeWindow        time.Duration
	SeenWindow          time.Duration
	EventsMaxAge        time.Duration
	EventsMaxBytes      int64
	TLSCert             string
	TLSKey              string
	TLSClientCA         string
	TLSCA               string

	// Tuning with service defaults (0 keeps the service's default).
	WebhookTimeout      time.Duration
	DeliverConcurrency  int
	PerURLConcurrency   int
	AdaptiveConcurrency bool
	BacklogBrake        bool
	PerHubConcurrency   int
	BreakerFailures     int
	BreakerCooldown     time.Duration
	HoldLimit           time.Duration
	MaxRetryAfter       time.Duration
	LogRetention        time.Duration
	LogMaxEntriesPerHub int
	LogMaxBytesPerHub   int64
	MaxEventBytes       int
	ReadAheadBytes      int
	BulkRate            int
	BulkMaxBacklog      int
	AutoDisableAfter    time.Duration
	MaxStreamsPerToken  int
	MaxStreamsPerConn   int
	TestEventsPerMinute int
	MaxWebhooksPerEvent int
	MaxWebhookBytes     int
	MaxExpansionBytes   int

	// RedisWaitReplicas and RedisWaitTimeout: the deliverer stores a retry,
	// and the logger a batch of records, only once that many Redis replicas
	// have it (deliverer.Config, logger.Config).
	RedisWaitReplicas int
	RedisWaitTimeout  time.Duration

	// Tracing (pkg/tracing): no OTLP endpoint leaves it off.
	OTLPEndpoint     string
	OTLPInsecure     bool
	TraceSampleRatio float64
}

// Defaults are the per-binary defaults that differ between binaries.
type Defaults struct {
	NATSURL  string
	GRPCAddr string
	HTTPAddr string
}

// ErrVersion is returned by Parse for -version: print the version and
// exit without an error.
var ErrVersion = errors.New("version requested")

// Parse reads flags from args with HUBHOOKS_* environment fallbacks. Every
// binary shares the environment (a deployment sets one for all), but each
// takes on its command line, and lists in -h, only the flags that apply to
// it (only). -h answers flag.ErrHelp, -version ErrVersion.
func Parse(name string, args []string, d Defaults) (*Settings, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	s := &Settings{}
	var errs []error
	str := func(p *string, flagName, env, def, usage string) {
		fs.StringVar(p, flagName, daemon.Env(env, def), usage+" ("+env+")")
	}
	str(&s.NATSURL, "nats-url", "HUBHOOKS_NATS_URL", d.NATSURL, "external NATS URL; empty makes hubd embed one")
	str(&s.NATSListen, "nats-listen", "HUBHOOKS_NATS_LISTEN", "127.0.0.1:4222", "where hubd's embedded NATS listens")
	str(&s.NATSPublisherPassword, "nats-publisher-password", "HUBHOOKS_NATS_PUBLISHER_PASSWORD", "", "password of the user \"publisher\" on hubd's embedded NATS; unset = generated and kept in the data directory")
	str(&s.NATSCreds, "nats-creds", "HUBHOOKS_NATS_CREDS", "", "NATS credentials file (JWT and seed) this service authenticates with")
	str(&s.NATSUser, "nats-user", "HUBHOOKS_NATS_USER", "", "NATS user this service authenticates as (with nats-password)")
	str(&s.NATSPassword, "nats-password", "HUBHOOKS_NATS_PASSWORD", "", "password of nats-user")
	str(&s.NATSTLSCA, "nats-tls-ca", "HUBHOOKS_NATS_TLS_CA", "", "CA that the NATS server's certificate must chain to (enables TLS to NATS)")
	str(&s.NATSTLSCert, "nats-tls-cert", "HUBHOOKS_NATS_TLS_CERT", "", "client certificate (PEM) presented to NATS")
	str(&s.NATSTLSKey, "nats-tls-key", "HUBHOOKS_NATS_TLS_KEY", "", "key (PEM) of nats-tls-cert")
	str(&s.RedisURL, "redis-url", "HUBHOOKS_REDIS_URL", "redis://127.0.0.1:6379/0", "Redis URL")
	str(&s.RedisPrefix, "redis-prefix", "HUBHOOKS_REDIS_PREFIX", "hubhooks:", "prefix of every Redis key")
	str(&s.RedisSentinelMaster, "redis-sentinel-master", "HUBHOOKS_REDIS_SENTINEL_MASTER", "", "name of the primary the Sentinels monitor; with redis-sentinel-addrs")
	sentinels := fs.String("redis-sentinel-addrs", daemon.Env("HUBHOOKS_REDIS_SENTINEL_ADDRS", ""), "comma-separated Sentinel addresses: reach Redis through Sentinel and follow failovers; database, user and password still come from redis-url (HUBHOOKS_REDIS_SENTINEL_ADDRS)")
	clusterAddrs := fs.String("redis-cluster-addrs", daemon.Env("HUBHOOKS_REDIS_CLUSTER_ADDRS", ""), "comma-separated seed addresses of a Redis Cluster: cluster mode; user and password still come from redis-url (HUBHOOKS_REDIS_CLUSTER_ADDRS)")
	str(&s.GRPCAddr, "grpc-addr", "HUBHOOKS_GRPC_ADDR", d.GRPCAddr, "gRPC listen address")
	str(&s.ConfigAddr, "config-addr", "HUBHOOKS_CONFIG_ADDR", "127.0.0.1:7001", "where configsvc is reached")
	str(&s.LogsAddr, "logs-addr", "HUBHOOKS_LOGS_ADDR", "127.0.0.1:7002", "where the gateway reaches the logger's EventLogService")
	str(&s.HTTPAddr, "http-addr", "HUBHOOKS_HTTP_ADDR", d.HTTPAddr, "metrics and health listen address")
	str(&s.APIAddr, "api-addr", "HUBHOOKS_API_ADDR", "127.0.0.1:8080", "where hubd and the gateway serve the HTTP/JSON API and the web console; empty: not served")
	str(&s.DataDir, "data-dir", "HUBHOOKS_DATA_DIR", "./data", "embedded NATS store and other local data")
	str(&s.AdminToken, "admin-token", "HUBHOOKS_ADMIN_TOKEN", "", "bearer token that may act on every hub; unset = loopback callers only")
	str(&s.LogLevel, "log-level", "HUBHOOKS_LOG_LEVEL", "info", "debug, info, warn or error")
	str(&s.LogFormat, "log-format", "HUBHOOKS_LOG_FORMAT", "json", "json or text")
	str(&s.RulesFile, "rules-file", "HUBHOOKS_RULES_FILE", "", "cascade rules JSON replacing the built-in table")
	str(&s.TLSCert, "tls-cert", "HUBHOOKS_TLS_CERT", "", "gRPC server certificate (PEM); enables TLS")
	str(&s.TLSKey, "tls-key", "HUBHOOKS_TLS_KEY", "", "gRPC server key (PEM)")
	str(&s.TLSClientCA, "tls-client-ca", "HUBHOOKS_TLS_CLIENT_CA", "", "CA that client certificates must chain to (mTLS)")
	str(&s.TLSCA, "tls-ca", "HUBHOOKS_TLS_CA", "", "CA to verify configsvc's certificate when dialling it")
	del := deliverer.Config{}.WithDefaults()
	schedule := fs.String("retry-schedule", daemon.Env("HUBHOOKS_RETRY_SCHEDULE", formatDurations(del.Schedule)), "delays before each attempt (HUBHOOKS_RETRY_SCHEDULE)")
	cidrs := fs.String("allowed-cidrs", daemon.Env("HUBHOOKS_ALLOWED_CIDRS", ""), "address ranges exempt from the private-address guard (HUBHOOKS_ALLOWED_CIDRS)")
	grace, err := daemon.EnvDuration("HUBHOOKS_SECRET_GRACE", configsvc.DefaultSecretGrace)
	errs = append(errs, err)
	fs.DurationVar(&s.SecretGrace, "secret-grace", grace, "how long a replaced secret keeps signing (HUBHOOKS_SECRET_GRACE)")
	httpsOnly, err := daemon.EnvBool("HUBHOOKS_HTTPS_ONLY", false)
	errs = append(errs, err)
	fs.BoolVar(&s.HTTPSOnly, "https-only", httpsOnly, "refuse plain-http callback URLs (HUBHOOKS_HTTPS_ONLY)")
	str(&s.OTLPEndpoint, "otlp-endpoint", "HUBHOOKS_OTLP_ENDPOINT", "", "OTLP/gRPC collector (host:port) to send traces to; unset: tracing off")
	otlpInsecure, err := daemon.EnvBool("HUBHOOKS_OTLP_INSECURE", false)
	errs = append(errs, err)
	fs.BoolVar(&s.OTLPInsecure, "otlp-insecure", otlpInsecure, "send OTLP without TLS (HUBHOOKS_OTLP_INSECURE)")
	ratio, err := daemon.EnvFloat("HUBHOOKS_TRACE_SAMPLE_RATIO", 1)
	errs = append(errs, err)
	fs.Float64Var(&s.TraceSampleRatio, "trace-sample-ratio", ratio, "share of new traces recorded, 0 to 1; a trace begun by the publisher keeps its decision (HUBHOOKS_TRACE_SAMPLE_RATIO)")
	pprof, err := daemon.EnvBool("HUBHOOKS_PPROF", false)
	errs = append(errs, err)
	fs.BoolVar(&s.Pprof, "pprof", pprof, "serve /debug/pprof on the HTTP address (HUBHOOKS_PPROF)")
	shutdown, err := daemon.EnvDuration("HUBHOOKS_SHUTDOWN_TIMEOUT", 25*time.Second)
	errs = append(errs, err)
	fs.DurationVar(&s.ShutdownTimeout, "shutdown-timeout", shutdown, "bound on graceful shutdown (HUBHOOKS_SHUTDOWN_TIMEOUT)")
	replicas, err := daemon.EnvInt("HUBHOOKS_STREAM_REPLICAS", 1)
	errs = append(errs, err)
	fs.IntVar(&s.StreamReplicas, "stream-replicas", replicas, "JetStream stream replicas: 1, or 3 on a cluster (HUBHOOKS_STREAM_REPLICAS)")
	dur := func(p *time.Duration, flagName, env string, def time.Duration, usage string) {
		v, err := daemon.EnvDuration(env, def)
		errs = append(errs, err)
		fs.DurationVar(p, flagName, v, usage+" ("+env+")")
	}
	num := func(p *int, flagName, env string, def int, usage string) {
		v, err := daemon.EnvInt(env, def)
		errs = append(errs, err)
		fs.IntVar(p, flagName, v, usage+" ("+env+")")
	}
	dur(&s.WebhookTimeout, "webhook-timeout", "HUBHOOKS_WEBHOOK_TIMEOUT", webhook.DefaultTimeout, "timeout of one webhook POST")
	num(&s.DeliverConcurrency, "deliver-concurrency", "HUBHOOKS_DELIVER_CONCURRENCY", del.Concurrency, "POSTs in flight per deliverer")
	num(&s.PerURLConcurrency, "per-url-concurrency", "HUBHOOKS_PER_URL_CONCURRENCY", del.PerURLConcurrency, "POSTs in flight per callback URL")
	adaptive, err := daemon.EnvBool("HUBHOOKS_ADAPTIVE_CONCURRENCY", false)
	errs = append(errs, err)
	fs.BoolVar(&s.AdaptiveConcurrency, "adaptive-concurrency", adaptive, "send a URL fewer POSTs at once (down to 1) while its answers slow down as it gets more: other hubs' latency beside a burst for a few-URL hub's top rate (HUBHOOKS_ADAPTIVE_CONCURRENCY)")
	brake, err := daemon.EnvBool("HUBHOOKS_BACKLOG_BRAKE", false)
	errs = append(errs, err)
	fs.BoolVar(&s.BacklogBrake, "backlog-brake", brake, "while this process's CPUs are saturated and live webhooks flow, give a hub's backlog (overflow) fewer POSTs at once, so the CPU other hubs' webhooks wait for is left (HUBHOOKS_BACKLOG_BRAKE)")
	num(&s.PerHubConcurrency, "per-hub-concurrency", "HUBHOOKS_PER_HUB_CONCURRENCY", del.PerHubConcurrency, "POSTs in flight per hub")
	num(&s.BreakerFailures, "breaker-failures", "HUBHOOKS_BREAKER_FAILURES", del.BreakerFailures, "consecutive timeouts/connection errors that open a URL's circuit breaker")
	dur(&s.BreakerCooldown, "breaker-cooldown", "HUBHOOKS_BREAKER_COOLDOWN", del.BreakerCooldown, "how long an open breaker fails fast before probing")
	dur(&s.DedupeWindow, "dedupe-window", "HUBHOOKS_DEDUPE_WINDOW", eventbus.DefaultDuplicateWindow, "how long JetStream drops a domain event published again with the same Nats-Msg-Id (memory grows with rate x window)")
	dur(&s.SeenWindow, "seen-window", "HUBHOOKS_SEEN_WINDOW", expander.DefaultSeenWindow, "how long the expander remembers a domain event id: the same hub and id published again within it is not expanded again (Redis keeps ~100 B per id: rate x window)")
	dur(&s.EventsMaxAge, "events-max-age", "HUBHOOKS_EVENTS_MAX_AGE", eventbus.DefaultEventsMaxAge, "how long domain events stay in their stream, expanded or not")
	eventsMaxBytes, err := daemon.EnvInt64("HUBHOOKS_EVENTS_MAX_BYTES", 0)
	errs = append(errs, err)
	fs.Int64Var(&s.EventsMaxBytes, "events-max-bytes", eventsMaxBytes, "cap on the domain events stream's size, oldest dropped first, expanded or not; 0 = no cap (HUBHOOKS_EVENTS_MAX_BYTES)")
	num(&s.RedisWaitReplicas, "redis-wait-replicas", "HUBHOOKS_REDIS_WAIT_REPLICAS", 0, "Redis replicas that must hold a stored retry or log record (Redis WAIT) before its JetStream message is acknowledged, so a failover cannot lose it; 0 = do not wait (docs/scaling.md)")
	dur(&s.RedisWaitTimeout, "redis-wait-timeout", "HUBHOOKS_REDIS_WAIT_TIMEOUT", del.RedisWaitTimeout, "how long a retry's store or a log batch's write waits for redis-wait-replicas; fewer in time and the message is redelivered instead")
	dur(&s.HoldLimit, "hold-limit", "HUBHOOKS_HOLD_LIMIT", del.HoldLimit, "longest a delivery job keeps its JetStream message while queued or in flight before it moves to Redis")
	dur(&s.MaxRetryAfter, "max-retry-after", "HUBHOOKS_MAX_RETRY_AFTER", del.MaxRetryAfter, "upper bound on a receiver's Retry-After")
	dur(&s.LogRetention, "log-retention", "HUBHOOKS_LOG_RETENTION", logstore.DefaultRetention, "how long event log entries are kept")
	num(&s.LogMaxEntriesPerHub, "log-max-entries-per-hub", "HUBHOOKS_LOG_MAX_ENTRIES_PER_HUB", logstore.DefaultMaxEntriesPerHub, "event log entries kept per hub (oldest trimmed)")
	logMaxBytes, err := daemon.EnvInt64("HUBHOOKS_LOG_MAX_BYTES_PER_HUB", logstore.DefaultMaxBytesPerHub)
	errs = append(errs, err)
	fs.Int64Var(&s.LogMaxBytesPerHub, "log-max-bytes-per-hub", logMaxBytes, "bytes of event log entries kept per hub (oldest trimmed) (HUBHOOKS_LOG_MAX_BYTES_PER_HUB)")
	num(&s.MaxEventBytes, "max-event-bytes", "HUBHOOKS_MAX_EVENT_BYTES", publisher.MaxEventBytes, "largest domain event accepted; larger ones are dead-lettered")
	num(&s.ReadAheadBytes, "read-ahead-bytes", "HUBHOOKS_READ_AHEAD_BYTES", expander.DefaultReadAheadBytes, "bytes of domain events one expander holds to take hubs in turns; a hub's flood past half of it is copied to the events overflow, which slows the reader (memory for other hubs' latency during floods)")
	num(&s.MaxStreamsPerToken, "max-streams-per-token", "HUBHOOKS_MAX_STREAMS_PER_TOKEN", auth.DefaultMaxStreamsPerToken, "streams (WatchHubConfig, tails) one hub token may have open on one server")
	num(&s.MaxStreamsPerConn, "max-streams-per-conn", "HUBHOOKS_MAX_STREAMS_PER_CONN", auth.DefaultMaxStreamsPerConn, "streams one client connection may have open on one server")
	num(&s.MaxWebhooksPerEvent, "max-webhooks-per-event", "HUBHOOKS_MAX_WEBHOOKS_PER_EVENT", expander.DefaultMaxWebhooks, "webhook events one domain event may expand into; more is dead-lettered")
	num(&s.MaxWebhookBytes, "max-webhook-bytes", "HUBHOOKS_MAX_WEBHOOK_BYTES", expander.DefaultMaxWebhookBytes, "largest webhook body one domain event may make; larger is dead-lettered")
	num(&s.MaxExpansionBytes, "max-expansion-bytes", "HUBHOOKS_MAX_EXPANSION_BYTES", expander.DefaultMaxTotalBytes, "bytes of webhook bodies one domain event may make in all; more is dead-lettered")
	num(&s.TestEventsPerMinute, "test-events-per-minute", "HUBHOOKS_TEST_EVENTS_PER_MINUTE", configsvc.DefaultTestEventsPerMinute, "test events one hub may send in a minute (SendTestEvent), across every configsvc")
	num(&s.BulkRate, "bulk-rate", "HUBHOOKS_BULK_RATE", operations.DefaultBulkRate, "deliveries per second one replay or recovery adds at most")
	num(&s.BulkMaxBacklog, "bulk-max-backlog", "HUBHOOKS_BULK_MAX_BACKLOG", operations.DefaultBulkMaxBacklog, "replays and recoveries pause while their hub's overflow shard has more messages than this waiting")
	dur(&s.AutoDisableAfter, "auto-disable-after", "HUBHOOKS_AUTO_DISABLE_AFTER", operations.DefaultAutoDisableAfter, "disable a callback URL that failed every attempt for this long; 0 = never")
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	version := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() { usage(fs, name) }
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *version {
		return nil, ErrVersion
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "nats-listen" {
			s.NATSListenSet = true
		}
		if !appliesTo(f.Name, name) {
			errs = append(errs, fmt.Errorf("-%s does not apply to %s (%s -h lists the flags that do)", f.Name, name, name))
		}
	})
	if daemon.Env("HUBHOOKS_NATS_LISTEN", "") != "" {
		s.NATSListenSet = true
	}
	if sch, err := daemon.ParseDurations(*schedule); err != nil {
		errs = append(errs, fmt.Errorf("retry schedule: %w", err))
	} else {
		s.RetrySchedule = sch
	}
	s.AllowedCIDRs = splitList(*cidrs)
	s.RedisSentinelAddrs = splitList(*sentinels)
	s.RedisClusterAddrs = splitList(*clusterAddrs)
	errs = append(errs, s.Validate())
	return s, errors.Join(errs...)
}

// splitList splits a comma-separated setting, dropping blanks.
func splitList(v string) []string {
	var out []string
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// Redis is how the settings reach Redis.
func (s *Settings) Redis() daemon.RedisConfig {
	return daemon.RedisConfig{URL: s.RedisURL, SentinelAddrs: s.RedisSentinelAddrs, SentinelMaster: s.RedisSentinelMaster, ClusterAddrs: s.RedisClusterAddrs}
}

// MinNATSPasswordLen is the shortest publisher password hubd accepts
// (HUBHOOKS_NATS_PUBLISHER_PASSWORD).
const MinNATSPasswordLen = 16

func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// minEventsMaxBytes is the smallest cap on the domain events stream: a
// few domain events of the largest size (HUBHOOKS_MAX_EVENT_BYTES' default).
const minEventsMaxBytes = 16 << 20

// Validate reports every problem at once.
func (s *Settings) Validate() error {
	var errs []error
	for name, addr := range map[string]string{"grpc-addr": s.GRPCAddr, "http-addr": s.HTTPAddr, "config-addr": s.ConfigAddr, "logs-addr": s.LogsAddr, "api-addr": s.APIAddr, "nats-listen": s.NATSListen} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %v", name, addr, err))
		}
	}
	errs = append(errs, s.Redis().Validate())
	if s.TraceSampleRatio < 0 || s.TraceSampleRatio > 1 {
		errs = append(errs, fmt.Errorf("trace-sample-ratio %v: must be between 0 and 1", s.TraceSampleRatio))
	}
	if s.SecretGrace < 0 {
		errs = append(errs, errors.New("secret-grace must not be negative"))
	}
	if (s.TLSCert == "") != (s.TLSKey == "") {
		errs = append(errs, errors.New("tls-cert and tls-key go together"))
	}
	if (s.NATSTLSCert == "") != (s.NATSTLSKey == "") {
		errs = append(errs, errors.New("nats-tls-cert and nats-tls-key go together"))
	}
	if (s.NATSUser == "") != (s.NATSPassword == "") {
		errs = append(errs, errors.New("nats-user and nats-password go together"))
	}
	if s.NATSCreds != "" && s.NATSUser != "" {
		errs = append(errs, errors.New("set nats-creds or nats-user and nats-password, not both"))
	}
	if p := s.NATSPublisherPassword; p != "" && (len(p) < MinNATSPasswordLen || !visibleASCII(p)) {
		errs = append(errs, fmt.Errorf("nats-publisher-password must be at least %d visible ASCII characters without spaces", MinNATSPasswordLen))
	}
	if s.DedupeWindow < time.Second && s.DedupeWindow != 0 {
		errs = append(errs, fmt.Errorf("dedupe-window %s: must be at least 1s", s.DedupeWindow))
	}
	if s.SeenWindow != 0 && s.SeenWindow < expander.MinSeenWindow {
		errs = append(errs, fmt.Errorf("seen-window %s: must be at least %s", s.SeenWindow, expander.MinSeenWindow))
	}
	if s.EventsMaxAge != 0 && s.EventsMaxAge < time.Minute {
		errs = append(errs, fmt.Errorf("events-max-age %s: must be at least 1m", s.EventsMaxAge))
	}
	if s.EventsMaxBytes < 0 || (s.EventsMaxBytes > 0 && s.EventsMaxBytes < minEventsMaxBytes) {
		errs = append(errs, fmt.Errorf("events-max-bytes %d: must be 0 (no cap) or at least %d", s.EventsMaxBytes, minEventsMaxBytes))
	}
	if s.LogMaxBytesPerHub < 0 {
		errs = append(errs, fmt.Errorf("log-max-bytes-per-hub %d: must not be negative", s.LogMaxBytesPerHub))
	}
	if s.StreamReplicas < 1 || s.StreamReplicas > 5 {
		errs = append(errs, fmt.Errorf("stream-replicas %d: must be 1 to 5", s.StreamReplicas))
	}
	for name, v := range map[string]int{"deliver-concurrency": s.DeliverConcurrency, "per-url-concurrency": s.PerURLConcurrency,
		"per-hub-concurrency": s.PerHubConcurrency, "breaker-failures": s.BreakerFailures, "log-max-entries-per-hub": s.LogMaxEntriesPerHub, "max-event-bytes": s.MaxEventBytes,
		"bulk-rate": s.BulkRate, "bulk-max-backlog": s.BulkMaxBacklog, "max-streams-per-token": s.MaxStreamsPerToken, "max-streams-per-conn": s.MaxStreamsPerConn, "test-events-per-minute": s.TestEventsPerMinute,
		"max-webhooks-per-event": s.MaxWebhooksPerEvent, "max-webhook-bytes": s.MaxWebhookBytes, "max-expansion-bytes": s.MaxExpansionBytes, "read-ahead-bytes": s.ReadAheadBytes,
		"redis-wait-replicas": s.RedisWaitReplicas} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s %d: must not be negative", name, v))
		}
	}
	if len(s.AdminToken) > 0 && len(s.AdminToken) < auth.MinAdminTokenLen {
		errs = append(errs, fmt.Errorf("admin-token must be at least %d characters", auth.MinAdminTokenLen))
	}
	return errors.Join(errs...)
}

// formatDurations is ds as HUBHOOKS_RETRY_SCHEDULE spells it: "0s,5s,5m,2h".
func formatDurations(ds []time.Duration) string {
	out := make([]string, len(ds))
	for i, d := range ds {
		v := d.String() // "2h0m0s"
		if strings.HasSuffix(v, "m0s") {
			v = strings.TrimSuffix(v, "0s")
		}
		if strings.HasSuffix(v, "h0m") {
			v = strings.TrimSuffix(v, "0m")
		}
		out[i] = v
	}
	return strings.Join(out, ",")
}

// Binaries that read settings, and the sets of them the flags below name.
var (
	natsUsers  = []string{"hubd", "configsvc", "expander", "deliverer", "logger"}
	redisUsers = natsUsers
	grpcServer = []string{"hubd", "configsvc", "logger"}
	sendsHooks = []string{"hubd", "configsvc", "deliverer"}
)

// everywhere are the flags of every binary.
var everywhere = []string{"admin-token", "http-addr", "log-level", "log-format", "otlp-endpoint", "otlp-insecure",
	"trace-sample-ratio", "pprof", "shutdown-timeout", "version"}

// only names the binaries each other flag applies to (a new flag goes in
// one of the two: TestHelpListsTheFlagsThatApply fails otherwise).
var only = map[string][]string{
	"nats-url": natsUsers, "nats-creds": natsUsers, "nats-user": natsUsers, "nats-password": natsUsers,
	"nats-tls-ca": natsUsers, "nats-tls-cert": natsUsers, "nats-tls-key": natsUsers,
	"nats-listen": {"hubd"}, "nats-publisher-password": {"hubd"}, "data-dir": {"hubd"},
	"redis-url": redisUsers, "redis-prefix": redisUsers, "redis-sentinel-master": redisUsers,
	"redis-sentinel-addrs": redisUsers, "redis-cluster-addrs": redisUsers,
	"grpc-addr": grpcServer, "tls-cert": grpcServer, "tls-key": grpcServer, "tls-client-ca": grpcServer,
	"config-addr":    {"expander", "deliverer", "logger", "gateway"},
	"tls-ca":         {"expander", "deliverer", "logger", "gateway"},
	"logs-addr":      {"gateway"},
	"api-addr":       {"hubd", "gateway"},
	"rules-file":     {"hubd", "configsvc", "expander", "logger"},
	"retry-schedule": {"hubd", "deliverer"}, "allowed-cidrs": sendsHooks, "https-only": sendsHooks,
	"webhook-timeout": sendsHooks, "secret-grace": {"hubd", "configsvc"},
	"stream-replicas": natsUsers, "dedupe-window": natsUsers, "events-max-age": natsUsers, "events-max-bytes": natsUsers,
	"seen-window":         {"hubd", "expander"},
	"deliver-concurrency": {"hubd", "deliverer"}, "per-url-concurrency": {"hubd", "deliverer"}, "adaptive-concurrency": {"hubd", "deliverer"}, "backlog-brake": {"hubd", "deliverer"},
	"per-hub-concurrency": {"hubd", "deliverer"}, "breaker-failures": {"hubd", "deliverer"},
	"breaker-cooldown": {"hubd", "deliverer"}, "hold-limit": {"hubd", "deliverer"}, "max-retry-after": {"hubd", "deliverer"},
	"redis-wait-replicas": {"hubd", "deliverer", "logger"}, "redis-wait-timeout": {"hubd", "deliverer", "logger"},
	"log-retention": {"hubd", "logger"}, "log-max-entries-per-hub": {"hubd", "logger"}, "log-max-bytes-per-hub": {"hubd", "logger"},
	"max-event-bytes": {"hubd", "expander", "logger"}, "max-webhooks-per-event": {"hubd", "expander", "logger"},
	"read-ahead-bytes":  {"hubd", "expander"},
	"max-webhook-bytes": {"hubd", "expander", "logger"}, "max-expansion-bytes": {"hubd", "expander", "logger"},
	"bulk-rate": {"hubd", "logger"}, "bulk-max-backlog": {"hubd", "logger"},
	"max-streams-per-conn": grpcServer, "max-streams-per-token": grpcServer,
	"test-events-per-minute": {"hubd", "configsvc"}, "auto-disable-after": {"hubd", "logger"},
}

// appliesTo reports whether the flag named flagName applies to binary.
func appliesTo(flagName, binary string) bool {
	bins, ok := only[flagName]
	return !ok || slices.Contains(bins, binary)
}

// usage prints the flags of fs that apply to binary, as -h shows them.
func usage(fs *flag.FlagSet, binary string) {
	mine := flag.NewFlagSet(binary, flag.ContinueOnError)
	mine.SetOutput(fs.Output())
	fs.VisitAll(func(f *flag.Flag) {
		if appliesTo(f.Name, binary) {
			mine.Var(f.Value, f.Name, f.Usage)
			mine.Lookup(f.Name).DefValue = f.DefValue
		}
	})
	fmt.Fprintf(fs.Output(), "Usage of %s (each flag also reads the HUBHOOKS_* variable it names; README.md lists them):\n", binary)
	mine.PrintDefaults()
}
