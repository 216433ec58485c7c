package deliverer

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
)

// schedulerLoop republishes due retries as jobs and publishes the
// "cancelled" records of cancelled retries. Every replica runs it; the claim
// lease in Redis hands each entry to one replica at a time, and a replica
// that dies mid-way leaves the entry to be claimed again when the lease ends
// (the republished job is de-duplicated by its Nats-Msg-Id).
func (s *Service) schedulerLoop(ctx context.Context) {
	for ctx.Err() == nil {
		full := s.scheduleOnce(ctx, true)
		if s.scheduleOnce(ctx, false) {
			full = true
		}
		if full {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-s.schedulerWake:
		case <-time.After(s.cfg.PollInterval):
		}
	}
}

// scheduleOnce handles one batch of due entries and reports whether the
// batch was full (more may be due).
func (s *Service) scheduleOnce(ctx context.Context, cancelled bool) bool {
	opCtx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	entries, err := s.retries.claim(opCtx, cancelled, time.Now(), s.cfg.ClaimLease, s.cfg.ClaimBatch)
	if err != nil {
		if ctx.Err() == nil {
			s.metrics.handlingErrors.WithLabelValues("claim").Inc()
			s.log.Warn("claim due retries", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
		return false
	}
	var due []dueRetry
	for _, e := range entries {
		if ctx.Err() != nil {
			return false // leases expire; another replica or the next run takes over
		}
		entryCtx, cancelEntry := context.WithTimeout(ctx, s.cfg.OpTimeout)
		if m := s.scheduleEntry(entryCtx, cancelled, e); m != nil {
			due = append(due, dueRetry{e, m})
		}
		cancelEntry()
	}
	s.republish(ctx, due)
	return len(entries) == s.cfg.ClaimBatch
}

// dueRetry is a claimed entry and the job message that republishes it.
type dueRetry struct {
	entry claimed
	msg   *nats.Msg
}

// republish publishes the jobs of due retries, all at once, then removes,
// in one round trip, the entries whose job was stored. Publish first, remove
// after, as for one entry: an entry whose publish or removal failed is
// claimed again when its lease ends, and its job, published again under
// the same Nats-Msg-Id, is dropped as a duplicate.
func (s *Service) republish(ctx context.Context, due []dueRetry) {
	if len(due) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	futs := make([]jetstream.PubAckFuture, len(due))
	for i, d := range due {
		fut, err := s.js.PublishMsgAsync(d.msg)
		if err != nil {
			s.retryNotPublished(d, err)
			continue
		}
		futs[i] = fut
	}
	stored := make([]claimed, 0, len(due))
	for i, fut := range futs {
		if fut == nil {
			continue
		}
		select {
		case <-fut.Ok():
			stored = append(stored, due[i].entry)
		case err := <-fut.Err():
			s.retryNotPublished(due[i], err)
		case <-ctx.Done():
			s.retryNotPublished(due[i], ctx.Err())
		}
	}
	removed, err := s.retries.removeAll(ctx, stored)
	if err != nil {
		s.log.Warn("remove republished retries (they will be republished and de-duplicated)", "retries", len(stored), "err", err)
	}
	s.metrics.retriesPublished.Add(float64(removed))
}

// retryNotPublished counts and logs a due retry whose job was not stored; its
// entry stays, to be claimed again.
func (s *Service) retryNotPublished(d dueRetry, err error) {
	s.metrics.handlingErrors.WithLabelValues("publish_retry").Inc()
	s.log.Warn("republish due retry; retried after the lease", "hub", d.entry.hub, "entry", d.entry.member, "err", err)
}

// scheduleEntry settles a claimed entry that is not to be republished (gone,
// undecodable, cancelled, its attempt recorded already) and returns nil, or
// returns the job message that republishes it.
func (s *Service) scheduleEntry(ctx context.Context, cancelled bool, e claimed) *nats.Msg {
	// Built only when something is logged (most entries are not).
	log := func() *slog.Logger { return s.log.With("hub", e.hub, "entry", e.member) }
	if e.value == "" { // removed meanwhile
		if _, err := s.retries.remove(ctx, cancelled, e); err != nil {
			log().Warn("remove vanished retry", "err", err)
		}
		return nil
	}
	job, err := decodeEntry(e.value)
	if err != nil {
		log().Error("dropping undecodable retry", "err", err)
		_, _ = s.retries.remove(ctx, cancelled, e)
		return nil
	}
	reason := ""
	if cancelled {
		cfg, _ := s.configs.Get(job.GetHubId())
		if reason = cancelReason(cfg, job); reason == "" {
			reason = "callback URL removed or triggers disabled"
		}
	} else if cfg, ok := s.configs.Get(job.GetHubId()); ok {
		reason = cancelReason(cfg, job)
	}
	if reason != "" {
		// Publish first, remove after: a crash in between republishes the
		// same record (same Nats-Msg-Id), never loses it.
		if err := s.publishRecordAlone(cancelRecord(job, reason, time.Now())); err != nil {
			log().Warn("publish cancelled record; retried after the lease", "err", err)
			return nil
		}
		if _, err := s.retries.remove(ctx, cancelled, e); err != nil {
			log().Warn("remove cancelled retry", "err", err)
			return nil
		}
		s.countCancelled()
		return nil
	}
	if job.GetDeferrals() > 0 {
		// A parked job (its lane was full, or its POST outlived the hold
		// limit and this or another replica died before recording it): if
		// the log holds this attempt after all, it was made; drop the entry.
		if done, err := s.attemptRecorded(ctx, job); err == nil && done {
			if _, err := s.retries.remove(ctx, false, e); err != nil {
				log().Warn("remove a parked retry already recorded", "err", err)
				return nil
			}
			s.metrics.skippedRecorded.Inc()
			return nil
		}
	}
	m, err := eventbus.NewJobMsg(job)
	if err != nil {
		log().Error("dropping unencodable retry", "err", err)
		_, _ = s.retries.remove(ctx, cancelled, e)
		return nil
	}
	if job.GetDeferrals() > 0 || s.overShare(job) {
		// A parked job is its hub's backlog (its lane was full, or its POST
		// outlived the hold limit): back as live work it would count in
		// its lane's live share and send the lane's next live job behind it.
		// Otherwise the fetch loop would move it there: spare it the
		// second store.
		m = eventbus.OverflowCopyOf(job.GetHubId(), m.Header, m.Data, "")
	}
	return m
}
