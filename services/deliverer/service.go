package deliverer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/hubhooks/hubhooks/pkg/batch"
	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	"github.com/hubhooks/hubhooks/services/internal/urlhealth"
)

// Errors.
var (
	// ErrNotReady: a dependency of the deliverer is not ready.
	ErrNotReady = errors.New("deliverer not ready")
	// ErrAlreadyRunning: Run was called twice.
	ErrAlreadyRunning = errors.New("deliverer already running")
)

// Service is the deliverer. Build it with New and run it with Run. Each
// mechanism keeps its state in a type of its own, with its own lock where
// it is shared (see the package documentation for the map).
type Service struct {
	cfg      Config
	js       jetstream.JetStream
	configs  ConfigSource
	eventLog AttemptLog
	sender   webhook.Sender
	log      *slog.Logger
	metrics  *metrics

	held     *heldJobs                   // jobs holding their JetStream message
	lanes    *lanes                      // per-URL queues and concurrency
	slots    *slots                      // per-hub and replica POST limits
	breakers *breakers                   // per-URL circuit breakers
	observer *observer                   // URL health and operational events
	retries  *retryStore                 // retries and parked jobs, in Redis
	records  *batch.Batcher[sizedRecord] // attempt records on their way to JetStream
	changed  *changedHubs                // hubs whose pending retries to cancel
	rewinds  *rewinds                    // consumers handing out messages again
	// schedulerWake makes the scheduler look for due retries before its
	// next poll.
	schedulerWake chan struct{}
	// overflowWake makes the overflow loop ask the shards now.
	overflowWake chan struct{}
	// brake bounds backlog POSTs (Config.BacklogBrake); nil when off.
	brake *brake

	consumer atomic.Pointer[jetstream.Consumer]
	running  atomic.Bool
	// parkPausedUntil (Unix ns): no job is parked before it (park.go).
	parkPausedUntil atomic.Int64

	// stopCtx ends when shutdown starts: no new work (the lanes close right
	// after). workCtx ends at the hard stop: in-flight POSTs are abandoned.
	stopCtx  context.Context
	stop     context.CancelFunc
	workCtx  context.Context
	hardStop context.CancelFunc
	// wg counts the goroutines that attempt, settle or park jobs; shutdown
	// waits for them.
	wg sync.WaitGroup
	// runners run lanes, settle records and fail jobs fast (runners.go).
	runners *runners
}

// New returns a deliverer. It validates cfg and refuses nil dependencies.
func New(cfg Config, js jetstream.JetStream, rdb redis.UniversalClient, configs ConfigSource, eventLog AttemptLog, sender webhook.Sender) (*Service, error) {
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if js == nil {
		errs = append(errs, errors.New("deliverer: nil JetStream"))
	}
	if rdb == nil {
		errs = append(errs, errors.New("deliverer: nil Redis client"))
	}
	if configs == nil {
		errs = append(errs, errors.New("deliverer: nil config source"))
	}
	if eventLog == nil {
		errs = append(errs, errors.New("deliverer: nil event log (AttemptLog)"))
	}
	if sender == nil {
		errs = append(errs, errors.New("deliverer: nil webhook sender"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if t, ok := sender.(interface{ Timeout() time.Duration }); ok && cfg.SendTimeout == 0 {
		cfg.SendTimeout = t.Timeout()
	}
	cfg = cfg.WithDefaults()
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	maxHeld := 4 * cfg.Concurrency
	s := &Service{
		cfg: cfg, js: js, configs: configs, eventLog: eventLog, sender: sender,
		log:           cfg.Log.With("service", "deliverer"),
		metrics:       m,
		held:          newHeldJobs(maxHeld),
		lanes:         newLanes(cfg.PerURLConcurrency, cfg.AdaptiveConcurrency, cfg.PerURLQueue, maxHeld),
		slots:         newSlots(cfg.Concurrency, cfg.PerHubConcurrency),
		retries:       newRetryStore(rdb, cfg.RedisPrefix, cfg.RedisWaitReplicas, cfg.RedisWaitTimeout),
		changed:       newChangedHubs(),
		rewinds:       newRewinds(),
		schedulerWake: make(chan struct{}, 1),
		overflowWake:  make(chan struct{}, 1),
	}
	health, err := urlhealth.New(rdb, cfg.RedisPrefix)
	if err != nil {
		return nil, err
	}
	s.observer = newObserver(js, urlhealth.NewTracker(health, cfg.HealthInterval), cfg.OpTimeout,
		func(stage string) { m.handlingErrors.WithLabelValues(stage).Inc() })
	s.breakers = newBreakers(cfg.BreakerFailures, cfg.BreakerCooldown, m, s.log, s.observer.circuitChanged)
	s.records = newRecordBatcher(s.sendRecords, recordLinger)
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	s.runners = newRunners(&s.wg, s.stopCtx.Done(), s.metrics.runnersStarted)
	s.workCtx, s.hardStop = context.WithCancel(context.Background())
	if cfg.BacklogBrake {
		s.brake = newBrake(cfg.Concurrency, cfg.brakeShare)
	}
	s.watchConfigs()
	return s, nil
}

// Run ensures the streams and the consumer, then delivers until ctx ends.
// It then stops fetching, hands queued jobs back to JetStream, waits for
// in-flight POSTs (at most Config.ShutdownTimeout), records and acks them,
// and returns. It returns nil after a clean shutdown.
func (s *Service) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	cons, overflow, err := s.ensure(ctx)
	if err != nil {
		return s.abort(ctx, err)
	}
	s.log.Info("deliverer started", "concurrency", s.cfg.Concurrency, "per_url", s.cfg.PerURLConcurrency, "per_url_adaptive", s.cfg.AdaptiveConcurrency, "backlog_brake", s.cfg.BacklogBrake,
		"per_hub", s.cfg.PerHubConcurrency, "schedule", fmt.Sprint(s.cfg.Schedule))

	var loops sync.WaitGroup
	loops.Go(func() { s.schedulerLoop(ctx) })
	loops.Go(func() { s.cancelLoop(ctx) })
	loops.Go(s.heartbeatLoop)
	loops.Go(s.holdLoop)
	loops.Go(func() { s.breakers.pruneLoop(s.workCtx.Done()) })
	s.metrics.brakeLimit.Set(float64(s.cfg.Concurrency))
	if s.brake != nil {
		loops.Go(func() {
			s.brake.run(s.stopCtx, func(limit int) { s.metrics.brakeLimit.Set(float64(limit)) })
		})
	}
	s.waitConfigs(ctx)
	var fetchers sync.WaitGroup
	fetchers.Go(func() { s.overflowLoop(ctx, overflow) })
	s.fetchLoop(ctx, cons)
	fetchers.Wait()
	s.shutdown()
	loops.Wait()
	s.log.Info("deliverer stopped")
	return nil
}

// ensure ensures the streams and the consumers: the live one and one per
// overflow shard.
func (s *Service) ensure(ctx context.Context) (live jetstream.Consumer, overflow []jetstream.Consumer, err error) {
	o := s.cfg.StreamOptions
	if err := eventbus.Ensure(ctx, s.js, eventbus.DeliveriesStreamConfig(o), eventbus.AttemptsStreamConfig(o), eventbus.DeadLettersStreamConfig(o), eventbus.OpsStreamConfig(o)); err != nil {
		return nil, nil, err
	}
	live, err = eventbus.EnsureConsumer(ctx, s.js, eventbus.StreamDeliveries, eventbus.LiveConsumerConfig(s.cfg.AckWait, s.cfg.MaxAckPending))
	if err != nil {
		return nil, nil, err
	}
	cfgs := make([]jetstream.ConsumerConfig, eventbus.OverflowShards)
	for shard := range cfgs {
		cfgs[shard] = eventbus.OverflowConsumerConfig(shard, s.cfg.AckWait, s.cfg.MaxAckPending)
	}
	if overflow, err = eventbus.EnsureConsumers(ctx, s.js, eventbus.StreamDeliveries, cfgs...); err != nil {
		return nil, nil, err
	}
	s.consumer.Store(&live)
	return live, overflow, nil
}

// remake makes the consumer (and the stream) again after a fetch found
// them deleted, saying so loudly: no hubhooks identity may delete them.
// The deliveries stream is a work queue, so a new consumer starts with
// the jobs it still holds: nothing done is done again. It returns cons
// when they exist after all, or cannot be made now.
func (s *Service) remake(ctx context.Context, cons jetstream.Consumer, gone error) jetstream.Consumer {
	s.metrics.consumerLost.Inc()
	s.log.Error("the deliverer's consumer or the deliveries stream was deleted while the deliverer ran (no hubhooks identity may delete them: someone with the NATS rights did); making them again: a deleted stream's jobs are gone",
		"stream", eventbus.StreamDeliveries, "consumer", eventbus.ConsumerDeliverer, "err", gone)
	s.rewinds.forget()
	c, _, err := s.ensure(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("make the deliverer's consumer again", "err", err)
		}
		return cons
	}
	return c
}

// shutdown takes no new work, hands the queued jobs back to JetStream,
// waits for the jobs in flight (at most Config.ShutdownTimeout, then
// abandons their POSTs) and stops the loops that remain.
func (s *Service) shutdown() {
	s.stop()
	for _, h := range s.lanes.close() {
		_ = h.msg.Nak()
		s.release(h)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.cfg.ShutdownTimeout):
		s.log.Warn("shutdown timeout: abandoning in-flight POSTs", "timeout", s.cfg.ShutdownTimeout)
		s.hardStop()
		<-done
	}
	s.hardStop()
}

func (s *Service) abort(ctx context.Context, err error) error {
	s.stop()
	s.hardStop()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Ready reports nil when the consumer exists and the config cache has its
// snapshot. Redis is not pinged here: the process checks its connections
// once per probe (assembly's "redis" check), however many services share it.
func (s *Service) Ready(ctx context.Context) error {
	var errs []error
	if c := s.consumer.Load(); c == nil {
		errs = append(errs, errors.New("consumer not created yet"))
	} else if _, err := (*c).Info(ctx); err != nil {
		errs = append(errs, fmt.Errorf("consumer: %w", err))
	}
	if !s.configs.Ready() {
		errs = append(errs, errors.New("config cache has no snapshot yet"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	return nil
}
