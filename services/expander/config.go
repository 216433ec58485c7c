package expander

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/publisher"
)

// Config configures the expander. Zero values take the defaults listed.
type Config struct {
	// Concurrency bounds the domain events processed at once (default 32);
	// a quarter of it is kept for hubs that do not flood (readAhead.takeQuiet).
	Concurrency int
	// BatchSize is how many messages the consumer pulls at once, ahead of
	// the read-ahead (default 2048); one pull asks for at most
	// max(8 MiB, 2 × MaxEventBytes, the server's max payload + 64 KiB). The reader must keep up with a flood's
	// publisher: a quiet hub's event waits behind every flood event stored
	// before it until the reader has read them (docs/delivery.md).
	BatchSize int
	// AckWait is the consumer's ack wait: an event not acknowledged in time is
	// redelivered (default 30s). It must exceed PublishTimeout and be at most
	// half of eventbus.DeliveriesDuplicateWindow.
	AckWait time.Duration
	// MaxAckPending bounds unacknowledged events across all replicas, and
	// the events one replica reads ahead of its workers to take them in
	// turns across hubs (default 262144). Past half of it (or of
	// ReadAheadBytes), a flooding hub's further events go to its
	// events-overflow subject and come back with the room other hubs leave.
	// Moving costs a copy per event and the reader then keeps pace with the
	// mover, not the publisher, so the default holds a 100,000-event flood
	// without moving it. See docs/delivery.md.
	MaxAckPending int
	// ReadAheadBytes bounds the bytes of the events one replica reads ahead
	// (default DefaultReadAheadBytes; one event alone may be larger).
	ReadAheadBytes int
	// OverflowAfter is how many of a hub's events may wait in the
	// read-ahead behind the one being expanded before that event's
	// fan-outs go to the hub's overflow shard instead of the live queue
	// (default 64): the hub floods, and the deliverer serves its backlog
	// with the room other hubs leave. A hub with more events queued
	// in a half-full read-ahead is moved to the events overflow, and the
	// fan-outs of events read back from there go to the overflow shard too.
	OverflowAfter int
	// MaxPendingAcks bounds the job publishes of one event awaiting their
	// JetStream ack (default 256).
	MaxPendingAcks int
	// MaxEventBytes is the largest domain event accepted (default 1 MiB);
	// larger ones are dead-lettered.
	MaxEventBytes int
	// Limits bound what one domain event may expand into (see Limits);
	// events beyond them are dead-lettered.
	Limits Limits
	// PublishTimeout bounds the handling of one event: publishing its jobs and
	// dead letters and waiting for their acks (default 10s).
	PublishTimeout time.Duration
	// RetryDelay is the nak delay after a failed publish (default 1s).
	RetryDelay time.Duration
	// RecheckInterval is how often, per hub, a "not deliverable" cached config
	// is re-checked against configsvc (default 250ms).
	RecheckInterval time.Duration
	// FetchTimeout bounds one configsvc re-check (default 2s).
	FetchTimeout time.Duration
	// StreamOptions tunes the streams the expander ensures (replicas, storage...).
	StreamOptions eventbus.Options
	// Registerer receives the metrics; nil means a private registry.
	Registerer prometheus.Registerer
	// Log is the logger; nil means slog.Default().
	Log *slog.Logger
}

// Validate reports every invalid setting at once. Zero means default, so
// only negative values and inconsistent pairs are errors.
func (c Config) Validate() error {
	var errs []error
	neg := func(name string, v int64) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("expander: %s must not be negative (got %d)", name, v))
		}
	}
	neg("Concurrency", int64(c.Concurrency))
	neg("BatchSize", int64(c.BatchSize))
	neg("AckWait", int64(c.AckWait))
	neg("MaxAckPending", int64(c.MaxAckPending))
	neg("ReadAheadBytes", int64(c.ReadAheadBytes))
	neg("OverflowAfter", int64(c.OverflowAfter))
	neg("MaxPendingAcks", int64(c.MaxPendingAcks))
	neg("MaxEventBytes", int64(c.MaxEventBytes))
	neg("PublishTimeout", int64(c.PublishTimeout))
	neg("RetryDelay", int64(c.RetryDelay))
	neg("RecheckInterval", int64(c.RecheckInterval))
	neg("FetchTimeout", int64(c.FetchTimeout))
	errs = append(errs, c.Limits.Validate())
	d := c.withDefaults()
	if d.AckWait <= d.PublishTimeout {
		errs = append(errs, fmt.Errorf("expander: AckWait (%v) must exceed PublishTimeout (%v)", d.AckWait, d.PublishTimeout))
	}
	if d.AckWait > eventbus.DeliveriesDuplicateWindow/2 {
		// A redelivered event republishes its fan-outs: the duplicate
		// window of the deliveries stream must still hold their ids.
		errs = append(errs, fmt.Errorf("expander: AckWait (%v) must be at most half the deliveries' duplicate window (%v)", d.AckWait, eventbus.DeliveriesDuplicateWindow))
	}
	return errors.Join(errs...)
}

// DefaultReadAheadBytes is Config.ReadAheadBytes's default
// (HUBHOOKS_READ_AHEAD_BYTES).
const DefaultReadAheadBytes = 256 << 20

func (c Config) withDefaults() Config {
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setInt(&c.Concurrency, 32)
	setInt(&c.BatchSize, 2048)
	setInt(&c.MaxAckPending, 262144)
	setInt(&c.ReadAheadBytes, DefaultReadAheadBytes)
	setInt(&c.OverflowAfter, 64)
	setInt(&c.MaxPendingAcks, 256)
	setInt(&c.MaxEventBytes, publisher.MaxEventBytes)
	setDur(&c.AckWait, 30*time.Second)
	setDur(&c.PublishTimeout, 10*time.Second)
	setDur(&c.RetryDelay, time.Second)
	setDur(&c.RecheckInterval, 250*time.Millisecond)
	setDur(&c.FetchTimeout, 2*time.Second)
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	return c
}
