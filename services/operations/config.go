package operations

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/publisher"
	"github.com/hubhooks/hubhooks/services/expander"
)

// Defaults of Config.
const (
	DefaultBulkRate         = 500
	DefaultBulkMaxBacklog   = 200
	DefaultRecoverLookback  = 48 * time.Hour
	DefaultAutoDisableAfter = 5 * 24 * time.Hour
)

// Config configures a Service. Zero values take the defaults named on each
// field.
type Config struct {
	// BulkRate is the most deliveries a second one recovery (or replay)
	// adds. Default 500.
	BulkRate float64
	// BulkMaxBacklog pauses bulk work while its hub's overflow shard has
	// more than this many messages waiting: live messages moved to that
	// shard meanwhile queue behind at most that many. Default 200.
	BulkMaxBacklog int
	// RecoverLookback is how long before RecoverDeliveries' since the
	// deliveries it looks at may have been created: a delivery that died
	// after since may have been created up to its retry schedule's length
	// before. Default 48h.
	RecoverLookback time.Duration
	// AutoDisableAfter disables a callback URL that has failed every
	// attempt for this long, with the reason in its config. Default 5 days.
	AutoDisableAfter time.Duration
	// AutoDisableOff turns auto-disabling off.
	AutoDisableOff bool
	// MaxEventBytes is the largest domain event a replay expands, as the
	// expander's (larger ones were dead-lettered). Default 1 MiB.
	MaxEventBytes int
	// ExpansionLimits bound what a replayed domain event may expand into,
	// as the expander's do (HUBHOOKS_MAX_WEBHOOKS_PER_EVENT, ...); zero
	// fields are expander's defaults.
	ExpansionLimits expander.Limits
	// StreamOptions are used to ensure the deliveries stream.
	StreamOptions eventbus.Options
	// Registerer receives the metrics; nil means a private registry.
	Registerer prometheus.Registerer
	// Log is the logger; nil means slog.Default().
	Log *slog.Logger
}

// Validate reports every invalid setting at once; zero means default.
func (c Config) Validate() error {
	var errs []error
	if c.BulkRate < 0 {
		errs = append(errs, fmt.Errorf("bulk rate %v: must not be negative", c.BulkRate))
	}
	if c.BulkMaxBacklog < 0 {
		errs = append(errs, fmt.Errorf("bulk max backlog %d: must not be negative", c.BulkMaxBacklog))
	}
	if c.AutoDisableAfter < 0 {
		errs = append(errs, fmt.Errorf("auto-disable after %s: must not be negative", c.AutoDisableAfter))
	}
	if c.MaxEventBytes < 0 {
		errs = append(errs, fmt.Errorf("max event bytes %d: must not be negative", c.MaxEventBytes))
	}
	if c.RecoverLookback < 0 {
		errs = append(errs, fmt.Errorf("recover lookback %s: must not be negative", c.RecoverLookback))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.BulkRate == 0 {
		c.BulkRate = DefaultBulkRate
	}
	if c.BulkMaxBacklog == 0 {
		c.BulkMaxBacklog = DefaultBulkMaxBacklog
	}
	if c.RecoverLookback == 0 {
		c.RecoverLookback = DefaultRecoverLookback
	}
	if c.AutoDisableAfter == 0 {
		c.AutoDisableAfter = DefaultAutoDisableAfter
	}
	if c.MaxEventBytes == 0 {
		c.MaxEventBytes = publisher.MaxEventBytes
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c
}
