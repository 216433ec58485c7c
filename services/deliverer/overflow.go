package deliverer

import (
	"context"
	"math"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/turns"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
)

// Fairness across hubs: the live consumer is one queue for every hub, so a
// hub that publishes 100,000 deliveries at once would put them all in front
// of the next hub's job. Instead, the share of live work is counted per
// (hub, URL) lane (Config.LaneShare jobs taken from live messages): a live
// message all of whose lanes hold their share already — a lane whose jobs
// would fail fast aside, since it holds nothing more — is moved to its hub's
// overflow shard (moveToOverflow: a copy, then the ack) rather than taken.
// Per lane, not per hub: a fan-out message carries one webhook event's jobs
// for all of a hub's URLs, so a URL that never answers, its lane full, would
// otherwise send its hub's healthy URLs behind the backlog with it; a flood
// to every URL of a hub fills every lane and still goes to overflow. The
// overflow loop takes overflow messages
// only with the room live traffic leaves (heldJobs.overflowRoom), in turns
// across the shards (deficit round robin in jobs). So a burst waits in its
// shard, a quiet hub's message behind it in the live queue is taken at
// once, and the bursting hub still gets every slot the others leave.
// Recoveries and replays are published on the overflow subject from the
// start (services/operations). Subjects and consumers: pkg/eventbus,
// overflow.go.

// overflowQuantum is how many jobs a shard with messages may take per
// turn: about one fan-out batch message.
const overflowQuantum = 64

// overflowIdle is how long a shard that had nothing waits before it is
// asked again, unless this replica moves a message to overflow first
// (another replica's moves are seen within this).
const overflowIdle = 250 * time.Millisecond

// overShare reports whether every lane jobs (of one hub) are for holds its
// share of live work already, so that taking them would only queue them
// behind their lanes' work: then they go to overflow. A lane whose jobs
// would fail fast (its breaker open, or stuck with a full queue) takes
// none of its share, and does not decide: when all of the lanes are such,
// the jobs are taken and fail fast at once rather than be copied first.
// Jobs taken from overflow do not count: a hub's backlog there (a flood,
// or a replay or recovery, which go there from the start) must not send
// the hub's own live traffic behind it.
func (s *Service) overShare(jobs ...*deliveryv1.DeliveryJob) bool {
	var seen [8]string // a hub has at most 5 URLs
	checked, over, now := seen[:0], false, time.Now()
	for _, job := range jobs {
		key := laneKey(job)
		if slices.Contains(checked, key) {
			continue
		}
		checked = append(checked, key)
		switch {
		case s.held.liveOfLane(key) < s.cfg.LaneShare:
			return false
		case s.breakers.open(key) || s.lanes.failsFast(key, now):
		default:
			over = true
		}
	}
	return over
}

// takeLive dispatches a live message and returns how many jobs it holds,
// or moves it to its hub's overflow shard (kept false) when every lane it
// has jobs for holds its share of live work already (overShare). It never
// blocks.
func (s *Service) takeLive(msg jetstream.Msg) (jobs int, kept bool) {
	all, overflow, ok := s.decode(msg)
	if !ok {
		return 0, true
	}
	check := s.mayBeDone(msg)
	if !overflow && s.overShare(all...) {
		s.moveToOverflow(msg, all[0].GetHubId(), check.recheckMark())
		return 0, false
	}
	s.dispatch(msg, all, overflow, check)
	return len(all), true
}

// moveToOverflow copies msg, a live message of hub, to hub's overflow shard
// and acks it once JetStream stored the copy; when the copy fails, msg is
// nak'ed and comes back live. A deliverer dying in between leaves both: the
// copy of a message that may be done (mayBeDone; recheck is its mark)
// carries HeaderRecheck (or has the same Nats-Msg-Id as the first copy and
// is dropped), so no job is attempted twice unless it was in flight.
func (s *Service) moveToOverflow(msg jetstream.Msg, hub, recheck string) {
	fut, err := s.js.PublishMsgAsync(eventbus.OverflowCopyOf(hub, msg.Headers(), msg.Data(), recheck),
		jetstream.WithExpectStream(eventbus.StreamDeliveries))
	if err != nil {
		s.overflowFailed(msg, hub, err)
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-fut.Ok():
		case err := <-fut.Err():
			s.overflowFailed(msg, hub, err)
			return
		case <-time.After(s.cfg.OpTimeout):
			s.overflowFailed(msg, hub, context.DeadlineExceeded)
			return
		}
		s.metrics.overflowMoved.Inc()
		s.wakeOverflow()
		if err := msg.Ack(); err != nil {
			s.metrics.handlingErrors.WithLabelValues("ack").Inc()
		}
	}()
}

func (s *Service) overflowFailed(msg jetstream.Msg, hub string, err error) {
	s.metrics.handlingErrors.WithLabelValues("move_to_overflow").Inc()
	s.log.Warn("move a delivery message to its hub's overflow shard; it comes back live", "hub", hub, "err", err)
	_ = msg.NakWithDelay(jitter(time.Second, 0.5))
}

// wakeOverflow makes the overflow loop ask the shards now.
func (s *Service) wakeOverflow() {
	select {
	case s.overflowWake <- struct{}{}:
	default:
	}
}

// overflowShard is what the overflow loop keeps of one shard.
type overflowShard struct {
	cons jetstream.Consumer
	size fetchSizer
}

// overflowLoop takes messages from the overflow shards while the replica
// has overflow room, until ctx ends, in turns (pkg/turns): each round,
// every shard with messages may take about overflowQuantum jobs.
func (s *Service) overflowLoop(ctx context.Context, consumers []jetstream.Consumer) {
	shards := make([]overflowShard, len(consumers))
	for i, c := range consumers {
		shards[i] = overflowShard{cons: c, size: fetchSizer{max: s.cfg.FetchBatch}}
	}
	turns.Run(ctx, turns.Config{
		Shards: len(shards), Quantum: overflowQuantum, Idle: overflowIdle,
		Room: s.overflowRoom,
		Take: func(shard, room int) (int, bool, error) {
			jobs, empty := s.takeOverflow(ctx, &shards[shard], room)
			return jobs, empty, nil
		},
		Space: s.held.overflowSpace,
		Wake:  s.overflowWake,
	})
}

// takeOverflow fetches what shard sh has for room jobs, without waiting,
// dispatches it, and returns the jobs taken and whether the shard is empty
// now.
func (s *Service) takeOverflow(ctx context.Context, sh *overflowShard, room int) (jobs int, empty bool) {
	batch, err := sh.cons.FetchNoWait(sh.size.count(room))
	if err != nil {
		if ctx.Err() == nil {
			s.metrics.handlingErrors.WithLabelValues("fetch_overflow").Inc()
			s.log.Warn("fetch overflow delivery messages", "err", err)
		}
		return 0, true
	}
	empty = true
	for msg := range batch.Messages() {
		n := 0
		if all, overflow, ok := s.decode(msg); ok {
			s.dispatch(msg, all, overflow, s.mayBeDone(msg))
			n = len(all)
		}
		if n > 0 {
			sh.size.observe(n)
			jobs += n
			s.metrics.overflowTaken.Inc()
		}
		md, err := msg.Metadata()
		empty = err == nil && md.NumPending == 0
	}
	if err := batch.Error(); err != nil && ctx.Err() == nil {
		s.metrics.handlingErrors.WithLabelValues("fetch_overflow").Inc()
	}
	return jobs, empty
}

// overflowRoom is how many more jobs the overflow loop may take: the
// held jobs' overflowRoom and, with the backlog brake on, no more than
// brakeHeld times as many as its slots allow, so what the brake holds back
// waits in the overflow stream rather than in the lanes (where it would be
// parked after the hold limit).
func (s *Service) overflowRoom() int {
	if s.brake == nil {
		return s.held.overflowRoom(math.MaxInt)
	}
	return s.held.overflowRoom(brakeHeld * s.brake.current())
}
