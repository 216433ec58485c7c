package logstore

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/hubid"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// SecretHeader is the request header whose value is always masked.
const SecretHeader = webhook.HeaderSecret

// MaxIDLen bounds entry ids (delivery ids) accepted by the store.
const MaxIDLen = 128

var (
	// ErrInvalidRecord is wrapped by ValidateRecord errors: the record can
	// never be stored and must not be retried.
	ErrInvalidRecord = errors.New("invalid attempt record")
	// ErrNotFound is returned when an entry does not exist (or belongs to
	// another hub).
	ErrNotFound = errors.New("event log entry not found")
	// ErrBadPageToken is returned for a page token this store did not issue.
	ErrBadPageToken = errors.New("invalid page_token")
)

// Status ranks order the records of one attempt number: the later state of
// a delivery ranks higher.
const (
	rankPending   = 0
	rankRetrying  = 1
	rankCancelled = 2
	rankFinal     = 3
)

func statusRank(status hubhooksv1.DeliveryStatus) (int, bool) {
	switch status {
	case hubhooksv1.StatusPending:
		return rankPending, true
	case hubhooksv1.StatusRetrying:
		return rankRetrying, true
	case hubhooksv1.StatusCancelled:
		return rankCancelled, true
	case hubhooksv1.StatusSucceeded, hubhooksv1.StatusFailed, hubhooksv1.StatusDead:
		return rankFinal, true
	}
	return 0, false
}

// ValidID reports whether id can be an entry id: 1 to MaxIDLen characters
// of A-Z, a-z, 0-9, '-' and '_'.
func ValidID(id string) bool {
	if id == "" || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// attemptNumber is the attempt number a record stands for. A cancellation
// without a number takes the number of the attempt its job would have made.
func attemptNumber(rec *deliveryv1.AttemptRecorded) int32 {
	n := rec.GetAttempt()
	if n <= 0 && rec.GetStatus() != hubhooksv1.StatusPending {
		n = rec.GetJob().GetAttempt()
	}
	if n < 0 {
		n = 0
	}
	return n
}

// recordOrder is the order key of rec (entry.go: orderKey).
func recordOrder(rec *deliveryv1.AttemptRecorded) string {
	r, _ := statusRank(rec.GetStatus())
	n := attemptNumber(rec)
	if r == rankPending {
		n = 0
	}
	return orderKey(runKey(createdAt(rec)), n, r)
}

// ValidateRecord reports why rec cannot be stored, wrapping ErrInvalidRecord.
func ValidateRecord(rec *deliveryv1.AttemptRecorded) error {
	job := rec.GetJob()
	var errs []error
	if job == nil {
		return fmt.Errorf("%w: no job", ErrInvalidRecord)
	}
	if err := hubid.Validate(job.GetHubId()); err != nil {
		errs = append(errs, err)
	}
	if !ValidID(job.GetDeliveryId()) {
		errs = append(errs, fmt.Errorf("delivery_id %q: want 1-%d characters of A-Za-z0-9-_", job.GetDeliveryId(), MaxIDLen))
	}
	if _, ok := statusRank(rec.GetStatus()); !ok {
		errs = append(errs, fmt.Errorf("status %v unknown", rec.GetStatus()))
	} else if attemptNumber(rec) <= 0 && rec.GetStatus() != hubhooksv1.StatusPending && rec.GetStatus() != hubhooksv1.StatusCancelled {
		errs = append(errs, fmt.Errorf("status %q without an attempt number", rec.GetStatus().APIName()))
	}
	if createdAt(rec).IsZero() {
		errs = append(errs, errors.New("neither job.created_at nor started_at is set"))
	}
	if rec.GetBodyShared() {
		// A batch's decoder clears it when it puts the body back.
		errs = append(errs, errors.New("body_shared, and no body to share: not in a batch, or no earlier record of its webhook event there"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidRecord, errors.Join(errs...))
	}
	return nil
}

// createdAt is the entry's creation time: the job's, else the record's start.
func createdAt(rec *deliveryv1.AttemptRecorded) time.Time {
	if ts := rec.GetJob().GetCreatedAt(); ts != nil && ts.IsValid() && ts.AsTime().Unix() > 0 {
		return ts.AsTime()
	}
	if ts := rec.GetStartedAt(); ts != nil && ts.IsValid() && ts.AsTime().Unix() > 0 {
		return ts.AsTime()
	}
	return time.Time{}
}

// summarize derives the list view of a delivery from its deciding record.
func summarize(rec *deliveryv1.AttemptRecorded, now time.Time) *hubhooksv1.EventLog {
	job := rec.GetJob()
	n := attemptNumber(rec)
	made := n
	switch rec.GetStatus() {
	case hubhooksv1.StatusPending:
		made = 0
	case hubhooksv1.StatusCancelled:
		made = max(n-1, 0)
	}
	updated := rec.GetStartedAt()
	if updated == nil || !updated.IsValid() || updated.AsTime().Unix() <= 0 {
		updated = timestamppb.New(now)
	}
	l := &hubhooksv1.EventLog{
		Id:                 job.GetDeliveryId(),
		EventId:            job.GetWebhookEventId(),
		EventType:          job.GetEventType(),
		Url:                job.GetUrl(),
		Status:             rec.GetStatus().APIName(),
		ResponseStatusCode: rec.GetResponse().GetStatusCode(),
		Attempts:           made,
		CreatedAt:          timestamppb.New(createdAt(rec)),
		UpdatedAt:          updated,
		Test:               job.GetTest(),
		HubId:              job.GetHubId(),
		UrlId:              job.GetUrlId(),
		DomainEventId:      job.GetDomainEventId(),
		DomainEventType:    job.GetDomainEventType(),
		RedeliveryOf:       job.GetRedeliveryOf(),
	}
	if rec.GetStatus() == hubhooksv1.StatusRetrying {
		l.NextAttemptAt = rec.GetNextAttemptAt()
	}
	return l
}

// metadata is the job of rec's run as an entry keeps it: the job without
// the fields that change per attempt, and with its created_at set. It shares
// the job's body and timestamps (read only) and does not change rec.
func metadata(rec *deliveryv1.AttemptRecorded) *deliveryv1.DeliveryJob {
	j := rec.GetJob()
	return &deliveryv1.DeliveryJob{
		DeliveryId:      j.GetDeliveryId(),
		HubId:           j.GetHubId(),
		WebhookEventId:  j.GetWebhookEventId(),
		EventType:       j.GetEventType(),
		UrlId:           j.GetUrlId(),
		Url:             j.GetUrl(),
		Body:            j.GetBody(),
		CreatedAt:       timestamppb.New(createdAt(rec)),
		DomainEventId:   j.GetDomainEventId(),
		DomainEventType: j.GetDomainEventType(),
		Test:            j.GetTest(),
		RedeliveryOf:    j.GetRedeliveryOf(),
		EventArrivedAt:  j.GetEventArrivedAt(),
		TraceParent:     j.GetTraceParent(),
		// Left out, they change per attempt: attempt, config_version,
		// first_attempt_at, deferrals.
	}
}

// storedAttempt is the attempt rec stands for as an entry keeps it (nil for
// a pending record: no attempt made): the request with the secret header
// masked and without its body when that is the job's body (the run's
// metadata holds it). It shares the response and times with rec (read only)
// and does not change rec.
func storedAttempt(rec *deliveryv1.AttemptRecorded) *hubhooksv1.Attempt {
	if rec.GetStatus() == hubhooksv1.StatusPending {
		return nil
	}
	a := &hubhooksv1.Attempt{
		Number:    attemptNumber(rec),
		Status:    rec.GetStatus().APIName(),
		StartedAt: rec.GetStartedAt(),
		Response:  rec.GetResponse(),
	}
	if rec.GetStatus() == hubhooksv1.StatusRetrying {
		a.NextAttemptAt = rec.GetNextAttemptAt()
	}
	if req := rec.GetRequest(); req != nil {
		a.Request = &hubhooksv1.HttpRequest{Url: req.GetUrl(), Method: req.GetMethod(), Headers: maskedCopy(req.GetHeaders())}
		if body := req.GetBody(); body != string(rec.GetJob().GetBody()) {
			a.Request.Body = body
		}
	}
	return a
}

// maskedCopy copies h with the secret header's value masked.
func maskedCopy(h map[string]string) map[string]string {
	if h == nil {
		return nil
	}
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[k] = v
	}
	MaskHeaders(out)
	return out
}

// MaskHeaders replaces the value of the secret header (any case) with
// webhook.MaskSecret, in place.
func MaskHeaders(h map[string]string) {
	for k := range h {
		if strings.EqualFold(k, SecretHeader) {
			h[k] = webhook.MaskSecret
		}
	}
}
