package eventbus

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
)

// Stream, consumer and subject names. They are shared by every replica of
// every service, so changing one is a migration.
const (
	StreamEvents      = "HUBHOOKS_EVENTS"
	StreamDeliveries  = "HUBHOOKS_DELIVERIES"
	StreamAttempts    = "HUBHOOKS_ATTEMPTS"
	StreamDeadLetters = "HUBHOOKS_DLQ"

	ConsumerExpander  = "expander"
	ConsumerDeliverer = "deliverer"
	ConsumerLogger    = "logger"

	subjectDeliveries  = "hubhooks.deliveries."
	subjectAttempts    = "hubhooks.attempts."
	subjectDeadLetters = "hubhooks.dlq."

	// SubjectDeadLetterEvents receives malformed domain events.
	SubjectDeadLetterEvents = subjectDeadLetters + "events"
	// SubjectDeadLetterJobs receives undecodable or invalid delivery jobs.
	SubjectDeadLetterJobs = subjectDeadLetters + "jobs"
)

// Header names used on internal messages and dead letters.
const (
	HeaderContentType     = "Content-Type"
	HeaderReason          = "Hubhooks-Reason"
	HeaderOriginalSubject = "Hubhooks-Original-Subject"
	HeaderOriginalStream  = "Hubhooks-Original-Stream"
	HeaderOriginalSeq     = "Hubhooks-Original-Sequence"

	ContentTypeProtobuf = "application/protobuf"
	ContentTypeJSON     = "application/json"
	// ContentTypeAttemptBatch marks a message of several attempt records:
	// each an AttemptRecorded, preceded by its length as a uvarint (the
	// protodelim framing). A record may leave its job's body out
	// (body_shared): it is then the body of the nearest earlier record of
	// the batch with the same webhook event id. See NewAttemptBatchMsgOf.
	ContentTypeAttemptBatch = "application/vnd.hubhooks.attempt-batch+protobuf"
	// ContentTypeDeliveryFanout marks a delivery message that is a
	// DeliveryFanout (one webhook event, several URLs) rather than one
	// DeliveryJob. See NewFanoutMsg.
	ContentTypeDeliveryFanout = "application/vnd.hubhooks.delivery-fanout+protobuf"
	// ContentTypeFanoutBatch marks a delivery message of several
	// DeliveryFanouts of one hub (the webhook events of domain events
	// expanded at the same time), each preceded by its length as a uvarint.
	// See NewFanoutBatchMsg.
	ContentTypeFanoutBatch = "application/vnd.hubhooks.delivery-fanout-batch+protobuf"
	// HeaderRecheck on a delivery message says its jobs may have been
	// published before in a fan-out batch, which has no Nats-Msg-Id to
	// de-duplicate them: the expander sets it when it expands a domain
	// event again, and the deliverer then asks the event log which jobs are
	// done, as for a message delivered again.
	HeaderRecheck = "Hubhooks-Recheck"
)

// DeliverySubject is the subject of delivery jobs for hubID.
func DeliverySubject(hubID string) string { return subjectDeliveries + hubID }

// AttemptSubject is the subject of attempt records for hubID.
func AttemptSubject(hubID string) string { return subjectAttempts + hubID }

// De-duplication windows of the internal streams. A job or fan-out is
// republished (same Nats-Msg-Id) when the expander, the deliverer or a retry
// claim dies before its ack wait or lease ends (30 s each by default, and
// each service refuses more than half this window), so one minute covers
// it. The server keeps every id of a window in memory (~150 B each), so the
// window is no longer than the redelivery paths need. Attempt records are
// idempotent in the logger, so their window only absorbs quick repeats.
const (
	DeliveriesDuplicateWindow = time.Minute
	AttemptsDuplicateWindow   = 20 * time.Second
)

// DefaultDuplicateWindow is the domain events' de-duplication window when
// Options leave it unset: JetStream's own default, well beyond the publisher
// SDK's retries of one publish.
const DefaultDuplicateWindow = 2 * time.Minute

// Options tune the streams. The zero value is the production default.
type Options struct {
	// Replicas is the stream replica count (1 on a single server, 3 on a cluster).
	Replicas int
	// Storage is file by default.
	Storage jetstream.StorageType
	// DuplicateWindow is how long Nats-Msg-Id de-duplication of domain
	// events lasts (the publisher contract); default DefaultDuplicateWindow. The internal streams
	// use the shorter windows their redelivery paths need (see
	// DeliveriesDuplicateWindow, AttemptsDuplicateWindow): the server keeps
	// every id of the window in memory.
	DuplicateWindow time.Duration
	// EventsMaxAge is how long domain events are kept, expanded or not
	// (they stay for inspection and replay); default 72h.
	EventsMaxAge time.Duration
	// EventsMaxBytes caps the domain events stream's size; the oldest
	// events go first. 0 (the default) is no cap: the stream then holds
	// rate x EventsMaxAge of events. JetStream drops the oldest events
	// whether or not the expander has taken them, so a cap smaller than a
	// backlog (the expander down, or behind) loses events: size it for the
	// longest outage to ride out.
	EventsMaxBytes int64
	// DeadLetterMaxAge is how long dead letters are kept; default 14 days.
	DeadLetterMaxAge time.Duration
}

func (o Options) withDefaults() Options {
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.DuplicateWindow <= 0 {
		o.DuplicateWindow = DefaultDuplicateWindow
	}
	if o.EventsMaxAge <= 0 {
		o.EventsMaxAge = 72 * time.Hour
	}
	if o.DeadLetterMaxAge <= 0 {
		o.DeadLetterMaxAge = 14 * 24 * time.Hour
	}
	return o
}

// EventsStreamConfig is the domain event stream for the given subjects
// (e.g. "API.*", "BILLINGPLAN.*").
func EventsStreamConfig(subjects []string, o Options) jetstream.StreamConfig {
	o = o.withDefaults()
	return jetstream.StreamConfig{
		Name:        StreamEvents,
		Description: "hubhooks domain events published by the hub's domains",
		Subjects:    subjects,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      o.EventsMaxAge,
		MaxBytes:    max(o.EventsMaxBytes, 0),
		Storage:     o.Storage,
		Replicas:    o.Replicas,
		Duplicates:  o.DuplicateWindow,
		Discard:     jetstream.DiscardOld,
	}
}

// DeliveriesStreamConfig is the work queue of delivery jobs.
func DeliveriesStreamConfig(o Options) jetstream.StreamConfig {
	o = o.withDefaults()
	return jetstream.StreamConfig{
		Name:        StreamDeliveries,
		Description: "hubhooks delivery jobs: one per (webhook event, callback URL)",
		Subjects:    []string{subjectDeliveries + "*"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     o.Storage,
		Replicas:    o.Replicas,
		Duplicates:  min(o.DuplicateWindow, DeliveriesDuplicateWindow),
	}
}

// AttemptsStreamConfig is the work queue of attempt records for the logger.
func AttemptsStreamConfig(o Options) jetstream.StreamConfig {
	o = o.withDefaults()
	return jetstream.StreamConfig{
		Name:        StreamAttempts,
		Description: "hubhooks delivery attempts, persisted by the logger",
		Subjects:    []string{subjectAttempts + "*"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     o.Storage,
		Replicas:    o.Replicas,
		Duplicates:  min(o.DuplicateWindow, AttemptsDuplicateWindow),
	}
}

// DeadLettersStreamConfig keeps malformed input for inspection.
func DeadLettersStreamConfig(o Options) jetstream.StreamConfig {
	o = o.withDefaults()
	return jetstream.StreamConfig{
		Name:        StreamDeadLetters,
		Description: "hubhooks dead letters: malformed domain events and delivery jobs, with the reason",
		Subjects:    []string{subjectDeadLetters + ">"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      o.DeadLetterMaxAge,
		Storage:     o.Storage,
		Replicas:    o.Replicas,
		Duplicates:  o.DuplicateWindow,
	}
}

// Ensure creates or updates the given streams. It retries while JetStream is
// not yet available (a server starting, a cluster electing a leader) until
// ctx ends.
func Ensure(ctx context.Context, js jetstream.JetStream, cfgs ...jetstream.StreamConfig) error {
	for _, cfg := range cfgs {
		for {
			_, err := js.CreateOrUpdateStream(ctx, cfg)
			if err == nil {
				break
			}
			if !retryable(err) {
				return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("ensure stream %s: %w (last error: %v)", cfg.Name, ctx.Err(), err)
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	return nil
}

func retryable(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) ||
		errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrNoServers)
}

// ConsumerConfig is the durable pull consumer config every replica of a
// service shares. ackWait bounds how long a message may be held before the
// server redelivers it; maxAckPending bounds messages in flight.
func ConsumerConfig(name string, ackWait time.Duration, maxAckPending int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "hubhooks " + name,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		MaxAckPending: maxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// EnsureConsumer creates or updates a durable consumer, retrying like Ensure.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	for {
		c, err := js.CreateOrUpdateConsumer(ctx, stream, cfg)
		if err == nil {
			return c, nil
		}
		if !retryable(err) {
			return nil, fmt.Errorf("ensure consumer %s on %s: %w", cfg.Durable, stream, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("ensure consumer %s on %s: %w (last error: %v)", cfg.Durable, stream, ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// NewJobMsg encodes a delivery job as a JetStream message with
// Nats-Msg-Id = delivery_id + "." + attempt, so republishing the same job
// (a crash between publish and ack) is de-duplicated by the server.
func NewJobMsg(job *deliveryv1.DeliveryJob) (*nats.Msg, error) {
	b, err := job.MarshalVT()
	if err != nil {
		return nil, fmt.Errorf("encode delivery job: %w", err)
	}
	id := make([]byte, 0, len(job.GetDeliveryId())+12)
	id = append(id, job.GetDeliveryId()...)
	id = append(id, '.')
	id = strconv.AppendInt(id, int64(job.GetAttempt()), 10)
	if d := job.GetDeferrals(); d > 0 {
		// A job parked while its URL's lane was full is republished under
		// a new id, or JetStream would drop it as a duplicate of itself.
		id = append(id, ".d"...)
		id = strconv.AppendInt(id, int64(d), 10)
	}
	return protoMsg(DeliverySubject(job.GetHubId()), ContentTypeProtobuf, string(id), b), nil
}

// protoMsg is a protobuf message of contentType with its de-duplication id.
// The header map is built with its canonical keys directly (no per-message
// canonicalization).
func protoMsg(subject, contentType, msgID string, data []byte) *nats.Msg {
	vals := [2]string{contentType, msgID}
	return &nats.Msg{
		Subject: subject,
		Header: nats.Header{
			HeaderContentType:     vals[0:1:1],
			jetstream.MsgIDHeader: vals[1:2:2],
		},
		Data: data,
	}
}

// NewFanoutMsg encodes one webhook event for several URLs of a hub as one
// message on DeliverySubject(hub), Content-Type ContentTypeDeliveryFanout,
// Nats-Msg-Id = "fan." + webhook_event_id + "." + attempt. One message
// instead of one per URL is a fraction of the stream's work (store,
// deliver, ack) per delivery; the deliverer settles it once every target
// is done (see services/deliverer). f.job must carry hub_id and
// webhook_event_id; f.targets at least one target.
func NewFanoutMsg(f *deliveryv1.DeliveryFanout) (*nats.Msg, error) {
	job := f.GetJob()
	if job.GetHubId() == "" || job.GetWebhookEventId() == "" || len(f.GetTargets()) == 0 {
		return nil, errors.New("encode delivery fanout: needs hub_id, webhook_event_id and a target")
	}
	b, err := f.MarshalVT()
	if err != nil {
		return nil, fmt.Errorf("encode delivery fanout: %w", err)
	}
	id := make([]byte, 0, len(job.GetWebhookEventId())+16)
	id = append(id, "fan."...)
	id = append(id, job.GetWebhookEventId()...)
	id = append(id, '.')
	id = strconv.AppendInt(id, int64(job.GetAttempt()), 10)
	return protoMsg(DeliverySubject(job.GetHubId()), ContentTypeDeliveryFanout, string(id), b), nil
}

// NewFanoutBatchMsg encodes several DeliveryFanouts, all of hubID, as one
// message on DeliverySubject(hubID) with Content-Type ContentTypeFanoutBatch.
// It has no Nats-Msg-Id: a batch published again is rarely made of the same
// fan-outs; the expander marks the fan-outs of an event it expands again
// with HeaderRecheck instead. One fan-out alone is better sent with
// NewFanoutMsg (it is de-duplicated by id).
func NewFanoutBatchMsg(hubID string, fs []*deliveryv1.DeliveryFanout) (*nats.Msg, error) {
	sizes := make([]int, len(fs))
	for i, f := range fs {
		job := f.GetJob()
		if job.GetHubId() != hubID || job.GetWebhookEventId() == "" || len(f.GetTargets()) == 0 {
			return nil, fmt.Errorf("encode delivery fanout batch: fan-out %d needs hub_id %q, webhook_event_id and a target", i, hubID)
		}
		sizes[i] = f.SizeVT()
	}
	if len(fs) == 0 {
		return nil, errors.New("encode delivery fanout batch: no fan-outs")
	}
	data, err := appendFrames(fs, sizes)
	if err != nil {
		return nil, fmt.Errorf("encode delivery fanout: %w", err)
	}
	return &nats.Msg{
		Subject: DeliverySubject(hubID),
		Header:  nats.Header{HeaderContentType: []string{ContentTypeFanoutBatch}},
		Data:    data,
	}, nil
}

// DecodeJobs decodes a delivery message, one DeliveryJob, a DeliveryFanout
// or a batch of them, into its jobs: one per target of a fan-out, each the
// fan-out's shared job with the target's delivery_id, url_id and url (the
// body is shared, not copied: treat it as read-only). The jobs of one
// message are all of one hub.
func DecodeJobs(h nats.Header, data []byte) ([]*deliveryv1.DeliveryJob, error) {
	switch h.Get(HeaderContentType) {
	case ContentTypeDeliveryFanout:
		return decodeFanout(data, nil)
	case ContentTypeFanoutBatch:
		var jobs []*deliveryv1.DeliveryJob
		err := eachFrame(data, "fan-out", func(i int, frame []byte) error {
			before := len(jobs)
			var err error
			if jobs, err = decodeFanout(frame, jobs); err != nil {
				return fmt.Errorf("fan-out %d: %w", i, err)
			}
			if hub := jobs[before].GetHubId(); hub != jobs[0].GetHubId() {
				return fmt.Errorf("fan-out %d is of hub %q, the batch of %q", i, hub, jobs[0].GetHubId())
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("decode delivery fanout batch: %w", err)
		}
		if len(jobs) == 0 {
			return nil, errors.New("decode delivery fanout batch: no fan-outs")
		}
		return jobs, nil
	}
	job, err := DecodeJob(data)
	if err != nil {
		return nil, err
	}
	return []*deliveryv1.DeliveryJob{job}, nil
}

// decodeFanout appends the jobs of one encoded DeliveryFanout to jobs.
func decodeFanout(data []byte, jobs []*deliveryv1.DeliveryJob) ([]*deliveryv1.DeliveryJob, error) {
	f := &deliveryv1.DeliveryFanout{}
	if err := f.UnmarshalVT(data); err != nil {
		return nil, fmt.Errorf("decode delivery fanout: %w", err)
	}
	if f.GetJob() == nil || len(f.GetTargets()) == 0 {
		return nil, errors.New("decode delivery fanout: no job or no targets")
	}
	base := f.GetJob()
	if jobs == nil {
		jobs = make([]*deliveryv1.DeliveryJob, 0, len(f.GetTargets()))
	}
	for _, t := range f.GetTargets() {
		jobs = append(jobs, jobWith(base, t.GetDeliveryId(), t.GetUrlId(), t.GetUrl(), base.GetBody()))
	}
	return jobs, nil
}

// jobWith is a new job with base's fields but for the delivery id, URL id,
// URL and body given (nothing is copied deeply). DecodeJobs and withoutBody
// use it; their tests set every field, so a field added later and not
// copied here fails them.
func jobWith(base *deliveryv1.DeliveryJob, deliveryID, urlID, url string, body []byte) *deliveryv1.DeliveryJob {
	return &deliveryv1.DeliveryJob{
		DeliveryId:      deliveryID,
		HubId:           base.GetHubId(),
		WebhookEventId:  base.GetWebhookEventId(),
		EventType:       base.GetEventType(),
		UrlId:           urlID,
		Url:             url,
		Body:            body,
		CreatedAt:       base.GetCreatedAt(),
		DomainEventId:   base.GetDomainEventId(),
		DomainEventType: base.GetDomainEventType(),
		Attempt:         base.GetAttempt(),
		ConfigVersion:   base.GetConfigVersion(),
		Test:            base.GetTest(),
		RedeliveryOf:    base.GetRedeliveryOf(),
		FirstAttemptAt:  base.GetFirstAttemptAt(),
		Deferrals:       base.GetDeferrals(),
		EventArrivedAt:  base.GetEventArrivedAt(),
	}
}

// DecodeJob decodes a delivery job.
func DecodeJob(data []byte) (*deliveryv1.DeliveryJob, error) {
	job := &deliveryv1.DeliveryJob{}
	if err := job.UnmarshalVT(data); err != nil {
		return nil, fmt.Errorf("decode delivery job: %w", err)
	}
	return job, nil
}

// NewAttemptMsg encodes an attempt record with
// Nats-Msg-Id = delivery_id + "." + attempt + "." + the status's API name.
func NewAttemptMsg(rec *deliveryv1.AttemptRecorded) (*nats.Msg, error) {
	data, err := EncodeAttempt(rec)
	if err != nil {
		return nil, err
	}
	job := rec.GetJob()
	status := rec.GetStatus().APIName()
	id := make([]byte, 0, len(job.GetDeliveryId())+len(status)+13)
	id = append(id, job.GetDeliveryId()...)
	id = append(id, '.')
	id = strconv.AppendInt(id, int64(rec.GetAttempt()), 10)
	id = append(id, '.')
	id = append(id, status...)
	return protoMsg(AttemptSubject(job.GetHubId()), ContentTypeProtobuf, string(id), data), nil
}

// EncodeAttempt encodes one attempt record for NewAttemptBatchMsg.
func EncodeAttempt(rec *deliveryv1.AttemptRecorded) ([]byte, error) {
	b, err := rec.MarshalVT()
	if err != nil {
		return nil, fmt.Errorf("encode attempt: %w", err)
	}
	return b, nil
}

// NewAttemptBatchMsg frames attempt records encoded with EncodeAttempt, all
// of hubID, as one message on AttemptSubject(hubID) with Content-Type
// ContentTypeAttemptBatch. It has no Nats-Msg-Id: a batch published again
// is rarely made of the same records, and the logger applies records
// idempotently. One record alone is better sent with NewAttemptMsg (it is
// de-duplicated by id).
func NewAttemptBatchMsg(hubID string, encoded [][]byte) *nats.Msg {
	n := 0
	for _, b := range encoded {
		n += binary.MaxVarintLen32 + len(b)
	}
	data := make([]byte, 0, n)
	for _, b := range encoded {
		data = binary.AppendUvarint(data, uint64(len(b)))
		data = append(data, b...)
	}
	return attemptBatchMsg(hubID, data)
}

// NewAttemptBatchMsgOf is NewAttemptBatchMsg for records not yet encoded:
// it encodes each one straight into the message, without a buffer of its
// own per record. sizes[i] is recs[i].SizeVT(), as the caller measured it.
//
// A record whose job body equals that of an earlier record of the same
// webhook event in recs is encoded without it (body_shared): the records of
// one event's URLs usually finish together, and the body is most of a
// record. The records are not changed.
func NewAttemptBatchMsgOf(hubID string, recs []*deliveryv1.AttemptRecorded, sizes []int) (*nats.Msg, error) {
	if len(sizes) != len(recs) {
		return nil, fmt.Errorf("encode attempt batch: %d sizes for %d records", len(sizes), len(recs))
	}
	// What is encoded: the record itself, or a copy without the body.
	out := make([]*deliveryv1.AttemptRecorded, len(recs))
	outSizes := make([]int, len(recs))
	var bodies map[string][]byte // webhook event id -> body of the latest record
	for i, r := range recs {
		out[i], outSizes[i] = r, sizes[i]
		job := r.GetJob()
		if body := job.GetBody(); len(body) > 0 {
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
	}
	data, err := appendFrames(out, outSizes)
	if err != nil {
		return nil, fmt.Errorf("encode attempt: %w", err)
	}
	return attemptBatchMsg(hubID, data), nil
}

// appendFrames encodes msgs, of the sizes given (their SizeVT), into one
// buffer, each preceded by its length as a uvarint (the protodelim framing
// of attempt and fan-out batches), without a buffer of its own per message.
func appendFrames[M interface {
	MarshalToSizedBufferVT([]byte) (int, error)
}](msgs []M, sizes []int) ([]byte, error) {
	n := 0
	for _, size := range sizes {
		n += binary.MaxVarintLen32 + size
	}
	data := make([]byte, 0, n)
	for i, m := range msgs {
		data = binary.AppendUvarint(data, uint64(sizes[i]))
		start := len(data)
		data = data[:start+sizes[i]]
		if _, err := m.MarshalToSizedBufferVT(data[start:]); err != nil {
			return nil, err
		}
	}
	return data, nil
}

// eachFrame calls fn with each frame of data (framed as appendFrames does),
// in order, and stops at the first error; what names a frame in the error
// of a bad length.
func eachFrame(data []byte, what string, fn func(i int, frame []byte) error) error {
	for i := 0; len(data) > 0; i++ {
		n, k := binary.Uvarint(data)
		if k <= 0 || n > uint64(len(data)-k) {
			return fmt.Errorf("bad length at %s %d", what, i)
		}
		if err := fn(i, data[k:k+int(n)]); err != nil {
			return err
		}
		data = data[k+int(n):]
	}
	return nil
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

func attemptBatchMsg(hubID string, data []byte) *nats.Msg {
	return &nats.Msg{
		Subject: AttemptSubject(hubID),
		Header:  nats.Header{HeaderContentType: []string{ContentTypeAttemptBatch}},
		Data:    data,
	}
}

// IsAttemptBatch reports whether a message's headers say it is a batch of
// attempt records (decode it with DecodeAttemptBatch).
func IsAttemptBatch(h nats.Header) bool { return h.Get(HeaderContentType) == ContentTypeAttemptBatch }

// DecodeAttemptBatch decodes the records of a NewAttemptBatchMsg message,
// putting back the bodies of records that share them and clearing their
// body_shared. A record whose body cannot be put back (no earlier record of
// its webhook event with a body, or a body of its own) keeps body_shared,
// which logstore.ValidateRecord refuses: that record is dropped, not the
// batch.
//
// The records' strings and bytes are not copied: they point into data,
// which must not change while the records are in use (the logger's are
// written and dropped with their message). A batch is most of the logger's
// decoding, and copying every record's body, headers and ids was most of
// that.
func DecodeAttemptBatch(data []byte) ([]*deliveryv1.AttemptRecorded, error) {
	var recs []*deliveryv1.AttemptRecorded
	var bodies map[string][]byte // webhook event id -> body of the latest record
	err := eachFrame(data, "record", func(i int, frame []byte) error {
		rec := &deliveryv1.AttemptRecorded{}
		if err := rec.UnmarshalVTUnsafe(frame); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		if job := rec.GetJob(); rec.GetBodyShared() {
			if body, ok := bodies[job.GetWebhookEventId()]; ok && job != nil && len(job.GetBody()) == 0 {
				job.Body = body
				rec.BodyShared = false
			}
		} else if body := job.GetBody(); len(body) > 0 {
			if bodies == nil {
				bodies = make(map[string][]byte)
			}
			bodies[job.GetWebhookEventId()] = body
		}
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

// DecodeAttempts decodes a message of the attempts stream, a batch
// (IsAttemptBatch) or one record.
func DecodeAttempts(h nats.Header, data []byte) ([]*deliveryv1.AttemptRecorded, error) {
	if IsAttemptBatch(h) {
		return DecodeAttemptBatch(data)
	}
	rec, err := DecodeAttempt(data)
	if err != nil {
		return nil, err
	}
	return []*deliveryv1.AttemptRecorded{rec}, nil
}

// DecodeAttempt decodes an attempt record.
func DecodeAttempt(data []byte) (*deliveryv1.AttemptRecorded, error) {
	rec := &deliveryv1.AttemptRecorded{}
	if err := rec.UnmarshalVT(data); err != nil {
		return nil, fmt.Errorf("decode attempt: %w", err)
	}
	return rec, nil
}

// DeadLetterOf wraps msg, consumed from stream and impossible to process,
// for the dead-letter stream on subject (SubjectDeadLetterEvents or
// SubjectDeadLetterJobs), with the reason. The original body and headers are
// kept; the stream and, when known, the message's sequence there are added,
// and the sequence makes Nats-Msg-Id = stream + "." + sequence, so a message
// dead-lettered again (redelivered before its ack) is stored once.
func DeadLetterOf(subject string, msg jetstream.Msg, stream, reason string) *nats.Msg {
	dl := newDeadLetter(subject, &nats.Msg{Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data()}, reason)
	dl.Header.Set(HeaderOriginalStream, stream)
	if md, err := msg.Metadata(); err == nil {
		seq := strconv.FormatUint(md.Sequence.Stream, 10)
		dl.Header.Set(HeaderOriginalSeq, seq)
		dl.Header.Set(jetstream.MsgIDHeader, stream+"."+seq)
	}
	return dl
}

// newDeadLetter is orig on subject, without its Nats-Msg-Id, with the reason
// and its original subject in headers.
func newDeadLetter(subject string, orig *nats.Msg, reason string) *nats.Msg {
	m := nats.NewMsg(subject)
	for k, vs := range orig.Header {
		if k == jetstream.MsgIDHeader {
			continue
		}
		for _, v := range vs {
			m.Header.Add(k, v)
		}
	}
	m.Header.Set(HeaderReason, reason)
	m.Header.Set(HeaderOriginalSubject, orig.Subject)
	m.Data = orig.Data
	return m
}
