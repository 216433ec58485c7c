// Package deliverer is the deliverer service: it consumes delivery jobs from
// JetStream, POSTs them to callback URLs with a webhook.Sender, records every
// attempt on the attempts stream for the logger, stores retries durably in
// Redis and republishes them when due, and cancels a hub's pending retries
// when its URL is removed or its triggers are disabled.
//
// Isolation: jobs are queued per (hub, URL) lane with a concurrency limit
// and a small queue per lane, a per-hub limit and a global limit, and a
// circuit breaker per lane, so a slow or dead URL never holds up other URLs.
// See docs/delivery.md.
package deliverer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/semaphore"
	"google.golang.org/protobuf/proto"

	"github.com/hubhooks/hubhooks/pkg/batch"
	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// Errors.
var (
	// ErrNotReady: a dependency of the deliverer is not ready.
	ErrNotReady = errors.New("deliverer not ready")
	// ErrAlreadyRunning: Run was called twice.
	ErrAlreadyRunning = errors.New("deliverer already running")
)

// Service is the deliverer. Build it with New and run it with Run.
type Service struct {
	cfg     Config
	js      jetstream.JetStream
	rdb     *redis.Client
	configs ConfigSource
	sender  webhook.Sender
	log     *slog.Logger
	metrics *metrics
	retries *retryStore
	breaker *breakers
	records *batch.Batcher[sizedRecord]

	consumer atomic.Pointer[jetstream.Consumer]
	running  atomic.Bool
	// jobsPerMsg is the moving average of jobs per fetched message (see
	// fetchCount); the fetch loop's own, as dispatch runs on it.
	jobsPerMsg float64

	global *semaphore.Weighted
	// stopCtx ends when shutdown starts (no new work): Run cancels it
	// before it takes mu to send the queued jobs back, so whoever takes mu
	// after that sees it ended (stopping) and queues nothing more. workCtx
	// ends at the hard stop (in-flight POSTs are abandoned).
	stopCtx  context.Context
	stop     context.CancelFunc
	workCtx  context.Context
	hardStop context.CancelFunc
	wg       sync.WaitGroup

	mu    sync.Mutex
	lanes map[string]*lane
	hubs  map[string]*hubLimit
	held  map[*heldJob]struct{}
	space chan struct{}

	dirtyMu sync.Mutex
	dirty   map[string]struct{}
	dirtyCh chan struct{}
	wakeCh  chan struct{}
}

type lane struct {
	active int
	queue  []*heldJob
	// lastDone is when a POST of the lane last returned (or the lane last
	// finished a job): a lane whose POSTs do not return (a hanging URL) may
	// queue only a few jobs, so it can never take the fetch loop's room from
	// healthy URLs.
	lastDone time.Time
}

// stuck reports whether none of the lane's POSTs returned in the second
// before now: its URL accepts connections but does not answer.
func (l *lane) stuck(now time.Time) bool { return now.Sub(l.lastDone) > time.Second }

// laneKey identifies the lane (and the circuit breaker) of job's URL.
func laneKey(job *deliveryv1.DeliveryJob) string { return job.GetHubId() + " " + job.GetUrl() }

// queueLimit is how many jobs l may queue: Config.PerURLQueue (at most
// half of what the replica holds, so one URL never takes all the fetch
// loop's room) while its POSTs return, PerURLConcurrency when none returned
// in the last second.
func (s *Service) queueLimit(l *lane, now time.Time) int {
	if l.stuck(now) {
		return min(s.cfg.PerURLQueue, s.cfg.PerURLConcurrency)
	}
	return min(s.cfg.PerURLQueue, s.maxHeld()/2)
}

type hubLimit struct {
	sem  *semaphore.Weighted
	refs int
}

type heldJob struct {
	msg     settler
	job     *deliveryv1.DeliveryJob
	key     string
	touched time.Time // last fetch or InProgress, under Service.mu
	fetched time.Time
	park    parkState // how holdLoop takes its attempt out of the stream
}

// New returns a deliverer. It validates cfg and refuses nil dependencies.
func New(cfg Config, js jetstream.JetStream, rdb *redis.Client, configs ConfigSource, sender webhook.Sender) (*Service, error) {
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
	s := &Service{
		cfg: cfg, js: js, rdb: rdb, configs: configs, sender: sender,
		log:     cfg.Log.With("service", "deliverer"),
		metrics: m,
		retries: newRetryStore(rdb, cfg.RedisPrefix),
		global:  semaphore.NewWeighted(int64(cfg.Concurrency)),
		lanes:   map[string]*lane{},
		hubs:    map[string]*hubLimit{},
		held:    map[*heldJob]struct{}{},
		space:   make(chan struct{}, 1),
		dirty:   map[string]struct{}{},
		dirtyCh: make(chan struct{}, 1),
		wakeCh:  make(chan struct{}, 1),
	}
	s.records = newRecordBatcher(s.sendRecords, recordLinger)
	s.breaker = newBreakers(cfg.BreakerFailures, cfg.BreakerCooldown, m, s.log)
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	s.workCtx, s.hardStop = context.WithCancel(context.Background())
	configs.OnChange(func(old, cur *hubhooksv1.HubConfig) {
		if !needsCancel(old, cur) {
			return
		}
		hub := old.GetHubId()
		if cur != nil {
			hub = cur.GetHubId()
		}
		s.markDirty(hub)
	})
	return s, nil
}

// maxHeld bounds the jobs this replica holds unacknowledged.
func (s *Service) maxHeld() int { return 4 * s.cfg.Concurrency }

// Run ensures the streams and the consumer, then delivers until ctx ends.
// It then stops fetching, hands queued jobs back to JetStream, waits for
// in-flight POSTs (at most Config.ShutdownTimeout), records and acks them,
// and returns. It returns nil after a clean shutdown.
func (s *Service) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	o := s.cfg.StreamOptions
	if err := eventbus.Ensure(ctx, s.js, eventbus.DeliveriesStreamConfig(o), eventbus.AttemptsStreamConfig(o), eventbus.DeadLettersStreamConfig(o)); err != nil {
		return s.abort(ctx, err)
	}
	cons, err := eventbus.EnsureConsumer(ctx, s.js, eventbus.StreamDeliveries,
		eventbus.ConsumerConfig(eventbus.ConsumerDeliverer, s.cfg.AckWait, s.cfg.MaxAckPending))
	if err != nil {
		return s.abort(ctx, err)
	}
	s.consumer.Store(&cons)
	s.log.Info("deliverer started", "concurrency", s.cfg.Concurrency, "per_url", s.cfg.PerURLConcurrency,
		"per_hub", s.cfg.PerHubConcurrency, "schedule", fmt.Sprint(s.cfg.Schedule))

	var loops sync.WaitGroup
	loops.Go(func() { s.schedulerLoop(ctx) })
	loops.Go(func() { s.cancelLoop(ctx) })
	loops.Go(s.heartbeatLoop)
	loops.Go(s.holdLoop)
	s.waitConfigs(ctx)
	s.fetchLoop(ctx, cons)

	// Shutdown: no new work; queued jobs go back to JetStream.
	s.stop()
	s.mu.Lock()
	var queued []*heldJob
	for key, l := range s.lanes {
		queued = append(queued, l.queue...)
		l.queue = nil
		if l.active == 0 {
			delete(s.lanes, key)
		}
	}
	s.mu.Unlock()
	for _, h := range queued {
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
	loops.Wait()
	s.log.Info("deliverer stopped")
	return nil
}

// stopping reports whether shutdown has started (see stopCtx).
func (s *Service) stopping() bool { return s.stopCtx.Err() != nil }

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

// configWait bounds how long Run waits for the config cache's snapshot
// before it takes jobs anyway.
const configWait = 10 * time.Second

// waitConfigs returns once the config cache has its first snapshot, or after
// configWait. A job taken before would ask configsvc for its hub's config on
// its own (or, while configsvc is still starting, fail and be retried
// later); a configsvc that stays away must not stop delivery, so the wait
// is bounded.
func (s *Service) waitConfigs(ctx context.Context) {
	if s.configs.Ready() {
		return
	}
	s.log.Info("waiting for the hub configs snapshot before taking jobs", "at_most", configWait)
	wctx, cancel := context.WithTimeout(ctx, configWait)
	defer cancel()
	if err := s.configs.WaitReady(wctx); err != nil && ctx.Err() == nil {
		s.log.Warn("no hub configs snapshot yet; taking jobs anyway (their configs are fetched one by one)", "waited", configWait)
	}
}

func (s *Service) fetchLoop(ctx context.Context, cons jetstream.Consumer) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		s.mu.Lock()
		room := s.maxHeld() - len(s.held)
		s.mu.Unlock()
		if room <= 0 {
			select {
			case <-ctx.Done():
				return
			case <-s.space:
			}
			continue
		}
		batch, err := cons.Fetch(s.fetchCount(room), jetstream.FetchMaxWait(s.cfg.FetchWait))
		if err == nil {
			for msg := range batch.Messages() {
				s.dispatch(msg)
			}
			err = batch.Error()
		}
		if err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			s.metrics.handlingErrors.WithLabelValues("fetch").Inc()
			s.log.Warn("fetch delivery jobs", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
	}
}

// fetchCount is how many messages to fetch for room more held jobs: a
// message holds one job, the targets of a fan-out or the jobs of a fan-out
// batch, so room is divided by the recent jobs per message (at least one
// message, at most FetchBatch).
func (s *Service) fetchCount(room int) int {
	return max(1, min(int(float64(room)/max(s.jobsPerMsg, 1)), s.cfg.FetchBatch))
}

// countJobsPerMsg updates the moving average of jobs per message (weight
// 1/8 for the newest).
func (s *Service) countJobsPerMsg(n int) { s.jobsPerMsg += (float64(n) - s.jobsPerMsg) / 8 }

// dispatch queues the jobs of msg (one, the targets of a fan-out or the
// jobs of a fan-out batch) on their URLs' lanes. It never blocks, and runs
// on the fetch loop only.
func (s *Service) dispatch(msg jetstream.Msg) {
	jobs, err := eventbus.DecodeJobs(msg.Headers(), msg.Data())
	for i := 0; err == nil && i < len(jobs); i++ {
		err = validJob(jobs[i])
	}
	if err != nil {
		s.poison(msg, err)
		return
	}
	s.countJobsPerMsg(len(jobs))
	if s.cfg.Recorded != nil {
		again := msg.Headers().Get(eventbus.HeaderRecheck) != ""
		if md, err := msg.Metadata(); err == nil && md.NumDelivered > 1 {
			again = true
		}
		if again {
			// Delivered again, or expanded again (its jobs may have gone
			// out in a fan-out batch before): some jobs may be done
			// already. Asking the log takes a Redis round trip each, so
			// not on the fetch loop.
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.enqueueAll(msg, s.notRecorded(jobs))
			}()
			return
		}
	}
	s.enqueueAll(msg, jobs)
}

// enqueueAll queues jobs, all or some of the jobs of msg, and acks msg
// when none is left.
func (s *Service) enqueueAll(msg jetstream.Msg, jobs []*deliveryv1.DeliveryJob) {
	switch len(jobs) {
	case 0:
		if err := msg.Ack(); err != nil {
			s.metrics.handlingErrors.WithLabelValues("ack").Inc()
		}
	case 1:
		s.enqueue(msg, jobs[0])
	default:
		f := &fanout{s: s, msg: msg, left: len(jobs)}
		for _, job := range jobs {
			s.enqueue(&fanoutShare{f: f, job: job}, job)
		}
	}
}

// attemptRecorded asks the event log (Config.Recorded) whether it holds
// job's attempt.
func (s *Service) attemptRecorded(ctx context.Context, job *deliveryv1.DeliveryJob) (bool, error) {
	done, err := s.recorded(ctx, []*deliveryv1.DeliveryJob{job})
	if err != nil {
		return false, err
	}
	return done[0], nil
}

// recorded asks the event log (Config.Recorded), in one round trip, which
// of jobs it holds the attempt of: jobs of one message, so of one hub (a
// fan-out's targets share its hub, see eventbus.DecodeJobs).
func (s *Service) recorded(ctx context.Context, jobs []*deliveryv1.DeliveryJob) ([]bool, error) {
	ids, attempts := make([]string, len(jobs)), make([]int32, len(jobs))
	for i, job := range jobs {
		ids[i], attempts[i] = job.GetDeliveryId(), max(job.GetAttempt(), 1)
	}
	done, err := s.cfg.Recorded(ctx, jobs[0].GetHubId(), ids, attempts)
	if err == nil && len(done) != len(jobs) {
		err = fmt.Errorf("recorded: %d answers for %d jobs", len(done), len(jobs))
	}
	return done, err
}

// notRecorded returns the jobs of one message whose attempt the event log
// does not hold yet (all of them when the log cannot be asked).
func (s *Service) notRecorded(jobs []*deliveryv1.DeliveryJob) []*deliveryv1.DeliveryJob {
	ctx, cancel := context.WithTimeout(s.workCtx, s.cfg.OpTimeout)
	defer cancel()
	done, err := s.recorded(ctx, jobs)
	if err != nil {
		s.metrics.handlingErrors.WithLabelValues("recorded").Inc()
		return jobs
	}
	out := jobs[:0:0]
	for i, job := range jobs {
		if done[i] {
			s.metrics.alreadyDone.Inc()
			continue
		}
		out = append(out, job)
	}
	return out
}

// enqueue queues job on its URL's lane, starts it when the lane has a free
// slot, parks it when the lane is full, or fails it fast when the lane's URL
// does not answer.
func (s *Service) enqueue(msg settler, job *deliveryv1.DeliveryJob) {
	now := time.Now()
	h := &heldJob{msg: msg, job: job, key: laneKey(job), touched: now, fetched: now}
	if s.breaker.open(h.key) {
		// The URL's breaker is open: fail the attempt now (recorded, retried
		// after the cool-down) without queueing it behind the lane, where
		// jobs that are going to fail fast anyway would take the room of
		// every other URL's jobs.
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handleJob(msg, job, h.key, ErrCircuitOpen, nil, nil)
		}()
		return
	}
	s.mu.Lock()
	if s.stopping() {
		s.mu.Unlock()
		_ = msg.Nak()
		return
	}
	l := s.lanes[h.key]
	if l == nil {
		// A new lane counts as having just finished: it is not stuck
		// before it has had a second to answer.
		l = &lane{lastDone: h.touched}
		s.lanes[h.key] = l
	}
	switch {
	case l.active < s.cfg.PerURLConcurrency:
		l.active++
		s.held[h] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.metrics.held.Inc()
		go s.runLane(h)
	case len(l.queue) < s.queueLimit(l, h.touched):
		l.queue = append(l.queue, h)
		s.held[h] = struct{}{}
		s.mu.Unlock()
		s.metrics.held.Inc()
	case l.stuck(h.touched):
		// The lane is full and has finished nothing for a second: its URL
		// does not answer. Fail this attempt at once (recorded, retried on
		// the schedule) rather than park it again and again.
		s.wg.Add(1)
		s.mu.Unlock()
		s.metrics.queueFull.Inc()
		go func() {
			defer s.wg.Done()
			s.handleJob(msg, job, h.key, ErrEndpointStuck, nil, nil)
		}()
	default:
		s.wg.Add(1)
		s.mu.Unlock()
		s.metrics.queueFull.Inc()
		go s.deferJob(msg, job)
	}
}

// deferJob parks a job whose URL lane is full (but finishing attempts) in
// the retry store — the same attempt, with job.deferrals counting the
// parkings — and acks it; it comes back after QueueFullDelay, growing with
// each parking. The backlog so waits in Redis, not in the consumer's
// ack-pending window, where it would hold back every other URL once that
// window filled.
func (s *Service) deferJob(msg settler, job *deliveryv1.DeliveryJob) {
	defer s.wg.Done()
	next := proto.Clone(job).(*deliveryv1.DeliveryJob)
	next.Deferrals++
	delay := jitter(s.cfg.QueueFullDelay*time.Duration(min(next.GetDeferrals(), 10)), 0.5)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.OpTimeout)
	defer cancel()
	if err := s.retries.store(ctx, next, time.Now().Add(delay)); err != nil {
		s.metrics.handlingErrors.WithLabelValues("store_deferral").Inc()
		_ = msg.NakWithDelay(delay)
		return
	}
	if delay < s.cfg.PollInterval {
		s.wakeScheduler()
	}
	if err := msg.Ack(); err != nil {
		s.log.Warn("ack deferred job (it may be attempted twice)", "delivery", job.GetDeliveryId(), "err", err)
	}
}

func validJob(job *deliveryv1.DeliveryJob) error {
	switch {
	case job.GetDeliveryId() == "":
		return errors.New("job without delivery_id")
	case job.GetHubId() == "":
		return errors.New("job without hub_id")
	case job.GetUrl() == "":
		return errors.New("job without url")
	}
	return nil
}

func (s *Service) poison(msg jetstream.Msg, reason error) {
	s.metrics.poison.Inc()
	s.log.Error("undecodable delivery job moved to the dead-letter stream", "subject", msg.Subject(), "err", reason)
	dl := eventbus.DeadLetterOf(eventbus.SubjectDeadLetterJobs, msg, eventbus.StreamDeliveries, reason.Error())
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.OpTimeout)
	defer cancel()
	if _, err := s.js.PublishMsg(ctx, dl); err != nil {
		s.log.Warn("publish dead letter", "err", err)
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	_ = msg.Term()
}

// runLane processes h, then the lane's queued jobs, until the lane is empty.
func (s *Service) runLane(h *heldJob) {
	defer s.wg.Done()
	for h != nil {
		s.process(h)
		s.mu.Lock()
		l := s.lanes[h.key]
		l.lastDone = time.Now()
		if !s.stopping() && len(l.queue) > 0 {
			h = l.queue[0]
			l.queue[0] = nil
			l.queue = l.queue[1:]
		} else {
			l.active--
			if l.active == 0 && len(l.queue) == 0 {
				delete(s.lanes, h.key)
			}
			h = nil
		}
		s.mu.Unlock()
	}
}

// process handles the job of h (on its lane): it returns when the POST is
// over; h stays held until its record is published and it is acked.
func (s *Service) process(h *heldJob) {
	s.handleJob(h.msg, h.job, h.key, nil, &h.park, func() { s.release(h) })
}

// acquireSlots takes a slot of hub's and one of the replica's POST limits
// (Config.PerHubConcurrency, Config.Concurrency) for one POST to laneKey's
// URL; only the POST holds them, not the bookkeeping around it. release,
// called when the POST returns, also notes that the lane is not stuck
// (however long its bookkeeping takes on a busy machine). It reports false
// when the deliverer is stopping.
func (s *Service) acquireSlots(hubID, laneKey string) (release func(), ok bool) {
	hub := s.acquireHub(hubID)
	if err := hub.Acquire(s.stopCtx, 1); err != nil {
		s.releaseHub(hubID)
		return nil, false
	}
	if err := s.global.Acquire(s.stopCtx, 1); err != nil {
		hub.Release(1)
		s.releaseHub(hubID)
		return nil, false
	}
	return func() {
		s.global.Release(1)
		hub.Release(1)
		now := time.Now()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.releaseHubLocked(hubID)
		if l := s.lanes[laneKey]; l != nil {
			l.lastDone = now
		}
	}, true
}

func (s *Service) acquireHub(hub string) *semaphore.Weighted {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.hubs[hub]
	if l == nil {
		l = &hubLimit{sem: semaphore.NewWeighted(int64(s.cfg.PerHubConcurrency))}
		s.hubs[hub] = l
	}
	l.refs++
	return l.sem
}

func (s *Service) releaseHub(hub string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseHubLocked(hub)
}

func (s *Service) releaseHubLocked(hub string) {
	if l := s.hubs[hub]; l != nil {
		l.refs--
		if l.refs == 0 {
			delete(s.hubs, hub)
		}
	}
}

func (s *Service) release(h *heldJob) {
	s.mu.Lock()
	delete(s.held, h)
	s.mu.Unlock()
	s.metrics.held.Dec()
	select {
	case s.space <- struct{}{}:
	default:
	}
}

// heartbeatLoop tells JetStream that jobs held longer than half the ack
// wait (queued behind a slow URL, or in flight) are still being worked on.
// It also forgets idle circuit breakers.
func (s *Service) heartbeatLoop() {
	tick := max(s.cfg.AckWait/4, 500*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	lastPrune := time.Now()
	for {
		select {
		case <-s.workCtx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		var touch []settler
		s.mu.Lock()
		for h := range s.held {
			if now.Sub(h.touched) > s.cfg.AckWait/2 {
				h.touched = now
				touch = append(touch, h.msg)
			}
		}
		s.mu.Unlock()
		for _, m := range touch {
			_ = m.InProgress()
		}
		if now.Sub(lastPrune) > time.Minute {
			s.breaker.prune(now.Add(-10 * time.Minute))
			lastPrune = now
		}
	}
}

// jitter spreads d uniformly by ±frac.
func jitter(d time.Duration, frac float64) time.Duration {
	if d <= 0 || frac <= 0 {
		return max(d, 0)
	}
	f := 1 + frac*(2*rand.Float64()-1)
	return time.Duration(float64(d) * f)
}
