package logger

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hubhooks/hubhooks/pkg/daemon"
	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/services/logger/logstore"
)

// Page sizes of ListEventLogs.
const (
	DefaultPageSize = 50
	// MaxPageSize is the largest page; larger requests are clamped to it.
	MaxPageSize = 500
)

// Config configures the logger. Zero values take the defaults named on each
// field.
type Config struct {
	// RedisPrefix starts every key; the logger writes under RedisPrefix+"log:".
	// Default "hubhooks:".
	RedisPrefix string
	// Retention is how long entries are kept after their last write (and
	// listed after their creation). Default 7 days.
	Retention time.Duration
	// MaxEntriesPerHub trims each hub's oldest entries beyond it. Default 100000.
	MaxEntriesPerHub int
	// MaxBytesPerHub trims each hub's oldest entries while its entries hold
	// more bytes. Default 512 MiB.
	MaxBytesPerHub int64
	// RedisWaitReplicas is how many Redis replicas must hold a batch of
	// records before their messages are acknowledged (Redis WAIT on each
	// primary the batch wrote to), so a failover cannot lose a delivery's
	// log record; fewer within RedisWaitTimeout and the batch is written
	// again. Default 0: do not wait.
	RedisWaitReplicas int
	// RedisWaitTimeout bounds that wait. Default daemon.DefaultReplicaWait.
	RedisWaitTimeout time.Duration
	// ListScanLimit bounds the candidates one ListEventLogs call examines when
	// filtering by status or by more than one field; at least MaxPageSize.
	// Default 5000.
	ListScanLimit int
	// BatchSize is how many attempt messages are fetched and written at
	// once (a message holds one record or a batch of up to 128). Default 256.
	BatchSize int
	// BatchBytes bounds the bytes of one fetch, so a fetch of batch messages
	// holds a bounded number of records in memory (a message larger than
	// this is fetched alone). Default 1 MiB.
	BatchBytes int
	// FetchWait is the longest a fetch waits for a full batch. Default 1s.
	FetchWait time.Duration
	// AckWait is the consumer's ack wait. Default 30s.
	AckWait time.Duration
	// MaxAckPending bounds records in flight across replicas. Default 4096.
	MaxAckPending int
	// RetryBackoff is the first wait after a failed Redis write (doubling up
	// to 16x). Default 500ms.
	RetryBackoff time.Duration
	// DrainTimeout bounds finishing the batch in hand when Run's context
	// ends. Default 10s.
	DrainTimeout time.Duration
	// TailBacklog bounds what one TailEventLogs call holds for a slow
	// reader: changed entry ids waiting to be read, and entries waiting to
	// be sent; a reader further behind is dropped. Default 2048.
	TailBacklog int
	// TailHeartbeat is how often TailEventLogs sends an empty message while
	// nothing changes. Default 15s.
	TailHeartbeat time.Duration
	// StreamOptions are used to ensure the attempts and deliveries streams.
	StreamOptions eventbus.Options
	// Registerer receives the metrics; nil means a private registry.
	Registerer prometheus.Registerer
	// Log is the logger; nil means slog.Default().
	Log *slog.Logger
}

// Validate reports every problem with the config at once.
func (c Config) Validate() error {
	var errs []error
	neg := func(name string, bad bool) {
		if bad {
			errs = append(errs, fmt.Errorf("%s must not be negative", name))
		}
	}
	neg("Retention", c.Retention < 0)
	neg("MaxEntriesPerHub", c.MaxEntriesPerHub < 0)
	neg("MaxBytesPerHub", c.MaxBytesPerHub < 0)
	neg("ListScanLimit", c.ListScanLimit < 0)
	neg("RedisWaitReplicas", c.RedisWaitReplicas < 0)
	neg("RedisWaitTimeout", c.RedisWaitTimeout < 0)
	neg("BatchSize", c.BatchSize < 0)
	neg("BatchBytes", c.BatchBytes < 0)
	neg("FetchWait", c.FetchWait < 0)
	neg("AckWait", c.AckWait < 0)
	neg("MaxAckPending", c.MaxAckPending < 0)
	neg("RetryBackoff", c.RetryBackoff < 0)
	neg("DrainTimeout", c.DrainTimeout < 0)
	neg("TailBacklog", c.TailBacklog < 0)
	neg("TailHeartbeat", c.TailHeartbeat < 0)
	if c.Retention > 0 && c.Retention < time.Second {
		errs = append(errs, fmt.Errorf("Retention %v: at least 1s", c.Retention))
	}
	if c.ListScanLimit > 0 && c.ListScanLimit < MaxPageSize {
		errs = append(errs, fmt.Errorf("ListScanLimit %d: at least %d (the largest page)", c.ListScanLimit, MaxPageSize))
	}
	if c.BatchSize > 10000 {
		errs = append(errs, fmt.Errorf("BatchSize %d: at most 10000", c.BatchSize))
	}
	if c.FetchWait > 0 && c.AckWait > 0 && c.FetchWait >= c.AckWait {
		errs = append(errs, fmt.Errorf("FetchWait %v must be shorter than AckWait %v", c.FetchWait, c.AckWait))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.RedisPrefix == "" {
		c.RedisPrefix = "hubhooks:"
	}
	if c.Retention == 0 {
		c.Retention = logstore.DefaultRetention
	}
	if c.MaxEntriesPerHub == 0 {
		c.MaxEntriesPerHub = logstore.DefaultMaxEntriesPerHub
	}
	if c.MaxBytesPerHub == 0 {
		c.MaxBytesPerHub = logstore.DefaultMaxBytesPerHub
	}
	if c.ListScanLimit == 0 {
		c.ListScanLimit = logstore.DefaultScanLimit
	}
	if c.RedisWaitTimeout == 0 {
		c.RedisWaitTimeout = daemon.DefaultReplicaWait
	}
	if c.BatchSize == 0 {
		c.BatchSize = 256
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = 1 << 20
	}
	if c.FetchWait == 0 {
		c.FetchWait = time.Second
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 4096
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = 500 * time.Millisecond
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 10 * time.Second
	}
	if c.TailBacklog == 0 {
		c.TailBacklog = 2048
	}
	if c.TailHeartbeat == 0 {
		c.TailHeartbeat = 15 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	return c
}
