package expander

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/singleflight"

	"github.com/hubhooks/hubhooks/pkg/batch"
	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/pkg/eventbus"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// ConfigLookup is what the expander needs from the hub config cache
// (*configcache.Cache implements it). Get must be cheap and safe for
// concurrent use; returned configs are shared and never modified.
type ConfigLookup interface {
	// Get returns the cached config of a hub.
	Get(hubID string) (*hubhooksv1.HubConfig, bool)
	// Fetch returns the config of a hub with version >= minVersion, asking
	// configsvc when the cache is older.
	Fetch(ctx context.Context, hubID string, minVersion int64) (*hubhooksv1.HubConfig, error)
	// Ready reports whether the initial snapshot was received.
	Ready() bool
	// WaitReady blocks until Ready or ctx ends.
	WaitReady(ctx context.Context) error
}

// Errors of New and Ready.
var (
	// ErrNilDependency is returned by New for a nil argument.
	ErrNilDependency = errors.New("expander: nil dependency")
	// ErrNotReady is returned by Ready before the consumer exists or while
	// the config cache has no snapshot.
	ErrNotReady = errors.New("expander: not ready")
)

// Service is the expander. Create it with New, then call Run.
type Service struct {
	cfg     Config
	js      jetstream.JetStream
	configs ConfigLookup
	seen    SeenEvents
	rules   *cascade.Rules
	m       *metrics

	consumer atomic.Pointer[jetstream.Consumer]
	position atomic.Uint64 // the consumer's ack floor as last read (trackPosition)
	// seenPausedUntil (Unix ns) is when the seen memory is asked again
	// after it failed.
	seenPausedUntil atomic.Int64
	fanouts         *batch.Batcher[[]*deliveryv1.DeliveryFanout] // per event, live subjects; see sendFanouts
	floodFanouts    *batch.Batcher[[]*deliveryv1.DeliveryFanout] // per event, overflow subjects

	// Moves to the events-overflow stream (overflow.go): the copies
	// awaiting JetStream's ack, bounded by movesInFlight's capacity.
	moves         sync.WaitGroup
	movesInFlight chan struct{}
	overflowWake  chan struct{}

	recheckMu   sync.Mutex
	lastRecheck map[string]time.Time
	recheck     singleflight.Group
}

// New returns an expander. It does no I/O; Run creates the streams and the
// consumer.
func New(cfg Config, js jetstream.JetStream, configs ConfigLookup, seen SeenEvents, rules *cascade.Rules) (*Service, error) {
	var errs []error
	if js == nil {
		errs = append(errs, fmt.Errorf("%w: jetstream", ErrNilDependency))
	}
	if configs == nil {
		errs = append(errs, fmt.Errorf("%w: config lookup", ErrNilDependency))
	}
	if seen == nil {
		errs = append(errs, fmt.Errorf("%w: seen events", ErrNilDependency))
	}
	if rules == nil {
		errs = append(errs, fmt.Errorf("%w: cascade rules", ErrNilDependency))
	}
	errs = append(errs, cfg.Validate())
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("expander: register metrics: %w", err)
	}
	s := &Service{
		cfg:         cfg,
		js:          js,
		configs:     configs,
		seen:        seen,
		rules:       rules,
		m:           m,
		lastRecheck: make(map[string]time.Time),

		movesInFlight: make(chan struct{}, maxMovesInFlight),
		overflowWake:  make(chan struct{}, 1),
	}
	lim := batch.Limits{MaxWeight: fanoutBatchJobs, MaxBytes: fanoutBatchBytes, Flushers: fanoutFlushers, PerKey: fanoutPerHub}
	s.fanouts = batch.New(lim, s.sendFanouts)
	s.floodFanouts = batch.New(lim, s.sendFanouts)
	return s, nil
}

// Limits of one fan-out batch message, and of each of the two batchers:
// one for the live subjects, one for the overflow subjects, so a flood's
// sends, each waiting for its ack, never make a quiet hub's fan-outs wait
// for a flusher. Jobs, not fan-outs, are counted: the
// deliverer holds the jobs of the messages it fetches, and sizes its fetches
// by jobs per message. Flushers publish synchronously, without lingering:
// the fan-outs of a hub's events that arrive while its batch is being
// stored (at most fanoutPerHub of its batches at once) make its next batch,
// so batches grow with the load and an event alone is not delayed. Up to
// fanoutFlushers batches of different hubs are stored at once, so a quiet
// hub's fan-out does not wait for a busy hub's acks.
const (
	fanoutBatchJobs  = 64
	fanoutBatchBytes = 256 << 10
	fanoutFlushers   = 16
	fanoutPerHub     = 2
)

// Ready returns nil once the consumer exists and the config cache has its
// initial snapshot.
func (s *Service) Ready(ctx context.Context) error {
	if s.consumer.Load() == nil {
		return fmt.Errorf("%w: consumer not created", ErrNotReady)
	}
	if !s.configs.Ready() {
		return fmt.Errorf("%w: config cache has no snapshot yet", ErrNotReady)
	}
	return nil
}

// Run ensures the streams and the consumer, waits for the config cache, and
// expands domain events until ctx ends. Then it stops pulling, finishes the
// events in flight (each bounded by PublishTimeout) and returns nil. It
// returns an error only when the set-up fails for a reason other than ctx.
func (s *Service) Run(ctx context.Context) error {
	log := s.cfg.Log.With("service", "expander")
	cons, err := s.setup(ctx, false, 0)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("expander: %w", err)
	}
	overflow, err := s.ensureOverflow(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("expander: %w", err)
	}
	if err := s.configs.WaitReady(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("expander: wait for config cache: %w", err)
	}
	log.Info("expander consuming", "stream", eventbus.StreamEvents, "consumer", eventbus.ConsumerExpander,
		"subjects", s.rules.StreamSubjects())

	// Events are read ahead of the workers into one queue per hub and
	// handed out round-robin across hubs (readAhead), so one hub's flood
	// does not hold up the next hub's events; a flood larger than half the
	// read-ahead goes to the hub's events-overflow subject and comes back
	// with the room other hubs leave (overflow.go). A fixed pool of workers, not
	// a goroutine per event: expanding an event grows a goroutine's stack,
	// and a new goroutine would grow it again for every event. In-flight
	// events finish after ctx ends; each is bounded by PublishTimeout.
	hctx := context.WithoutCancel(ctx)
	q := newReadAhead(s.cfg.MaxAckPending, s.cfg.ReadAheadBytes, s.cfg.OverflowAfter)
	var wg sync.WaitGroup
	// A quarter of the workers take only events of hubs that do not flood:
	// a flood's events hold their workers while their fan-outs are stored.
	reserved := s.cfg.Concurrency / 4
	for i := range s.cfg.Concurrency {
		take := q.take
		if i < reserved {
			take = q.takeQuiet
		}
		wg.Go(func() {
			for {
				p, ok := take()
				if !ok {
					return
				}
				s.m.readAhead.Dec()
				s.process(hctx, p)
			}
		})
	}
	wg.Go(func() { s.heartbeat(ctx, q) })
	wg.Go(func() { s.trackPosition(ctx, log) })
	wg.Go(func() { s.overflowLoop(ctx, q, overflow) })
	toMove, moverDone := make(chan moveReq, moveQueue), make(chan struct{})
	go s.moveLoop(q, toMove, moverDone)
	// The largest event whose copy fits in a message of the server.
	maxMove := min(s.cfg.MaxEventBytes, int(s.js.Conn().MaxPayload())-64<<10)
	handler := func(msg jetstream.Msg) {
		s.m.received.Inc()
		p := s.read(msg)
		s.m.readAhead.Inc()
		switch q.admit(p.hub(), p, movable(p.hub(), p, maxMove)) {
		case admitQueued:
		case admitMove:
			s.m.readAhead.Dec()
			toMove <- moveReq{msg: msg, hub: p.hub()}
		case admitClosed:
			// Shutting down: hand it back for another replica at once.
			s.m.readAhead.Dec()
			_ = msg.Nak()
		}
	}
	defer func() {
		s.handBack(q)
		wg.Wait()
		close(toMove) // the reader is done: the mover publishes what it was handed
		<-moverDone
		s.moves.Wait() // the copies in flight: each then acks or naks its originals
	}()
	for {
		cc, err := cons.Consume(handler,
			jetstream.PullMaxMessagesWithBytesLimit(s.cfg.BatchSize, pullBytes(s.cfg.MaxEventBytes, s.js.Conn().MaxPayload())),
			jetstream.PullExpiry(consumeExpiry),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				log.Warn("expander consume", "err", err)
			}))
		if err == nil {
			select {
			case <-ctx.Done():
				// Stop taking events; those the client still buffers reach
				// the handler, which hands them back once q is closed.
				s.handBack(q)
				cc.Drain()
				<-cc.Closed()
				return nil
			case <-cc.Closed():
				log.Warn("expander consumer stopped; restarting")
			}
		} else {
			log.Warn("expander consume", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
		// The consumer may have been deleted: ensure it again.
		if c, err := s.setup(ctx, true, s.position.Load()); err == nil {
			cons = c
		} else if ctx.Err() == nil {
			log.Warn("expander re-create consumer", "err", err)
		}
	}
}

// consumeExpiry is how long one pull request of the reader lasts, and so
// (twice its heartbeat) how long the reader waits for a pull the server no
// longer serves before it pulls again. In benchmark floods the reader's
// pull went unserved, without heartbeats, until the client's default 30 s
// check ("no heartbeat received"): every hub's next event waited 30 s.
const consumeExpiry = 5 * time.Second

// handBack closes the read-ahead and naks the events still queued, so the
// server hands them to another replica at once rather than after the ack
// wait. The workers finish the events they hold.
func (s *Service) handBack(q *readAhead) {
	for _, p := range q.close() {
		_ = p.msg.Nak()
		s.m.readAhead.Dec()
	}
}

// heartbeat reports in progress the events that have waited in the
// read-ahead longer than half the ack wait (a flood takes a while to work
// through), so the server does not deliver them again meanwhile. It
// returns when ctx ends.
func (s *Service) heartbeat(ctx context.Context, q *readAhead) {
	t := time.NewTicker(max(s.cfg.AckWait/4, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		for _, m := range q.stale(now.Add(-s.cfg.AckWait/2), now) {
			_ = m.InProgress()
		}
	}
}

// pullBytes bounds what one pull of the events consumer may bring: a
// BatchSize of events as large as they may be would be gigabytes. It must
// hold the largest message the server accepts (maxPayload, plus its
// subject and reply), even one too large to expand, or the consumer stalls
// on it.
func pullBytes(maxEvent int, maxPayload int64) int {
	return max(8<<20, 2*maxEvent, int(maxPayload)+64<<10)
}
