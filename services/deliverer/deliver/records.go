package deliver

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
)

// Limits of one attempt-record batch message. The bytes stay well under
// NATS's default 1 MiB max payload; a record larger than the limit is sent
// alone. A flusher that finds fewer than recordBatchMax records pending
// waits recordLinger for more first: lanes do not wait for their records
// (handleJob settles in the background), so the wait costs no delivery
// capacity, only the job's ack comes that much later, and bigger batches
// are less work per record for JetStream, the logger and Redis.
const (
	recordBatchMax      = 128
	recordBatchMaxBytes = 256 << 10
	recordFlushers      = 2
	recordLinger        = 2 * time.Millisecond
)

// recordBatcher publishes attempt records in batches: each job's settling
// goroutine (not its lane: see handleJob) hands its record over (encoded
// only into the batch message) and waits until the message that carries it
// is acked by JetStream, so a job is still acked only after its record is
// stored.
// Batching removes most of the per-record JetStream work (store, delivery to
// the logger, ack): the records of workers finishing at the same time share
// one message per hub.
//
// There is no goroutine of its own: a waiting goroutine becomes a flusher when
// fewer than recordFlushers are active, and a flusher keeps sending until no
// record is pending or another flusher is active (so a pending record always
// has an active flusher).
type recordBatcher struct {
	send   func(m *nats.Msg) error
	linger time.Duration

	mu       sync.Mutex
	pending  []*recordReq
	flushers int
}

type recordReq struct {
	hub  string
	rec  *deliveryv1.AttemptRecorded
	size int // rec.SizeVT(), measured once
	done chan error
}

// publish sends rec (in a batch) and returns when JetStream acked it, or
// with the publish error.
func (b *recordBatcher) publish(rec *deliveryv1.AttemptRecorded) error {
	req := &recordReq{hub: rec.GetJob().GetHubId(), rec: rec, size: rec.SizeVT(), done: make(chan error, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, req)
	if b.flushers >= recordFlushers {
		b.mu.Unlock()
		return <-req.done
	}
	b.flushers++
	b.mu.Unlock()
	b.flush(req)
	return <-req.done
}

// flush sends pending batches until own is done and another flusher is
// active, or nothing is pending.
func (b *recordBatcher) flush(own *recordReq) {
	for {
		b.mu.Lock()
		ownDone := len(own.done) > 0
		if len(b.pending) == 0 || (ownDone && b.flushers > 1) {
			b.flushers--
			b.mu.Unlock()
			return
		}
		if len(b.pending) < recordBatchMax && b.linger > 0 {
			b.mu.Unlock()
			time.Sleep(b.linger)
			b.mu.Lock()
		}
		n, size := 0, 0
		for n < len(b.pending) && n < recordBatchMax {
			size += b.pending[n].size
			if n > 0 && size > recordBatchMaxBytes {
				break
			}
			n++
		}
		batch := make([]*recordReq, n)
		copy(batch, b.pending[:n])
		clear(b.pending[:n])
		b.pending = b.pending[n:]
		if len(b.pending) == 0 {
			b.pending = nil
		}
		b.mu.Unlock()
		b.sendBatch(batch)
	}
}

// sendBatch publishes the batch as one message per hub and reports each
// record's outcome.
func (b *recordBatcher) sendBatch(batch []*recordReq) {
	for len(batch) > 0 {
		hub := batch[0].hub
		var group, rest []*recordReq
		for _, r := range batch {
			if r.hub == hub {
				group = append(group, r)
			} else {
				rest = append(rest, r)
			}
		}
		batch = rest
		var m *nats.Msg
		var err error
		if len(group) == 1 {
			// Alone, the record keeps its Nats-Msg-Id de-duplication.
			m, err = eventbus.NewAttemptMsg(group[0].rec)
		} else {
			recs := make([]*deliveryv1.AttemptRecorded, len(group))
			sizes := make([]int, len(group))
			for i, r := range group {
				recs[i], sizes[i] = r.rec, r.size
			}
			// Encoded here, straight into the message: the records'
			// goroutines wait (and leave them alone) until done.
			m, err = eventbus.NewAttemptBatchMsgOf(hub, recs, sizes)
		}
		if err == nil {
			err = b.send(m)
		}
		for _, r := range group {
			r.done <- err
		}
	}
}

// publishRecord publishes rec (batched with the records of other workers)
// and waits for JetStream's ack of the message that carries it.
func (s *Service) publishRecord(rec *deliveryv1.AttemptRecorded) error {
	if err := s.records.publish(rec); err != nil {
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
