package deliverer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/hubid"
	"github.com/hubhooks/hubhooks/pkg/tracing"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
)

// Fetching: one loop pulls delivery messages from the consumer while the
// replica has room for more held jobs, decodes each into its jobs (one, the
// targets of a fan-out, or the jobs of a fan-out batch) and puts them on
// their lanes (enqueue). Undecodable or invalid messages go to the
// dead-letter stream.

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

// fetchLoop fetches delivery messages and dispatches their jobs until ctx
// ends.
func (s *Service) fetchLoop(ctx context.Context, cons jetstream.Consumer) {
	size := fetchSizer{max: s.cfg.FetchBatch}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		room := s.held.room()
		if room <= 0 {
			select {
			case <-ctx.Done():
				return
			case <-s.held.space:
			}
			continue
		}
		batch, err := cons.Fetch(size.count(room), jetstream.FetchMaxWait(s.cfg.FetchWait))
		if err == nil {
			for msg := range batch.Messages() {
				// Sized by the messages it keeps: those moved to
				// overflow take no room.
				if n, kept := s.takeLive(msg); kept && n > 0 {
					size.observe(n)
				}
			}
			err = batch.Error()
		}
		if err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			s.metrics.handlingErrors.WithLabelValues("fetch").Inc()
			s.log.Warn("fetch delivery jobs", "err", err)
			cctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
			gone := eventbus.CheckConsumer(cctx, s.js, eventbus.StreamDeliveries, eventbus.ConsumerDeliverer)
			cancel()
			if errors.Is(gone, eventbus.ErrConsumerGone) {
				cons = s.remake(ctx, cons, gone)
			}
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

// fetchSizer sizes fetches: a message holds one job, the targets of a
// fan-out or the jobs of a fan-out batch, so the room for held jobs is
// divided by the recent jobs per message. It belongs to the fetch loop.
type fetchSizer struct {
	max        int     // Config.FetchBatch
	jobsPerMsg float64 // moving average, weight 1/8 for the newest message
}

// count is how many messages to fetch for room more held jobs: at least
// one, at most max.
func (f *fetchSizer) count(room int) int {
	return max(1, min(int(float64(room)/max(f.jobsPerMsg, 1)), f.max))
}

// observe counts a message of n jobs.
func (f *fetchSizer) observe(n int) { f.jobsPerMsg += (float64(n) - f.jobsPerMsg) / 8 }

// decode returns the jobs of msg, all of one hub, and whether msg is an
// overflow message; it reports false when msg holds no valid job: then it
// is dead-lettered.
func (s *Service) decode(msg jetstream.Msg) (jobs []*deliveryv1.DeliveryJob, overflow, ok bool) {
	_, overflow, _ = eventbus.HubOfDeliverySubject(msg.Subject())
	jobs, err := eventbus.DecodeJobs(msg.Headers(), msg.Data())
	for i := 0; err == nil && i < len(jobs); i++ {
		err = validJob(msg.Subject(), jobs[i])
	}
	if err != nil {
		s.poison(msg, err)
		return nil, false, false
	}
	return jobs, overflow, true
}

// dispatch puts jobs, the jobs of msg (decode), on their lanes. It never
// blocks. check is what mayBeDone said of msg.
func (s *Service) dispatch(msg jetstream.Msg, jobs []*deliveryv1.DeliveryJob, overflow bool, check doneCheck) {
	if check == noCheck {
		s.enqueueAll(msg, jobs, overflow, check)
		return
	}
	// Some jobs may be done already. Asking the log takes a Redis round
	// trip, so not on the fetch loop.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		left := s.notRecorded(jobs)
		if check == checkCopy && len(left) > 0 && msg.NakWithDelay(settleDelay(msg)) == nil {
			return // back after the delay, and checked again
		}
		s.enqueueAll(msg, left, overflow, check)
	}()
}

// doneCheck says whether the jobs of a message are checked against the
// event log before they are attempted (mayBeDone).
type doneCheck int

const (
	noCheck doneCheck = iota
	// checkLog: delivered again (a lost ack, a nak) or RecheckDone: an
	// attempt made before was recorded long before.
	checkLog
	// checkCopy: a copy of jobs that may still be in flight on their
	// first message (RecheckInFlight, or handed out again by a consumer
	// that lost track: rewinds). When the log lacks some of its jobs, the
	// message is nak'ed (settleDelay), time for such an attempt to end and
	// reach the log, and checked again when it comes back.
	checkCopy
)

// A copy whose jobs the event log lacks waits copySettle, then twice as
// long each time it comes back, copyRounds times in all (2, 4 and 8 s):
// after a NATS node's death the first copy may sit in the deliverer's
// backlog for seconds. A rewound message waits one round.
const (
	copySettle = 2 * time.Second
	copyRounds = 3
)

// settleDelay is how long msg, a copy, waits before it is checked again.
func settleDelay(msg jetstream.Msg) time.Duration {
	n := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		n = min(max(md.NumDelivered, 1), copyRounds)
	}
	return copySettle << (n - 1)
}

// mayBeDone says whether some jobs of msg may have been attempted already:
// JetStream delivers it again, or its consumer hands it out again after
// losing track of what it had delivered (rewinds), or it carries
// HeaderRecheck. Ask it once per message: it records the message's
// sequence.
func (s *Service) mayBeDone(msg jetstream.Msg) doneCheck {
	recheck := msg.Headers().Get(eventbus.HeaderRecheck)
	if md, err := msg.Metadata(); err == nil {
		switch again := s.rewinds.again(md); {
		case recheck == eventbus.RecheckInFlight && md.NumDelivered <= copyRounds:
			return checkCopy
		case md.NumDelivered > 1:
			return checkLog
		case again:
			s.metrics.rewound.Inc()
			return checkCopy
		}
	}
	switch recheck {
	case "":
		return noCheck
	case eventbus.RecheckInFlight:
		return checkCopy
	}
	return checkLog
}

// recheckMark is the HeaderRecheck value, when it has none of its own, of
// the copy of a message with check moved to its hub's overflow shard, and
// of its fan-out targets republished as jobs of their own. A message that
// may be done may also have been moved (or its targets republished)
// before (a publish that timed out can still store its copy, and the
// message comes back), so its copy waits for the earlier one's attempts
// like any copy in flight.
func (c doneCheck) recheckMark() string {
	if c == noCheck {
		return ""
	}
	return eventbus.RecheckInFlight
}

// enqueueAll enqueues jobs, all or some of the jobs of msg (an overflow
// message when overflow is set; check is what mayBeDone said of it), and
// acks msg when none is left.
func (s *Service) enqueueAll(msg jetstream.Msg, jobs []*deliveryv1.DeliveryJob, overflow bool, check doneCheck) {
	if s.brake != nil && len(jobs) > 0 {
		s.brake.taken(jobs[0].GetHubId(), overflow, time.Now()) // a message is one hub's
	}
	var stored time.Time // for the attempts' traces
	if tracing.Enabled() {
		if md, err := msg.Metadata(); err == nil {
			stored = md.Timestamp
		}
	}
	switch len(jobs) {
	case 0:
		if err := msg.Ack(); err != nil {
			s.metrics.handlingErrors.WithLabelValues("ack").Inc()
		}
	case 1:
		s.enqueue(msg, jobs[0], overflow, stored)
	default:
		f := &fanout{s: s, msg: msg, check: check, left: len(jobs)}
		for _, job := range jobs {
			s.enqueue(&fanoutShare{f: f, job: job}, job, overflow, stored)
		}
	}
}

// validJob says what makes job, received on subject, one the deliverer
// can never attempt: it is dead-lettered, not retried (a hub id
// configsvc refuses would fail its config fetch forever).
func validJob(subject string, job *deliveryv1.DeliveryJob) error {
	if err := hubid.Validate(job.GetHubId()); err != nil {
		return fmt.Errorf("job of delivery %q: hub_id: %w", job.GetDeliveryId(), err)
	}
	hub, _, _ := eventbus.HubOfDeliverySubject(subject) // the live or the overflow subject
	switch {
	case job.GetDeliveryId() == "":
		return errors.New("job without delivery_id")
	case job.GetUrlId() == "":
		return errors.New("job without url_id")
	case hub != job.GetHubId():
		return fmt.Errorf("job of hub %q on the subject %q of another hub", job.GetHubId(), subject)
	}
	return nil
}

// poison moves msg, which holds no valid job, to the dead-letter stream.
func (s *Service) poison(msg jetstream.Msg, reason error) {
	s.metrics.poison.Inc()
	s.log.Error("undecodable delivery job moved to the dead-letter stream", "subject", msg.Subject(), "err", reason)
	dl := eventbus.DeadLetterOf(eventbus.SubjectDeadLetterJobs, msg, eventbus.StreamDeliveries, reason.Error())
	eventbus.FitDeadLetter(dl, s.js.Conn().MaxPayload())
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.OpTimeout)
	defer cancel()
	if _, err := s.js.PublishMsg(ctx, dl); err != nil {
		s.log.Warn("publish dead letter", "err", err)
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	_ = msg.Term()
}
