package deliverer

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hubhooks/hubhooks/pkg/batch"
	"github.com/hubhooks/hubhooks/pkg/eventbus"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
)

// Records: every attempt (and cancellation) is published as an
// AttemptRecorded on the attempts stream for the logger, before its job is
// acked. Records of attempts that finish together are batched into one
// message per hub.

// Limits of one attempt-record batch message (well under NATS's 1 MiB max
// payload; a larger record goes alone) and of their sending. A hub's
// records go once the oldest has waited recordLinger or they fill a
// message. Lanes do not wait for their records (attemptOnLane settles in
// the background), so the wait only delays the jobs' acks (a deliverer
// killed meanwhile sends those jobs again) and buys fewer messages for
// JetStream, the logger and Redis. recordPerHub of a hub's messages are in
// flight at once, recordFlushers in all, so many hubs' records are not
// stored one ack after another (docs/performance.md, "Design choices").
const (
	recordBatchMax      = 128
	recordBatchMaxBytes = 256 << 10
	recordFlushers      = 16
	recordPerHub        = 2
	recordLinger        = 10 * time.Millisecond
)

// sizedRecord is an attempt record with its encoded size, measured once.
type sizedRecord struct {
	rec  *deliveryv1.AttemptRecorded
	size int
}

// newRecordBatcher publishes attempt records in batches with send: each
// job's settling goroutine (not its lane: see attemptOnLane) hands its record
// over (encoded only into the batch message) and waits until the message
// that carries it is acked by JetStream, so a job is still acked only after
// its record is stored.
// Batching removes most of the per-record JetStream work (store, delivery to
// the logger, ack): the records of workers finishing at the same time share
// one message per hub. A record alone keeps its own message, with its
// Nats-Msg-Id de-duplication.
func newRecordBatcher(send func(m *nats.Msg) error, linger time.Duration) *batch.Batcher[sizedRecord] {
	lim := batch.Limits{MaxWeight: recordBatchMax, MaxBytes: recordBatchMaxBytes, Flushers: recordFlushers, PerKey: recordPerHub, Linger: linger}
	return batch.New(lim, func(hub string, group []sizedRecord) error {
		var m *nats.Msg
		var err error
		if len(group) == 1 {
			m, err = eventbus.NewAttemptMsg(group[0].rec)
		} else {
			recs := make([]*deliveryv1.AttemptRecorded, len(group))
			sizes := make([]int, len(group))
			for i, r := range group {
				recs[i], sizes[i] = r.rec, r.size
			}
			// Encoded here, straight into the message: the records'
			// goroutines wait (and leave them alone) until done.
			m, err = eventbus.NewAttemptBatchMsg(hub, recs, sizes)
		}
		if err != nil {
			return err
		}
		return send(m)
	})
}

// publishRecord publishes rec (batched with the records of other workers)
// and waits for JetStream's ack of the message that carries it.
func (s *Service) publishRecord(rec *deliveryv1.AttemptRecorded) error {
	size := rec.SizeVT()
	if err := s.records.Add(rec.GetJob().GetHubId(), sizedRecord{rec: rec, size: size}, 1, size); err != nil {
		s.metrics.handlingErrors.WithLabelValues("publish_record").Inc()
		return err
	}
	return nil
}

// publishRecordAlone publishes rec as a message of its own, de-duplicated by
// its Nats-Msg-Id, and waits for JetStream's ack. The retry scheduler uses
// it for cancellation records, which it may publish again after a crash.
func (s *Service) publishRecordAlone(rec *deliveryv1.AttemptRecorded) error {
	m, err := eventbus.NewAttemptMsg(rec)
	if err == nil {
		err = s.sendRecords(m)
	}
	if err != nil {
		s.metrics.handlingErrors.WithLabelValues("publish_record").Inc()
	}
	return err
}

func (s *Service) sendRecords(m *nats.Msg) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.OpTimeout)
	defer cancel()
	_, err := s.js.PublishMsg(ctx, m)
	return err
}
