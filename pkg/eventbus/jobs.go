package eventbus

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"

	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
)

// Delivery messages, on DeliverySubject(hub): one DeliveryJob, one
// DeliveryFanout (one webhook event for several URLs), or a batch of
// fan-outs of one hub. DecodeJobs turns any of them into jobs.

// NewJobMsg encodes a delivery job as a JetStream message with
// Nats-Msg-Id = delivery_id + "." + attempt (+ ".d" + deferrals once
// parked), so republishing the same job (a crash between publish and ack)
// is de-duplicated by the server.
func NewJobMsg(job *deliveryv1.DeliveryJob) (*nats.Msg, error) {
	b, err := job.MarshalVT()
	if err != nil {
		return nil, fmt.Errorf("encode delivery job: %w", err)
	}
	return newDedupMsg(DeliverySubject(job.GetHubId()), ContentTypeProtobuf, jobMsgID(job), b), nil
}

// jobMsgID is the Nats-Msg-Id of job: a job parked while its URL's lane was
// full is republished under a new id (its deferrals), or JetStream would
// drop it as a duplicate of itself.
func jobMsgID(job *deliveryv1.DeliveryJob) string {
	id := make([]byte, 0, len(job.GetDeliveryId())+12)
	id = append(id, job.GetDeliveryId()...)
	id = append(id, '.')
	id = strconv.AppendInt(id, int64(job.GetAttempt()), 10)
	if d := job.GetDeferrals(); d > 0 {
		id = append(id, ".d"...)
		id = strconv.AppendInt(id, int64(d), 10)
	}
	return string(id)
}

// HeaderTraceParent is the W3C trace context header. A message of one
// fan-out carries its job's trace_parent in it too; a batch of several
// cannot (each job keeps its own in trace_parent).
const HeaderTraceParent = "traceparent"

// NewFanoutMsg encodes one webhook event for several URLs of a hub as one
// message on DeliverySubject(hub), Content-Type ContentTypeDeliveryFanout,
// Nats-Msg-Id = "fan." + webhook_event_id + "." + attempt. One message
// instead of one per URL is a fraction of the stream's work (store,
// deliver, ack) per delivery; the deliverer settles it once every target
// is done. f.job must carry hub_id and webhook_event_id; f.targets at least
// one target.
func NewFanoutMsg(f *deliveryv1.DeliveryFanout) (*nats.Msg, error) {
	job := f.GetJob()
	if job.GetHubId() == "" || job.GetWebhookEventId() == "" || len(f.GetTargets()) == 0 {
		return nil, errors.New("encode delivery fanout: needs hub_id, webhook_event_id and a target")
	}
	b, err := f.MarshalVT()
	if err != nil {
		return nil, fmt.Errorf("encode delivery fanout: %w", err)
	}
	id := "fan." + job.GetWebhookEventId() + "." + strconv.Itoa(int(job.GetAttempt()))
	m := newDedupMsg(DeliverySubject(job.GetHubId()), ContentTypeDeliveryFanout, id, b)
	if tp := job.GetTraceParent(); tp != "" {
		m.Header.Set(HeaderTraceParent, tp) // W3C trace context, as pkg/tracing reads it
	}
	return m, nil
}

// NewFanoutBatchMsg encodes several DeliveryFanouts, all of hubID, as one
// message on DeliverySubject(hubID) with Content-Type ContentTypeFanoutBatch.
// It has no Nats-Msg-Id: a batch published again is rarely made of the same
// fan-outs; the expander marks the fan-outs of an event it expands again
// with HeaderRecheck instead. One fan-out alone is better sent with
// NewFanoutMsg (it is de-duplicated by id).
func NewFanoutBatchMsg(hubID string, fs []*deliveryv1.DeliveryFanout) (*nats.Msg, error) {
	if len(fs) == 0 {
		return nil, errors.New("encode delivery fanout batch: no fan-outs")
	}
	sizes := make([]int, len(fs))
	for i, f := range fs {
		job := f.GetJob()
		if job.GetHubId() != hubID || job.GetWebhookEventId() == "" || len(f.GetTargets()) == 0 {
			return nil, fmt.Errorf("encode delivery fanout batch: fan-out %d needs hub_id %q, webhook_event_id and a target", i, hubID)
		}
		sizes[i] = f.SizeVT()
	}
	data, err := appendFrames(fs, sizes)
	if err != nil {
		return nil, fmt.Errorf("encode delivery fanout: %w", err)
	}
	return newMsg(DeliverySubject(hubID), ContentTypeFanoutBatch, data), nil
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
		return decodeFanoutBatch(data)
	}
	job, err := decodeJob(data)
	if err != nil {
		return nil, err
	}
	return []*deliveryv1.DeliveryJob{job}, nil
}

// decodeJob decodes one delivery job.
func decodeJob(data []byte) (*deliveryv1.DeliveryJob, error) {
	job := &deliveryv1.DeliveryJob{}
	if err := job.UnmarshalVT(data); err != nil {
		return nil, fmt.Errorf("decode delivery job: %w", err)
	}
	return job, nil
}

// decodeFanoutBatch decodes the jobs of every fan-out of a batch, all of
// one hub.
func decodeFanoutBatch(data []byte) ([]*deliveryv1.DeliveryJob, error) {
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
// URL and body given (nothing is copied deeply). decodeFanout and
// withoutBody use it; their tests set every field, so a field added later
// and not copied here fails them.
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
		TraceParent:     base.GetTraceParent(),
	}
}
