package logstore

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
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

// statusRank orders records of the same attempt number: the later state of
// a delivery ranks higher.
func statusRank(status hubhooksv1.DeliveryStatus) (int, bool) {
	switch status {
	case hubhooksv1.StatusPending:
		return 0, true
	case hubhooksv1.StatusRetrying:
		return 1, true
	case hubhooksv1.StatusCancelled:
		return 2, true
	case hubhooksv1.StatusSucceeded, hubhooksv1.StatusFailed, hubhooksv1.StatusDead:
		return 3, true
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

// orderKey totally orders the records of one delivery: the record with the
// highest key decides the summary, whatever order records arrive in.
func orderKey(rec *deliveryv1.AttemptRecorded) int64 {
	r, _ := statusRank(rec.GetStatus())
	return int64(attemptNumber(rec))*4 + int64(r)
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

// metadata is the immutable part of an entry: the job without the fields
// that change per attempt. It holds the request body, once.
func metadata(rec *deliveryv1.AttemptRecorded) *deliveryv1.DeliveryJob {
	job := proto.Clone(rec.GetJob()).(*deliveryv1.DeliveryJob)
	job.Attempt = 0
	job.ConfigVersion = 0
	job.FirstAttemptAt = nil
	if job.CreatedAt == nil || job.CreatedAt.AsTime().Unix() <= 0 {
		job.CreatedAt = timestamppb.New(createdAt(rec))
	}
	return job
}

// marshalMetadata encodes metadata(rec) without copying the job (and its
// body): it clears the per-attempt fields of rec's job for the encoding and
// restores them before it returns.
func marshalMetadata(rec *deliveryv1.AttemptRecorded) ([]byte, error) {
	job := rec.GetJob()
	if job == nil {
		return metadata(rec).MarshalVT()
	}
	attempt, version, first, created := job.Attempt, job.ConfigVersion, job.FirstAttemptAt, job.CreatedAt
	defer func() {
		job.Attempt, job.ConfigVersion, job.FirstAttemptAt, job.CreatedAt = attempt, version, first, created
	}()
	job.Attempt, job.ConfigVersion, job.FirstAttemptAt = 0, 0, nil
	if created == nil || created.AsTime().Unix() <= 0 {
		job.CreatedAt = timestamppb.New(createdAt(rec))
	}
	return job.MarshalVT()
}

// marshalAttempt encodes the stored form of one record (nil for a pending
// record: no attempt made). The request body is left out when it is the job
// body (stored once with the metadata) and the secret header is masked. It
// does not copy the request: it masks the secret header of rec's request in place
// (the masked value is the only one ever stored) and clears the request body
// for the encoding only, restoring it before it returns.
func marshalAttempt(rec *deliveryv1.AttemptRecorded) ([]byte, error) {
	if rec.GetStatus() == hubhooksv1.StatusPending {
		return nil, nil
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
		MaskHeaders(req.Headers)
		if body := req.Body; body != "" && body == string(rec.GetJob().GetBody()) {
			req.Body = ""
			defer func() { req.Body = body }()
		}
		a.Request = req
	}
	return a.MarshalVT()
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

// attemptField names an attempt's hash field so that fields sort by attempt
// number, then status rank; the same record always lands on the same field.
func attemptField(rec *deliveryv1.AttemptRecorded) string {
	r, _ := statusRank(rec.GetStatus())
	return fmt.Sprintf("a:%06d:%d", attemptNumber(rec), r)
}
