package operations

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/pkg/eventbus"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/internal/urlhealth"
	"github.com/hubhooks/hubhooks/services/logger/logstore"
)

// LogStore is what operations reads and writes of the event log;
// *logstore.Store implements it. It is called concurrently.
type LogStore interface {
	// List returns a page of a hub's entries matching q, newest first.
	List(ctx context.Context, q logstore.Query) (*logstore.Page, error)
	// Get returns one entry with its job (body included), or an error
	// wrapping logstore.ErrNotFound.
	Get(ctx context.Context, hub, id string) (*logstore.Entry, error)
	// RecordedAll reports, for each delivery id, whether the log holds
	// attempt attempts[i] of it (or a later one, or a final status).
	RecordedAll(ctx context.Context, hub string, ids []string, attempts []int32) ([]bool, error)
	// Write stores attempt records (here: the pending entries of new
	// deliveries).
	Write(ctx context.Context, recs []*deliveryv1.AttemptRecorded) (logstore.WriteResult, error)
}

// Configs reads (and, for auto-disabling, writes) hub configuration;
// hubhooksv1.ConfigServiceClient implements it.
type Configs interface {
	GetHubConfig(ctx context.Context, in *hubhooksv1.GetHubConfigRequest, opts ...grpc.CallOption) (*hubhooksv1.HubConfig, error)
	ConfigureCallbackUrl(ctx context.Context, in *hubhooksv1.ConfigureCallbackUrlRequest, opts ...grpc.CallOption) (*hubhooksv1.HubConfig, error)
}

// URLHealth lists the URLs failing every attempt, as the deliverer notes
// them; *urlhealth.Store implements it.
type URLHealth interface {
	// Failing lists every URL failing now, with the start of its run.
	Failing(ctx context.Context) ([]urlhealth.Run, error)
	// Forget deletes a URL's run (it was disabled, or is gone).
	Forget(ctx context.Context, hub, urlID string) error
}

// ErrNotReady is returned by Ready before Run has ensured the streams.
var ErrNotReady = errors.New("operations: streams not ensured yet")

// Service is the OperationsService. Build it with New, serve it with
// Register, and Run it.
type Service struct {
	cfg     Config
	js      jetstream.JetStream
	logs    LogStore
	configs Configs
	health  URLHealth
	rules   *cascade.Rules
	log     *slog.Logger
	m       *metrics

	streamsReady atomic.Bool
}

// New builds a Service. Every dependency is required; New does no I/O.
func New(cfg Config, js jetstream.JetStream, logs LogStore, configs Configs, health URLHealth, rules *cascade.Rules) (*Service, error) {
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if js == nil {
		errs = append(errs, errors.New("nil JetStream"))
	}
	if logs == nil {
		errs = append(errs, errors.New("nil log store"))
	}
	if configs == nil {
		errs = append(errs, errors.New("nil config client"))
	}
	if health == nil {
		errs = append(errs, errors.New("nil URL health"))
	}
	if rules == nil {
		errs = append(errs, errors.New("nil cascade rules"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("operations: %w", err)
	}
	cfg = cfg.withDefaults()
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("operations: %w", err)
	}
	return &Service{cfg: cfg, js: js, logs: logs, configs: configs, health: health, rules: rules, log: cfg.Log, m: m}, nil
}

// Register serves the OperationsService on r.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	hubhooksv1.RegisterOperationsServiceServer(r, &server{svc: s})
}

// Ready reports nil once Run has ensured the deliveries and ops streams.
func (s *Service) Ready(context.Context) error {
	if !s.streamsReady.Load() {
		return ErrNotReady
	}
	return nil
}

// Run ensures the deliveries and ops streams, then until ctx ends delivers
// operational events to the URLs that take them and disables the URLs that
// failed every attempt for Config.AutoDisableAfter (unless AutoDisableOff).
func (s *Service) Run(ctx context.Context) error {
	o := s.cfg.StreamOptions
	if err := eventbus.Ensure(ctx, s.js, eventbus.DeliveriesStreamConfig(o), eventbus.OpsStreamConfig(o)); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("operations: %w", err)
	}
	s.streamsReady.Store(true)
	var wg sync.WaitGroup
	wg.Go(func() { s.forwardOps(ctx) })
	if !s.cfg.AutoDisableOff {
		wg.Go(func() { s.autoDisable(ctx) })
	}
	wg.Wait()
	return nil
}

type metrics struct {
	autoDisabled prometheus.Counter
	recovered    *prometheus.CounterVec
	replayed     prometheus.Counter
	paused       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		autoDisabled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_operations_urls_auto_disabled_total",
			Help: "Callback URLs disabled because they failed every attempt for the auto-disable period.",
		}),
		recovered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubhooks_operations_recovered_total",
			Help: "Dead or failed deliveries looked at by RecoverDeliveries, by outcome (redelivered, already_recovered, skipped).",
		}, []string{"outcome"}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_operations_replayed_deliveries_total",
			Help: "Deliveries published by ReplayDomainEvents.",
		}),
		paused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_operations_bulk_paused_seconds_total",
			Help: "Time bulk work (recoveries, replays) waited for the deliverer's backlog to shrink.",
		}),
	}
	for _, c := range []prometheus.Collector{m.autoDisabled, m.recovered, m.replayed, m.paused} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	for _, o := range []string{"redelivered", "already_recovered", "skipped"} {
		m.recovered.WithLabelValues(o)
	}
	return m, nil
}
