package logger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/logger/logstore"
)

// ErrNotReady is returned by Ready before the consumer is set up.
var ErrNotReady = errors.New("logger: attempts consumer not set up yet")

// Service is the logger: the attempts consumer and the EventLogService.
type Service struct {
	cfg   Config
	js    jetstream.JetStream
	rdb   redis.UniversalClient
	store *logstore.Store
	log   *slog.Logger
	m     *metrics
	grpc  *server

	consumerReady   atomic.Bool
	deliveriesReady atomic.Bool

	// stopping is closed when Run's context ends: open tails end then, so
	// they do not hold the gRPC server's graceful stop.
	stopping     chan struct{}
	stopTailOnce sync.Once
}

// New builds the logger. It does not touch NATS or Redis; Run does.
func New(cfg Config, js jetstream.JetStream, rdb redis.UniversalClient) (*Service, error) {
	var errs []error
	if js == nil {
		errs = append(errs, errors.New("nil JetStream"))
	}
	if rdb == nil {
		errs = append(errs, errors.New("nil Redis client"))
	}
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("eventlog: %w", errors.Join(errs...))
	}
	store, err := logstore.New(rdb, logstore.Options{
		Prefix:           cfg.RedisPrefix,
		Retention:        cfg.Retention,
		MaxEntriesPerHub: cfg.MaxEntriesPerHub,
		MaxBytesPerHub:   cfg.MaxBytesPerHub,
		ScanLimit:        cfg.ListScanLimit,
		WaitReplicas:     cfg.RedisWaitReplicas,
		WaitTimeout:      cfg.RedisWaitTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	s := &Service{cfg: cfg, js: js, rdb: rdb, store: store, log: cfg.Log, m: m, stopping: make(chan struct{})}
	s.grpc = &server{svc: s}
	return s, nil
}

// Store is the event log store the logger writes, for the services that
// run beside it (OperationsService).
func (s *Service) Store() *logstore.Store { return s.store }

// Register adds EventLogService to gs.
func (s *Service) Register(gs *grpc.Server) {
	hubhooksv1.RegisterEventLogServiceServer(gs, s.grpc)
}

// Ready reports nil once the attempts consumer is set up. Redis is checked
// once per process (assembly's "redis" check), not by every service.
func (s *Service) Ready(context.Context) error {
	if !s.consumerReady.Load() {
		return ErrNotReady
	}
	return nil
}

type metrics struct {
	written      prometheus.Counter
	changed      prometheus.Counter
	writeSecs    prometheus.Histogram
	writeErrors  prometheus.Counter
	undecodable  *prometheus.CounterVec
	trimmed      prometheus.Counter
	redelivered  prometheus.Counter
	noticeErrors prometheus.Counter
	consumerLost prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_logger_records_written_total",
			Help: "Attempt records written to Redis (acked after the write).",
		}),
		changed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_logger_records_changed_total",
			Help: "Attempt records that changed an entry's status (not duplicates or stale).",
		}),
		writeSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hubhooks_logger_write_duration_seconds",
			Help:    "Time to write one batch of attempt records to Redis.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_logger_write_errors_total",
			Help: "Batches whose Redis write failed (records nak'ed and retried).",
		}),
		undecodable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubhooks_logger_records_undecodable_total",
			Help: "Attempt records terminated because they cannot be decoded (reason=decode) or stored (reason=invalid).",
		}, []string{"reason"}),
		trimmed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_logger_entries_trimmed_total",
			Help: "Entries removed because a hub exceeded MaxEntriesPerHub or MaxBytesPerHub.",
		}),
		redelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_logger_redeliveries_total",
			Help: "Redeliver calls that published a new delivery job.",
		}),
		consumerLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_logger_consumer_lost_total",
			Help: "Times the logger found its durable consumer or the attempts stream deleted and made it again.",
		}),
		noticeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_logger_change_notices_failed_total",
			Help: "Event-log change notices (for live tails) that could not be published.",
		}),
	}
	for _, c := range []prometheus.Collector{m.written, m.changed, m.writeSecs, m.writeErrors, m.undecodable, m.trimmed, m.redelivered, m.noticeErrors, m.consumerLost} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}
