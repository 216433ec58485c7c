package configsvc

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// Defaults of Config.
const (
	DefaultRedisPrefix         = "hubhooks:"
	DefaultSecretGrace         = 24 * time.Hour
	DefaultMaxURLs             = 5
	DefaultMaxPreviousSecrets  = 5
	DefaultFeedMaxLen          = 10000
	DefaultWatchBuffer         = 1024
	DefaultTestEventTimeout    = 30 * time.Second
	DefaultTestEventsPerMinute = 30
	DefaultFeedBlock           = time.Second
	DefaultEpochCheck          = 5 * time.Second
)

// RuleLister serves the cascade rules; *cascade.Rules implements it.
type RuleLister interface {
	// EventTypes returns the rule table and every webhook event type. The
	// caller may modify the returned message.
	EventTypes() *hubhooksv1.ListEventTypesResponse
}

// Config configures a Service. The zero value of every field but Rules'
// dependencies means its default; see the Default* constants.
type Config struct {
	// RedisPrefix starts every Redis key; configsvc adds "{cfg}:". Default "hubhooks:".
	RedisPrefix string
	// SecretGrace is how long a replaced secret keeps signing beside the new
	// one (HUBHOOKS_SECRET_GRACE). Default 24h.
	SecretGrace time.Duration
	// MaxURLs is the most callback URLs a hub may have. Default 5 (the product limit).
	MaxURLs int
	// MaxPreviousSecrets bounds how many replaced secrets still in their grace
	// period are kept (newest first); older ones stop signing early. Default 5.
	MaxPreviousSecrets int
	// FeedMaxLen is the approximate length the Redis change feed is trimmed
	// to. Default 10000.
	FeedMaxLen int64
	// WatchBuffer is how many changes a WatchHubConfig stream may fall behind
	// before it is disconnected with RESOURCE_EXHAUSTED. Default 1024.
	WatchBuffer int
	// FeedBlock is how long one XREAD of the change feed blocks; it bounds how
	// quickly Run notices its context ending. Default 1s.
	FeedBlock time.Duration
	// EpochCheck is how often the feed reader checks that Redis has not lost
	// its data (a restart without persistence), which Redis clients that
	// retry transparently would otherwise hide. Default 5s.
	EpochCheck time.Duration
	// TestEventTimeout bounds one SendTestEvent (the POST plus logging it).
	// Default 30s.
	TestEventTimeout time.Duration
	// TestEventsPerMinute bounds the test events one hub may send in a
	// minute, across every replica (HUBHOOKS_TEST_EVENTS_PER_MINUTE).
	// Default 30.
	TestEventsPerMinute int
	// StreamOptions tunes the JetStream streams configsvc ensures (HUBHOOKS_ATTEMPTS).
	StreamOptions eventbus.Options
	// Rules lists the event types (ListEventTypes, SendTestEvent validation).
	// Default cascade.Default().
	Rules RuleLister
	// Registerer receives the metrics; nil means a private registry.
	Registerer prometheus.Registerer
	// Log is the logger; nil means slog.Default().
	Log *slog.Logger
	// Now is the clock; nil means time.Now. Tests replace it.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.RedisPrefix == "" {
		c.RedisPrefix = DefaultRedisPrefix
	}
	if c.SecretGrace == 0 {
		c.SecretGrace = DefaultSecretGrace
	}
	if c.MaxURLs == 0 {
		c.MaxURLs = DefaultMaxURLs
	}
	if c.MaxPreviousSecrets == 0 {
		c.MaxPreviousSecrets = DefaultMaxPreviousSecrets
	}
	if c.FeedMaxLen == 0 {
		c.FeedMaxLen = DefaultFeedMaxLen
	}
	if c.WatchBuffer == 0 {
		c.WatchBuffer = DefaultWatchBuffer
	}
	if c.FeedBlock == 0 {
		c.FeedBlock = DefaultFeedBlock
	}
	if c.EpochCheck == 0 {
		c.EpochCheck = DefaultEpochCheck
	}
	if c.TestEventTimeout == 0 {
		c.TestEventTimeout = DefaultTestEventTimeout
	}
	if c.TestEventsPerMinute == 0 {
		c.TestEventsPerMinute = DefaultTestEventsPerMinute
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports every problem of the configuration at once. Zero values
// are valid: they mean the defaults.
func (c Config) Validate() error {
	var errs []error
	if c.RedisPrefix != "" && strings.ContainsAny(c.RedisPrefix, " \t\r\n*?[]") {
		errs = append(errs, fmt.Errorf("redis prefix %q: no whitespace or glob characters", c.RedisPrefix))
	}
	if c.SecretGrace < 0 {
		errs = append(errs, fmt.Errorf("secret grace %s: must not be negative", c.SecretGrace))
	}
	if c.MaxURLs < 0 || c.MaxURLs > 100 {
		errs = append(errs, fmt.Errorf("max urls %d: must be 1 to 100", c.MaxURLs))
	}
	if c.MaxPreviousSecrets < 0 || c.MaxPreviousSecrets > 50 {
		errs = append(errs, fmt.Errorf("max previous secrets %d: must be 1 to 50", c.MaxPreviousSecrets))
	}
	if c.FeedMaxLen < 0 || (c.FeedMaxLen > 0 && c.FeedMaxLen < 100) {
		errs = append(errs, fmt.Errorf("feed max len %d: must be at least 100", c.FeedMaxLen))
	}
	if c.WatchBuffer < 0 {
		errs = append(errs, fmt.Errorf("watch buffer %d: must not be negative", c.WatchBuffer))
	}
	if c.FeedBlock < 0 || c.FeedBlock > time.Minute {
		errs = append(errs, fmt.Errorf("feed block %s: must be between 1ms and 1m", c.FeedBlock))
	}
	if c.EpochCheck < 0 {
		errs = append(errs, fmt.Errorf("epoch check %s: must not be negative", c.EpochCheck))
	}
	if c.TestEventTimeout < 0 {
		errs = append(errs, fmt.Errorf("test event timeout %s: must not be negative", c.TestEventTimeout))
	}
	if c.TestEventsPerMinute < 0 {
		errs = append(errs, fmt.Errorf("test events per minute %d: must not be negative", c.TestEventsPerMinute))
	}
	return errors.Join(errs...)
}
