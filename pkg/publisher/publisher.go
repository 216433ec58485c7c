package publisher

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/tracing"
	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
)

// Errors of New and its options.
var (
	// ErrNilJetStream is returned by New without a JetStream context.
	ErrNilJetStream = errors.New("publisher: nil jetstream.JetStream")
	// ErrInvalidOption is wrapped by errors of invalid options.
	ErrInvalidOption = errors.New("publisher: invalid option")
)

// Defaults of the options.
const (
	// DefaultAttempts is how many times Publish tries in all.
	DefaultAttempts = 5
	// DefaultBackoff is the wait before the first retry; it doubles up to 5s.
	DefaultBackoff = 100 * time.Millisecond
	// DefaultTimeout bounds one publish attempt.
	DefaultTimeout = 5 * time.Second
	maxBackoff     = 5 * time.Second
)

// Option configures a Publisher.
type Option func(*Publisher) error

// WithJSON publishes events as protojson (Content-Type: application/json)
// instead of binary protobuf.
func WithJSON() Option {
	return func(p *Publisher) error {
		p.json = true
		return nil
	}
}

// WithRetry sets how many times Publish tries in all (>= 1) and the backoff
// before the first retry (>= 0; it doubles with each retry, up to 5s, with
// jitter). Default 5 attempts, 100ms.
func WithRetry(attempts int, backoff time.Duration) Option {
	return func(p *Publisher) error {
		if attempts < 1 {
			return fmt.Errorf("%w: retry attempts %d, want >= 1", ErrInvalidOption, attempts)
		}
		if backoff < 0 {
			return fmt.Errorf("%w: retry backoff %v, want >= 0", ErrInvalidOption, backoff)
		}
		p.attempts, p.backoff = attempts, backoff
		return nil
	}
}

// WithTimeout bounds each publish attempt (default 5s).
func WithTimeout(d time.Duration) Option {
	return func(p *Publisher) error {
		if d <= 0 {
			return fmt.Errorf("%w: timeout %v, want > 0", ErrInvalidOption, d)
		}
		p.timeout = d
		return nil
	}
}

// WithRules validates event types against rules instead of the default
// cascade rules (for deployments with an alternative rules file).
func WithRules(rules *cascade.Rules) Option {
	return func(p *Publisher) error {
		if rules == nil {
			return fmt.Errorf("%w: nil rules", ErrInvalidOption)
		}
		p.rules = rules
		return nil
	}
}

// Publisher publishes domain events to JetStream. It is safe for concurrent use.
type Publisher struct {
	js       jetstream.JetStream
	json     bool
	attempts int
	backoff  time.Duration
	timeout  time.Duration
	rules    *cascade.Rules
}

// New returns a Publisher over js.
func New(js jetstream.JetStream, opts ...Option) (*Publisher, error) {
	if js == nil {
		return nil, ErrNilJetStream
	}
	p := &Publisher{js: js, attempts: DefaultAttempts, backoff: DefaultBackoff, timeout: DefaultTimeout}
	var errs []error
	for _, opt := range opts {
		if opt == nil {
			errs = append(errs, fmt.Errorf("%w: nil option", ErrInvalidOption))
			continue
		}
		if err := opt(p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if p.rules == nil {
		p.rules = defaultRules()
	}
	return p, nil
}

// Publish validates ev, publishes it on the subject equal to its type with
// Nats-Msg-Id = ev.Id and waits for the JetStream ack, retrying transient
// failures. A validation error wraps ErrInvalidEvent and is returned at once.
// The returned ack has Duplicate set when JetStream already had the event.
func (p *Publisher) Publish(ctx context.Context, ev *eventsv1.DomainEvent) (ack *jetstream.PubAck, err error) {
	if err := validate(ev, p.rules); err != nil {
		return nil, err
	}
	// A producer span whose W3C trace context travels in the message
	// headers: the expander's span, and every delivery's, continue it.
	ctx, span := tracing.Start(ctx, "publish "+ev.GetType(), trace.WithSpanKind(trace.SpanKindProducer))
	defer func() {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	msg := nats.NewMsg(ev.GetType())
	tracing.Inject(ctx, msg.Header)
	if p.json {
		msg.Data, err = protojson.Marshal(ev)
		msg.Header.Set(eventbus.HeaderContentType, eventbus.ContentTypeJSON)
	} else {
		msg.Data, err = proto.Marshal(ev)
		msg.Header.Set(eventbus.HeaderContentType, eventbus.ContentTypeProtobuf)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: encode: %w", ErrInvalidEvent, err)
	}
	if len(msg.Data) > MaxEventBytes {
		return nil, fmt.Errorf("%w: %d bytes encoded, at most %d", ErrInvalidEvent, len(msg.Data), MaxEventBytes)
	}
	msg.Header.Set(jetstream.MsgIDHeader, ev.GetId())

	backoff := p.backoff
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, p.timeout)
		ack, err = p.js.PublishMsg(actx, msg, jetstream.WithExpectStream(eventbus.StreamEvents), jetstream.WithRetryAttempts(0))
		cancel()
		if err == nil {
			return ack, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("publish %s %s: %w (last error: %w)", ev.GetType(), ev.GetId(), ctx.Err(), err)
		}
		if !Transient(err) || attempt >= p.attempts {
			return nil, fmt.Errorf("publish %s %s: attempt %d: %w", ev.GetType(), ev.GetId(), attempt, err)
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(backoff*2, maxBackoff)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("publish %s %s: %w (last error: %w)", ev.GetType(), ev.GetId(), ctx.Err(), err)
		case <-time.After(wait):
		}
	}
}

// Transient reports whether a publish error is worth retrying: timeouts, no
// responders (no stream yet, or a leader election), a reconnecting or
// server-less connection, and JetStream's "temporarily unavailable" (503).
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code == 503
	}
	return errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrNoServers)
}
