package publisher

import (
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/pkg/hubid"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
)

// Limits every domain event must respect; the expander dead-letters events
// that break them.
const (
	// MaxIDLen is the longest event id accepted.
	MaxIDLen = 256
	// MaxEventBytes is the largest encoded event accepted (1 MiB).
	MaxEventBytes = 1 << 20
	// MaxActorLen is the longest actor accepted, in bytes: it is copied
	// into every webhook the event sends.
	MaxActorLen = 256
)

// ErrInvalidEvent is wrapped by every event validation error. Such errors are
// never retried.
var ErrInvalidEvent = errors.New("invalid domain event")

var defaultRules = sync.OnceValue(cascade.Default)

// EventOption sets an optional field of a new event.
type EventOption func(*eventOptions) error

type eventOptions struct {
	id         string
	actor      string
	occurredAt time.Time
}

// WithID sets the event id (the idempotency key; default a random
// "evt_..." id). Use a stable id when the same action may be published twice.
func WithID(id string) EventOption {
	return func(o *eventOptions) error {
		if id == "" || len(id) > MaxIDLen || !utf8.ValidString(id) {
			return fmt.Errorf("%w: id must be 1 to %d characters of valid UTF-8", ErrInvalidEvent, MaxIDLen)
		}
		o.id = id
		return nil
	}
}

// WithActor names who caused the event (a user id, a job).
func WithActor(actor string) EventOption {
	return func(o *eventOptions) error {
		if !utf8.ValidString(actor) {
			return fmt.Errorf("%w: actor is not valid UTF-8", ErrInvalidEvent)
		}
		if len(actor) > MaxActorLen {
			return fmt.Errorf("%w: actor is %d bytes, at most %d", ErrInvalidEvent, len(actor), MaxActorLen)
		}
		o.actor = actor
		return nil
	}
}

// WithOccurredAt sets when the action happened (default: now).
func WithOccurredAt(t time.Time) EventOption {
	return func(o *eventOptions) error {
		if t.IsZero() {
			return fmt.Errorf("%w: occurred_at is zero", ErrInvalidEvent)
		}
		o.occurredAt = t
		return nil
	}
}

// Constructor builds a domain event of one subject; see the generated typed
// constructors such as BillingPlanCreated.
type Constructor func(hubID string, data map[string]any, opts ...EventOption) (*eventsv1.DomainEvent, error)

// ConstructorFor returns the typed constructor of a domain subject.
func ConstructorFor(subject string) (Constructor, bool) {
	c, ok := constructors[subject]
	return c, ok
}

// NewEvent builds a domain event of the given subject (type) for hubID. data
// holds the entity and related objects, e.g. {"billingPlan": {...}}; it must
// be convertible by structpb.NewStruct (JSON-like values). The subject must be
// one of the default cascade rules; the typed constructors call NewEvent.
func NewEvent(subject, hubID string, data map[string]any, opts ...EventOption) (*eventsv1.DomainEvent, error) {
	if !defaultRules().Has(subject) {
		return nil, fmt.Errorf("%w: unknown type %q", ErrInvalidEvent, subject)
	}
	if err := hubid.Validate(hubID); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	o := eventOptions{}
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: nil EventOption", ErrInvalidEvent)
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.id == "" {
		o.id = webhook.RandomID("evt_")
	}
	if o.occurredAt.IsZero() {
		o.occurredAt = time.Now()
	}
	s, err := structpb.NewStruct(data)
	if err != nil {
		return nil, fmt.Errorf("%w: data: %w", ErrInvalidEvent, err)
	}
	return &eventsv1.DomainEvent{
		Id:         o.id,
		HubId:      hubID,
		Type:       subject,
		OccurredAt: timestamppb.New(o.occurredAt),
		Data:       s,
		Actor:      o.actor,
	}, nil
}

// validate checks what Publish needs: an id, a valid hub id and a type the
// rules know.
func validate(ev *eventsv1.DomainEvent, rules *cascade.Rules) error {
	var errs []error
	if ev == nil {
		return fmt.Errorf("%w: nil event", ErrInvalidEvent)
	}
	if ev.GetId() == "" {
		errs = append(errs, fmt.Errorf("%w: id is required", ErrInvalidEvent))
	} else if len(ev.GetId()) > MaxIDLen {
		errs = append(errs, fmt.Errorf("%w: id has %d characters, at most %d", ErrInvalidEvent, len(ev.GetId()), MaxIDLen))
	}
	if err := hubid.Validate(ev.GetHubId()); err != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrInvalidEvent, err))
	}
	if len(ev.GetActor()) > MaxActorLen {
		errs = append(errs, fmt.Errorf("%w: actor is %d bytes, at most %d", ErrInvalidEvent, len(ev.GetActor()), MaxActorLen))
	}
	if ev.GetType() == "" {
		errs = append(errs, fmt.Errorf("%w: type is required (it is the subject)", ErrInvalidEvent))
	} else if !rules.Has(ev.GetType()) {
		errs = append(errs, fmt.Errorf("%w: unknown type %q", ErrInvalidEvent, ev.GetType()))
	}
	return errors.Join(errs...)
}
