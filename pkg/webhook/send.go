package webhook

import (
	"context"
	"time"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// Request is one webhook POST to make.
type Request struct {
	// URL is the callback URL.
	URL string
	// WebhookID is the webhook event id, sent as webhook-id.
	WebhookID string
	// Body is the exact JSON body.
	Body []byte
	// Secrets sign the request, current secret first; the first one is also
	// sent in x-rapidapi-webhook-secret. Older secrets still in their grace
	// period follow.
	Secrets []string
	// Timestamp is the webhook-timestamp; zero means now.
	Timestamp time.Time
	// OmitRecordedBody leaves Result.Request.Body empty (the caller keeps
	// the body already) instead of copying Body into it.
	OmitRecordedBody bool
}

// Result is the outcome of one attempt.
type Result struct {
	// Request is the request as sent, with the secret header masked.
	Request *hubhooksv1.HttpRequest
	// Response is the receiver's answer (body capped) or the error.
	Response *hubhooksv1.HttpResponse
	// StatusCode is the HTTP status, 0 when no response arrived.
	StatusCode int
	// Err is set when no response arrived (timeout, connection refused,
	// address blocked by the guard) or the request could not be built.
	Err error
	// RetryAfter is the receiver's Retry-After on 429 and 503, 0 otherwise.
	RetryAfter time.Duration
	// Duration is how long the attempt took.
	Duration time.Duration
}

// Succeeded reports whether the receiver answered 2xx.
func (r Result) Succeeded() bool { return r.Err == nil && r.StatusCode >= 200 && r.StatusCode < 300 }

// Gone reports whether the receiver answered 410 Gone: stop retrying.
func (r Result) Gone() bool { return r.StatusCode == 410 }

// Sender sends one webhook. Implementations are safe for concurrent use and
// never return without a Result: every failure is described in it.
type Sender interface {
	Send(ctx context.Context, req Request) Result
}

// MaskSecret is what x-rapidapi-webhook-secret shows in logs.
const MaskSecret = "whsec_********"
