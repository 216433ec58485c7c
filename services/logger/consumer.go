package logger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/hubid"
	"github.com/hubhooks/hubhooks/pkg/tracing"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	"github.com/hubhooks/hubhooks/services/logger/logstore"
)

// Run ensures the attempts and deliveries streams and the durable "logger"
// consumer, then fetches attempt records in batches, writes each batch to
// Redis, and acks its records only after the write succeeded. A failed write
// naks the batch with a delay and backs off. Run blocks until ctx ends; then
// it stops fetching, finishes and acks the batch in hand, and returns nil.
func (s *Service) Run(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		s.stopTailOnce.Do(func() { close(s.stopping) })
	}()
	if err := s.ensureStreams(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	cons, err := s.ensureConsumer(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("logger: %w", err)
	}
	s.consumerReady.Store(true)
	defer s.consumerReady.Store(false)
	s.log.Info("logger consuming attempts", "stream", eventbus.StreamAttempts, "consumer", eventbus.ConsumerLogger, "batch", s.cfg.BatchSize)

	failures := 0
	lost := false // the consumer is gone and not made again yet (remakeIfGone)
	for ctx.Err() == nil {
		msgs, err := s.fetch(cons)
		if err != nil {
			failures++
			if failures == 1 || failures%20 == 0 {
				s.log.Warn("fetch attempts failed; retrying", "err", err, "failures", failures)
			}
			cons = s.remakeIfGone(ctx, cons, &lost)
			s.sleep(ctx, s.backoff(failures))
			continue
		}
		if len(msgs) == 0 {
			continue
		}
		if s.handle(ctx, msgs) {
			failures = 0
			continue
		}
		failures++
		s.sleep(ctx, s.backoff(failures))
	}
	return nil
}

func (s *Service) ensureConsumer(ctx context.Context) (jetstream.Consumer, error) {
	return eventbus.EnsureConsumer(ctx, s.js, eventbus.StreamAttempts,
		eventbus.ConsumerConfig(eventbus.ConsumerLogger, s.cfg.AckWait, s.cfg.MaxAckPending))
}

// remakeIfGone makes the consumer (and the streams) again when a failed
// fetch was because they were deleted, saying so loudly: no hubhooks
// identity may delete them. The attempts stream is a work queue, so a new
// consumer starts with the records it still holds: nothing stored is
// stored again. It returns cons otherwise, or when they cannot be made now.
// *lost carries a loss over failed attempts to make them again, so that one
// deletion is counted and logged once.
func (s *Service) remakeIfGone(ctx context.Context, cons jetstream.Consumer, lost *bool) jetstream.Consumer {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	gone := eventbus.CheckConsumer(cctx, s.js, eventbus.StreamAttempts, eventbus.ConsumerLogger)
	cancel()
	if !errors.Is(gone, eventbus.ErrConsumerGone) {
		return cons
	}
	if !*lost {
		*lost = true
		s.m.consumerLost.Inc()
		s.log.Error("the logger's consumer or the attempts stream was deleted while the logger ran (no hubhooks identity may delete them: someone with the NATS rights did); making them again: a deleted stream's records are gone",
			"stream", eventbus.StreamAttempts, "consumer", eventbus.ConsumerLogger, "err", gone)
	}
	if err := s.ensureStreams(ctx); err != nil {
		return cons
	}
	c, err := s.ensureConsumer(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("make the logger's consumer again", "err", err)
		}
		return cons
	}
	*lost = false
	return c
}

// fetch fetches up to BatchSize messages of at most BatchBytes in all,
// waiting at most FetchWait. When the next message alone is larger than
// BatchBytes, it fetches that one message by itself.
func (s *Service) fetch(cons jetstream.Consumer) ([]jetstream.Msg, error) {
	start := time.Now()
	msgs, err := fetchBatch(cons, s.cfg.BatchSize, jetstream.FetchMaxWait(s.cfg.FetchWait), jetstream.FetchMaxBytes(s.cfg.BatchBytes))
	if err == nil && len(msgs) == 0 && time.Since(start) < s.cfg.FetchWait {
		// Empty before its wait was over: the server refused the next
		// message at once as larger than BatchBytes (the client reports
		// that as no messages; when nothing comes, a fetch waits FetchWait).
		return fetchBatch(cons, 1, jetstream.FetchMaxWait(s.cfg.FetchWait))
	}
	return msgs, err
}

// fetchBatch is one Fetch, its messages collected; "no messages" is not an
// error.
func fetchBatch(cons jetstream.Consumer, n int, opts ...jetstream.FetchOpt) ([]jetstream.Msg, error) {
	batch, err := cons.Fetch(n, opts...)
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	for msg := range batch.Messages() {
		msgs = append(msgs, msg)
	}
	if berr := batch.Error(); berr != nil && !errors.Is(berr, jetstream.ErrNoMessages) && len(msgs) == 0 {
		return nil, berr
	}
	return msgs, nil
}

func (s *Service) ensureStreams(ctx context.Context) error {
	if err := eventbus.Ensure(ctx, s.js,
		eventbus.AttemptsStreamConfig(s.cfg.StreamOptions),
		eventbus.DeliveriesStreamConfig(s.cfg.StreamOptions)); err != nil {
		return fmt.Errorf("logger: %w", err)
	}
	s.deliveriesReady.Store(true)
	return nil
}

// backoff is RetryBackoff doubled per consecutive failure, at most 16x.
func (s *Service) backoff(failures int) time.Duration {
	return s.cfg.RetryBackoff << min(max(failures-1, 0), 4)
}

func (s *Service) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// handle decodes, writes and acks one fetched batch. It reports false when
// the Redis write failed (the records were nak'ed with a delay).
func (s *Service) handle(ctx context.Context, msgs []jetstream.Msg) bool {
	recs := make([]*deliveryv1.AttemptRecorded, 0, len(msgs))
	good := make([]jetstream.Msg, 0, len(msgs))
	for _, msg := range msgs {
		if eventbus.IsHubDeleted(msg.Headers()) {
			if !s.deleteHub(ctx, msg) {
				return false
			}
			continue
		}
		got, invalid, reason, err := decode(msg)
		if err != nil {
			s.m.undecodable.WithLabelValues(reason).Inc()
			meta, _ := msg.Metadata()
			var seq uint64
			if meta != nil {
				seq = meta.Sequence.Stream
			}
			s.log.Error("attempt record dropped: cannot be stored", "subject", msg.Subject(), "stream_seq", seq, "reason", reason, "err", err)
			if err := msg.TermWithReason(reason + ": " + err.Error()); err != nil {
				s.log.Warn("term attempt record", "err", err)
			}
			continue
		}
		for _, err := range invalid {
			// One bad record of a batch: the others are stored.
			s.m.undecodable.WithLabelValues("invalid").Inc()
			s.log.Error("attempt record of a batch dropped: cannot be stored", "subject", msg.Subject(), "reason", "invalid", "err", err)
		}
		recs = append(recs, got...)
		good = append(good, msg)
	}
	if len(recs) == 0 {
		return true
	}
	// The batch in hand is finished even when ctx has ended (draining), but
	// never for longer than DrainTimeout or half the ack wait.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(s.cfg.DrainTimeout, s.cfg.AckWait/2))
	defer cancel()
	start := time.Now()
	res, err := s.write(wctx, recs)
	traceRecords(recs, start, err)
	if err != nil {
		s.m.writeErrors.Inc()
		delay := s.backoff(2)
		s.log.Warn("write attempt records to redis failed; nak'ed for redelivery", "records", len(recs), "retry_in", delay, "err", err)
		for _, msg := range good {
			_ = msg.NakWithDelay(delay)
		}
		return false
	}
	s.m.writeSecs.Observe(time.Since(start).Seconds())
	s.m.written.Add(float64(len(recs)))
	s.m.changed.Add(float64(res.Changed))
	s.m.trimmed.Add(float64(res.Trimmed))
	s.announce(recs)
	for _, msg := range good {
		if err := msg.Ack(); err != nil {
			// The record is stored; a redelivery rewrites it harmlessly.
			s.log.Warn("ack attempt record", "err", err)
		}
	}
	return true
}

// deleteHub handles a hub's deletion (configsvc's DeleteHub): the hub's
// event log is removed and the records of deliveries created before the
// deletion, whenever they arrive, are dropped. It acks msg once done, and
// reports false (msg nak'ed) when Redis failed.
func (s *Service) deleteHub(ctx context.Context, msg jetstream.Msg) bool {
	d, err := eventbus.DecodeHubDeleted(msg.Data())
	if err == nil {
		err = hubid.Validate(d.GetHubId())
	}
	if err != nil {
		s.m.undecodable.WithLabelValues("decode").Inc()
		s.log.Error("hub deletion dropped: cannot be read", "subject", msg.Subject(), "err", err)
		if err := msg.TermWithReason("decode: " + err.Error()); err != nil {
			s.log.Warn("term hub deletion", "err", err)
		}
		return true
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(s.cfg.DrainTimeout, s.cfg.AckWait/2))
	defer cancel()
	if err := s.store.DeleteHub(wctx, d.GetHubId(), d.GetDeletedAt().AsTime()); err != nil {
		s.m.writeErrors.Inc()
		delay := s.backoff(2)
		s.log.Warn("delete a hub's event log failed; nak'ed for redelivery", "hub_id", d.GetHubId(), "retry_in", delay, "err", err)
		_ = msg.NakWithDelay(delay)
		return false
	}
	s.log.Info("hub deleted: its event log is removed", "hub_id", d.GetHubId(), "deleted_at", d.GetDeletedAt().AsTime())
	if err := msg.Ack(); err != nil {
		s.log.Warn("ack hub deletion", "err", err)
	}
	return true
}

// maxWrite bounds the records of one Store.Write call (one Lua script call
// per hub): a fetched batch of batch messages is written in parts.
const maxWrite = 512

// traceRecords gives each record written (or not) from start on a span in
// its delivery's trace, when tracing is on: the records of one write belong
// to many traces, so each gets its own span over the same write.
func traceRecords(recs []*deliveryv1.AttemptRecorded, start time.Time, err error) {
	if !tracing.Enabled() {
		return
	}
	end := time.Now()
	for _, rec := range recs {
		job := rec.GetJob()
		if job.GetTraceParent() == "" {
			continue
		}
		_, span := tracing.Start(tracing.WithTraceParent(context.Background(), job.GetTraceParent()), "log attempt",
			trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(attribute.String("hubhooks.delivery_id", job.GetDeliveryId()), attribute.Int("hubhooks.attempt", int(rec.GetAttempt()))))
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End(trace.WithTimestamp(end))
	}
}

func (s *Service) write(ctx context.Context, recs []*deliveryv1.AttemptRecorded) (logstore.WriteResult, error) {
	var total logstore.WriteResult
	for len(recs) > 0 {
		n := min(len(recs), maxWrite)
		res, err := s.store.Write(ctx, recs[:n])
		total.Changed += res.Changed
		total.Trimmed += res.Trimmed
		if err != nil {
			return total, err
		}
		recs = recs[n:]
	}
	return total, nil
}

// decode turns a message into storable records, or says why it cannot be
// stored: reason "decode" (not an AttemptRecorded or a batch of them) or
// "invalid". A batch (eventbus.ContentTypeAttemptBatch) with some invalid
// records yields the valid ones, and the reasons of the others in invalid.
func decode(msg jetstream.Msg) (recs []*deliveryv1.AttemptRecorded, invalid []error, reason string, err error) {
	all, err := eventbus.DecodeAttempts(msg.Headers(), msg.Data())
	if err != nil {
		return nil, nil, "decode", err
	}
	recs = all[:0]
	for _, rec := range all {
		if err := logstore.ValidateRecord(rec); err != nil {
			invalid = append(invalid, err)
			continue
		}
		if hub := rec.GetJob().GetHubId(); msg.Subject() != eventbus.AttemptSubject(hub) {
			// Records are published on their own hub's subject; one that
			// is not was not made by a deliverer or configsvc.
			invalid = append(invalid, fmt.Errorf("record of hub %q on the subject %q of another hub", hub, msg.Subject()))
			continue
		}
		recs = append(recs, rec)
	}
	if len(recs) == 0 {
		return nil, nil, "invalid", errors.Join(invalid...)
	}
	return recs, invalid, "", nil
}
