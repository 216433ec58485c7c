package eventbus

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"

	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
)

// Attempt messages, on AttemptSubject(hub): one AttemptRecorded, or a batch
// of them (ContentTypeAttemptBatch) in which records of one webhook event
// share its body. DecodeAttempts turns either into records.

// NewAttemptMsg encodes an attempt record with Nats-Msg-Id = delivery_id +
// "." + attempt + "." + the status's API name.
func NewAttemptMsg(rec *deliveryv1.AttemptRecorded) (*nats.Msg, error) {
	data, err := rec.MarshalVT()
	if err != nil {
		return nil, fmt.Errorf("encode attempt: %w", err)
	}
	job := rec.GetJob()
	id := job.GetDeliveryId() + "." + strconv.Itoa(int(rec.GetAttempt())) + "." + rec.GetStatus().APIName()
	return newDedupMsg(AttemptSubject(job.GetHubId()), ContentTypeProtobuf, id, data), nil
}

// NewAttemptBatchMsg encodes attempt records, all of hubID, as one message
// on AttemptSubject(hubID) with Content-Type ContentTypeAttemptBatch;
// sizes[i] is recs[i].SizeVT(), as the caller measured it. Each record is
// encoded straight into the message. It has no Nats-Msg-Id: a batch
// published again is rarely made of the same records, and the logger
// applies records idempotently. One record alone is better sent with
// NewAttemptMsg (it is de-duplicated by id).
//
// A record whose job body equals that of an earlier record of the same
// webhook event in recs is encoded without it (body_shared, see
// shareBodies). The records are not changed.
func NewAttemptBatchMsg(hubID string, recs []*deliveryv1.AttemptRecorded, sizes []int) (*nats.Msg, error) {
	if len(sizes) != len(recs) {
		return nil, fmt.Errorf("encode attempt batch: %d sizes for %d records", len(sizes), len(recs))
	}
	out, outSizes := shareBodies(recs, sizes)
	data, err := appendFrames(out, outSizes)
	if err != nil {
		return nil, fmt.Errorf("encode attempt: %w", err)
	}
	return newMsg(AttemptSubject(hubID), ContentTypeAttemptBatch, data), nil
}

// DecodeAttempts decodes a message of the attempts stream, a batch or one
// record, into its records.
//
// The records of a batch are not copied: their strings and bytes point into
// data, which must not change while the records are in use (the logger's
// are written and dropped with their message). A batch is most of the
// logger's decoding, and copying every record's body, headers and ids was
// most of that.
func DecodeAttempts(h nats.Header, data []byte) ([]*deliveryv1.AttemptRecorded, error) {
	if h.Get(HeaderContentType) == ContentTypeAttemptBatch {
		return decodeAttemptBatch(data)
	}
	rec := &deliveryv1.AttemptRecorded{}
	if err := rec.UnmarshalVT(data); err != nil {
		return nil, fmt.Errorf("decode attempt: %w", err)
	}
	return []*deliveryv1.AttemptRecorded{rec}, nil
}

// decodeAttemptBatch decodes the records of a batch, putting back the
// bodies of records that share them (restoreBody). A record whose body
// cannot be put back keeps body_shared, which makes it invalid for the
// logger: that record is dropped, not the batch.
func decodeAttemptBatch(data []byte) ([]*deliveryv1.AttemptRecorded, error) {
	var recs []*deliveryv1.AttemptRecorded
	var bodies map[string][]byte // webhook event id -> body of the latest record
	err := eachFrame(data, "record", func(i int, frame []byte) error {
		rec := &deliveryv1.AttemptRecorded{}
		if err := rec.UnmarshalVTUnsafe(frame); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		bodies = restoreBody(rec, bodies)
		recs = append(recs, rec)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("decode attempt batch: %w", err)
	}
	if len(recs) == 0 {
		return nil, errors.New("decode attempt batch: no records")
	}
	return recs, nil
}

// shareBodies returns what NewAttemptBatchMsg encodes of recs, with sizes:
// each record itself, or, when its job body equals that of an earlier
// record of the same webhook event, a copy without the body (withoutBody).
// The records of one event's URLs usually finish together, and the body is
// most of a record.
func shareBodies(recs []*deliveryv1.AttemptRecorded, sizes []int) ([]*deliveryv1.AttemptRecorded, []int) {
	out := make([]*deliveryv1.AttemptRecorded, len(recs))
	outSizes := make([]int, len(recs))
	var bodies map[string][]byte // webhook event id -> body of the latest record
	for i, r := range recs {
		out[i], outSizes[i] = r, sizes[i]
		job := r.GetJob()
		body := job.GetBody()
		if len(body) == 0 {
			continue
		}
		if bodies == nil {
			bodies = make(map[string][]byte, len(recs))
		}
		ev := job.GetWebhookEventId()
		if prev, ok := bodies[ev]; ok && sameBytes(prev, body) {
			out[i] = withoutBody(r)
			outSizes[i] = out[i].SizeVT()
		} else {
			bodies[ev] = body
		}
	}
	return out, outSizes
}

// restoreBody undoes shareBodies for rec, the next record of a batch being
// decoded: a record with body_shared gets the body of the latest record of
// its webhook event, and loses the flag; a record with a body becomes the
// latest of its event. It returns bodies, made when first needed.
func restoreBody(rec *deliveryv1.AttemptRecorded, bodies map[string][]byte) map[string][]byte {
	job := rec.GetJob()
	if rec.GetBodyShared() {
		if body, ok := bodies[job.GetWebhookEventId()]; ok && job != nil && len(job.GetBody()) == 0 {
			job.Body = body
			rec.BodyShared = false
		}
		return bodies
	}
	if body := job.GetBody(); len(body) > 0 {
		if bodies == nil {
			bodies = make(map[string][]byte)
		}
		bodies[job.GetWebhookEventId()] = body
	}
	return bodies
}

// sameBytes is bytes.Equal, at once when both are the same slice (the
// jobs of one fan-out share their body).
func sameBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	return len(a) == 0 || &a[0] == &b[0] || bytes.Equal(a, b)
}

// withoutBody is rec with body_shared set and its job without the body: new
// messages sharing every other field with rec and its job (nothing is
// copied deeply, and rec is not changed).
func withoutBody(rec *deliveryv1.AttemptRecorded) *deliveryv1.AttemptRecorded {
	j := rec.GetJob()
	return &deliveryv1.AttemptRecorded{
		Job:           jobWith(j, j.GetDeliveryId(), j.GetUrlId(), j.GetUrl(), nil),
		Attempt:       rec.GetAttempt(),
		Status:        rec.GetStatus(),
		Request:       rec.GetRequest(),
		Response:      rec.GetResponse(),
		StartedAt:     rec.GetStartedAt(),
		NextAttemptAt: rec.GetNextAttemptAt(),
		BodyShared:    true,
	}
}
