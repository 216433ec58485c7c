package logstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of Options.
const (
	DefaultRetention        = 7 * 24 * time.Hour
	DefaultMaxEntriesPerHub = 100000
	DefaultMaxBytesPerHub   = 512 << 20
	DefaultScanLimit        = 5000
)

// Options configure a Store. Zero values take the defaults.
type Options struct {
	// Prefix starts every key; the store appends "log:".
	Prefix string
	// Retention is how long entries are listed after their creation and
	// kept after their last write; default 7 days.
	Retention time.Duration
	// MaxEntriesPerHub trims a hub's oldest entries beyond it; default 100000.
	MaxEntriesPerHub int
	// MaxBytesPerHub trims a hub's oldest entries while the bytes its
	// entries hold are beyond it (docs/event-log.md says what is counted);
	// default 512 MiB.
	MaxBytesPerHub int64
	// ScanLimit bounds the index members one List call examines when
	// filters the chosen index does not cover (status, or a second filter)
	// reject candidates; default 5000.
	ScanLimit int
	// WaitReplicas is how many Redis replicas must hold a batch before
	// Write returns nil (Redis WAIT on each primary the batch wrote to, see
	// daemon.AwaitReplicated), so a failover cannot lose records whose
	// messages the logger then acknowledges; 0 does not wait.
	WaitReplicas int
	// WaitTimeout bounds that wait; fewer replicas in time and Write fails
	// with daemon.ErrNotReplicated (the batch is written again later).
	WaitTimeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.MaxEntriesPerHub == 0 {
		o.MaxEntriesPerHub = DefaultMaxEntriesPerHub
	}
	if o.MaxBytesPerHub == 0 {
		o.MaxBytesPerHub = DefaultMaxBytesPerHub
	}
	if o.ScanLimit == 0 {
		o.ScanLimit = DefaultScanLimit
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Validate reports every problem of o (after defaults).
func (o Options) Validate() error {
	var errs []error
	if o.Retention < time.Second {
		errs = append(errs, fmt.Errorf("retention %v: at least 1s", o.Retention))
	}
	if o.MaxEntriesPerHub < 0 {
		errs = append(errs, fmt.Errorf("max entries per hub %d: must not be negative", o.MaxEntriesPerHub))
	}
	if o.MaxBytesPerHub < 0 {
		errs = append(errs, fmt.Errorf("max bytes per hub %d: must not be negative", o.MaxBytesPerHub))
	}
	if o.ScanLimit < 0 {
		errs = append(errs, fmt.Errorf("scan limit %d: must not be negative", o.ScanLimit))
	}
	if o.WaitReplicas < 0 {
		errs = append(errs, fmt.Errorf("wait replicas %d: must not be negative", o.WaitReplicas))
	}
	if o.WaitReplicas > 0 && o.WaitTimeout <= 0 {
		errs = append(errs, fmt.Errorf("wait timeout %v: must be positive when waiting for replicas", o.WaitTimeout))
	}
	return errors.Join(errs...)
}

// Store is the Redis event log. It is safe for concurrent use, and any
// number of Stores (logger replicas) may share one Redis.
type Store struct {
	rdb  redis.UniversalClient
	k    keys
	opts Options
}

// New returns a Store on rdb.
func New(rdb redis.UniversalClient, o Options) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("logstore: nil redis client")
	}
	o = o.withDefaults()
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("logstore: %w", err)
	}
	return &Store{rdb: rdb, k: keys{base: o.Prefix + "log:"}, opts: o}, nil
}

// exec runs one pipeline built by build.
func (s *Store) exec(ctx context.Context, build func(redis.Pipeliner)) error {
	pipe := s.rdb.Pipeline()
	build(pipe)
	_, err := pipe.Exec(ctx)
	return err
}

// keyTTL is how long a key lives after its last write: the retention and a
// tenth more, so that an entry is still there (and its bytes known) when a
// write removes it for its age.
func (s *Store) keyTTL() time.Duration { return s.opts.Retention + s.opts.Retention/10 }

// ttl is keyTTL in whole seconds, as EXPIRE takes it.
func (s *Store) ttl() int64 { return int64(s.keyTTL() / time.Second) }

// olderThanRetention is the lexicographic lower bound (ZRANGEBYLEX) of the
// index members created more than the retention before now.
func (s *Store) olderThanRetention(now time.Time) string {
	return olderThan(now.Add(-s.opts.Retention))
}

// olderThan is the lexicographic lower bound of the index members created
// before t: their inverted time sorts after t's.
func olderThan(t time.Time) string { return "(" + inverted(t) + "\xff" }
