package deliverer

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hubhooks/hubhooks/pkg/daemon"
	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/webhook"
)

// DefaultSchedule is the delay before attempt 1, 2, ...: len(DefaultSchedule)
// attempts in all, then the delivery is dead.
var DefaultSchedule = []time.Duration{
	0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// Config configures the deliverer. Zero values take the defaults listed.
type Config struct {
	// Schedule is the delay before each attempt (HUBHOOKS_RETRY_SCHEDULE);
	// default DefaultSchedule.
	Schedule []time.Duration
	// Jitter spreads each retry delay by ±Jitter (a fraction); default 0.15.
	// Negative disables jitter.
	Jitter float64
	// MaxRetryAfter bounds how far a receiver's Retry-After (429/503) may push
	// the next attempt; default 1h.
	MaxRetryAfter time.Duration

	// Concurrency is the most POSTs in flight in this replica; default 256.
	Concurrency int
	// PerURLConcurrency is the most POSTs in flight to one URL; default 16.
	PerURLConcurrency int
	// AdaptiveConcurrency gives a URL fewer POSTs in flight (down to 1)
	// while its answers slow down as it gets more (adaptive.go); off by
	// default: it trades a few-URL hub's top rate for the other hubs'
	// latency.
	AdaptiveConcurrency bool
	// BacklogBrake bounds the POSTs of jobs taken from overflow while this
	// process's CPUs are saturated and live jobs flow (brake.go): a burst
	// then leaves the CPU time other hubs' webhooks wait for.
	BacklogBrake bool
	// brakeShare, when set, replaces the brake's reading of the runtime's
	// scheduler latencies (tests: a saturated CPU on demand).
	brakeShare func() float64
	// PerURLQueue is how many jobs may wait for a URL's slots before further
	// jobs are handed back to JetStream with a short delay; default 512.
	PerURLQueue int
	// PerHubConcurrency is the most POSTs in flight for one hub; default 64.
	PerHubConcurrency int
	// LaneShare is how many jobs of one (hub, URL) lane the replica takes
	// from live messages: a live message all of whose lanes hold that many
	// (those whose jobs would fail fast aside) moves to its hub's overflow
	// shard, served with the room live traffic leaves (see overflow.go);
	// default 2 x PerHubConcurrency, what a hub's share was when it was
	// counted per hub (a fan-out batch carries up to 64 jobs of one lane, so
	// a share of a lane's slots and as many queued would move a steady
	// one-URL stream's every other batch).
	LaneShare int

	// AckWait is the consumer's ack wait; default 30s, at most half of
	// eventbus.DeliveriesDuplicateWindow. Jobs held longer than half of it
	// are reported in progress.
	AckWait time.Duration
	// MaxAckPending bounds unacknowledged jobs across all replicas; default 4096.
	MaxAckPending int
	// FetchBatch is the most jobs pulled per fetch; default 64.
	FetchBatch int
	// FetchWait is how long one fetch waits for jobs; default 1s.
	FetchWait time.Duration
	// QueueFullDelay is the base redelivery delay of a job whose URL queue is
	// full (jittered, growing with redeliveries up to 10x); default 250ms.
	QueueFullDelay time.Duration

	// PollInterval is how often the retry scheduler looks for due retries
	// (it is also woken when this replica stores a retry due sooner); default 200ms.
	PollInterval time.Duration
	// ClaimLease is how long a claimed due retry stays hidden from other
	// replicas before it is claimed again; default 30s (at most half the
	// stream's duplicate window, eventbus.DeliveriesDuplicateWindow).
	ClaimLease time.Duration
	// ClaimBatch is the most due retries claimed at once; default 100.
	ClaimBatch int

	// BreakerFailures is how many consecutive failures open a URL's circuit
	// breaker; default 5.
	BreakerFailures int
	// BreakerCooldown is how long an open breaker fails fast before letting
	// one probe through; default 30s.
	BreakerCooldown time.Duration

	// HoldLimit is how long a job may keep its JetStream message
	// unacknowledged, queued behind its URL's lane or in flight, before it is
	// moved to the retry store (Redis) and its message acknowledged; default
	// 1s. A queued job is parked there and comes back after QueueFullDelay; an
	// attempt in flight goes on, and its entry (due after SendTimeout and a
	// margin) brings it back only if this replica dies before it is
	// recorded. Long-held messages of a work-queue stream make JetStream keep
	// every message block written since (see docs/delivery.md), so a hanging
	// URL would cost memory and CPU that every other URL shares.
	HoldLimit time.Duration
	// SendTimeout is the longest one POST of the sender takes (the
	// deliverer does not impose it; it sizes the entry of a parked attempt);
	// default the sender's own Timeout() when it has one (webhook.Client
	// does), else webhook.DefaultTimeout.
	SendTimeout time.Duration

	// ShutdownTimeout bounds how long Run waits for in-flight POSTs after its
	// context ends; default 20s.
	ShutdownTimeout time.Duration
	// OpTimeout bounds each JetStream publish, ack and Redis call; default 10s.
	OpTimeout time.Duration
	// HealthInterval is how often at most one replica writes a URL's run of
	// failures (or its end) to Redis, for the auto-disabling of failing
	// URLs (services/internal/urlhealth); default 10s.
	HealthInterval time.Duration

	// RedisWaitReplicas is how many Redis replicas must hold a retry or a
	// parked job (Redis WAIT) before the message it stands for is
	// acknowledged; 0 (default) does not wait, and a failover may lose the
	// last retries stored (docs/scaling.md). Fewer replicas in time fail the
	// store: the job's message is redelivered instead.
	RedisWaitReplicas int
	// RedisWaitTimeout bounds each such WAIT; default
	// daemon.DefaultReplicaWait.
	RedisWaitTimeout time.Duration

	// StreamOptions tune the streams created by Run.
	StreamOptions eventbus.Options
	// RedisPrefix starts every Redis key; default "hubhooks:".
	RedisPrefix string
	// Registerer receives the metrics; nil means a private registry.
	Registerer prometheus.Registerer
	// Log is the logger; nil means slog.Default().
	Log *slog.Logger
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if len(c.Schedule) == 0 {
		c.Schedule = DefaultSchedule
	}
	c.Schedule = append([]time.Duration(nil), c.Schedule...)
	if c.Jitter == 0 {
		c.Jitter = 0.15
	} else if c.Jitter < 0 {
		c.Jitter = 0
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	defInt := func(n *int, v int) {
		if *n == 0 {
			*n = v
		}
	}
	def(&c.MaxRetryAfter, time.Hour)
	defInt(&c.Concurrency, 256)
	defInt(&c.PerURLConcurrency, 16)
	defInt(&c.PerURLQueue, 512)
	defInt(&c.PerHubConcurrency, 64)
	defInt(&c.LaneShare, 2*c.PerHubConcurrency)
	def(&c.AckWait, 30*time.Second)
	defInt(&c.MaxAckPending, 4096)
	defInt(&c.FetchBatch, 64)
	def(&c.FetchWait, time.Second)
	def(&c.QueueFullDelay, 250*time.Millisecond)
	def(&c.PollInterval, 200*time.Millisecond)
	def(&c.ClaimLease, 30*time.Second)
	defInt(&c.ClaimBatch, 100)
	defInt(&c.BreakerFailures, 5)
	def(&c.BreakerCooldown, 30*time.Second)
	def(&c.HoldLimit, time.Second)
	def(&c.SendTimeout, webhook.DefaultTimeout)
	def(&c.ShutdownTimeout, 20*time.Second)
	def(&c.OpTimeout, 10*time.Second)
	def(&c.HealthInterval, 10*time.Second)
	def(&c.RedisWaitTimeout, daemon.DefaultReplicaWait)
	if c.RedisPrefix == "" {
		c.RedisPrefix = "hubhooks:"
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c
}

// Validate reports every problem of the configuration at once. Zero values
// are valid (they take the defaults).
func (c Config) Validate() error {
	var errs []error
	for i, d := range c.Schedule {
		if d < 0 {
			errs = append(errs, fmt.Errorf("schedule[%d] = %s: must not be negative", i, d))
		}
	}
	if c.Jitter > 0.5 {
		errs = append(errs, fmt.Errorf("jitter %.2f: must be at most 0.5", c.Jitter))
	}
	durations := []struct {
		name string
		v    time.Duration
	}{
		{"max retry after", c.MaxRetryAfter}, {"ack wait", c.AckWait}, {"fetch wait", c.FetchWait},
		{"queue full delay", c.QueueFullDelay}, {"poll interval", c.PollInterval}, {"claim lease", c.ClaimLease},
		{"breaker cooldown", c.BreakerCooldown}, {"shutdown timeout", c.ShutdownTimeout}, {"op timeout", c.OpTimeout}, {"health interval", c.HealthInterval},
		{"hold limit", c.HoldLimit}, {"send timeout", c.SendTimeout}, {"redis wait timeout", c.RedisWaitTimeout},
	}
	for _, d := range durations {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %s: must not be negative", d.name, d.v))
		}
	}
	ints := []struct {
		name string
		v    int
	}{
		{"concurrency", c.Concurrency}, {"per-URL concurrency", c.PerURLConcurrency}, {"per-URL queue", c.PerURLQueue},
		{"per-hub concurrency", c.PerHubConcurrency}, {"lane share", c.LaneShare}, {"max ack pending", c.MaxAckPending}, {"fetch batch", c.FetchBatch},
		{"claim batch", c.ClaimBatch}, {"breaker failures", c.BreakerFailures}, {"redis wait replicas", c.RedisWaitReplicas},
	}
	for _, n := range ints {
		if n.v < 0 {
			errs = append(errs, fmt.Errorf("%s %d: must not be negative", n.name, n.v))
		}
	}
	if c.AckWait > 0 && c.AckWait < 2*time.Second {
		errs = append(errs, fmt.Errorf("ack wait %s: must be at least 2s", c.AckWait))
	}
	if c.FetchWait > 0 && c.FetchWait < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("fetch wait %s: must be at least 10ms", c.FetchWait))
	}
	if c.PollInterval > 0 && c.PollInterval < time.Millisecond {
		errs = append(errs, fmt.Errorf("poll interval %s: must be at least 1ms", c.PollInterval))
	}
	if c.HoldLimit > 0 && c.HoldLimit < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("hold limit %s: must be at least 100ms", c.HoldLimit))
	}
	if c.ClaimLease > 0 && c.ClaimLease < time.Second {
		errs = append(errs, fmt.Errorf("claim lease %s: must be at least 1s", c.ClaimLease))
	}
	// A redelivered fan-out or a claim whose lease ran out republishes jobs
	// under the same ids: the deliveries' duplicate window must still hold them.
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ack wait", c.AckWait}, {"claim lease", c.ClaimLease}} {
		if d.v > eventbus.DeliveriesDuplicateWindow/2 {
			errs = append(errs, fmt.Errorf("%s %s: must be at most half the deliveries' duplicate window (%s)", d.name, d.v, eventbus.DeliveriesDuplicateWindow))
		}
	}
	return errors.Join(errs...)
}
