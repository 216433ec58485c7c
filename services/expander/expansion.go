package expander

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/pkg/routing"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// Reasons Expansion.Fanouts gives for an event that sends nothing; they
// label hubhooks_expander_events_skipped_total.
const (
	// SkipBeforeEnabled: no URL takes events that arrived when this one did
	// (the triggers, or every URL, came after it).
	SkipBeforeEnabled = "before_enabled"
	// SkipNoEvents: the cascade rules emit no webhook event for it.
	SkipNoEvents = "no_events"
	// SkipFiltered: URLs exist, but none takes any of its webhook events'
	// types (disabled, or filtering them out).
	SkipFiltered = "filtered"
)

// ErrExpansion wraps the errors of Expansion.Fanouts: the event's data
// cannot be turned into webhooks (never worth retrying).
var ErrExpansion = errors.New("cannot expand domain event")

// ErrTooLarge is wrapped (with ErrExpansion) when a domain event would
// expand into more than Limits allows.
var ErrTooLarge = errors.New("expansion too large")

// Limits bound what one domain event may expand into: a domain event is at
// most 1 MiB, but each webhook it sends copies part of it (the entity, or
// the whole data when the entity is missing, and the actor), one per
// element of a list, so without bounds one event can become gigabytes of
// webhooks, memory, log entries and traffic. An event beyond them is
// refused whole (dead-lettered with the reason), before its webhooks are
// built. Zero fields take the Default* values.
type Limits struct {
	// MaxWebhooks is the most webhook events one domain event emits.
	MaxWebhooks int
	// MaxWebhookBytes is the largest webhook body.
	MaxWebhookBytes int
	// MaxTotalBytes is the most bytes of webhook bodies one domain event
	// makes, all webhook events together (each sent to every URL).
	MaxTotalBytes int
}

// Defaults of Limits.
const (
	DefaultMaxWebhooks     = 1000
	DefaultMaxWebhookBytes = 1 << 20
	DefaultMaxTotalBytes   = 4 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxWebhooks == 0 {
		l.MaxWebhooks = DefaultMaxWebhooks
	}
	if l.MaxWebhookBytes == 0 {
		l.MaxWebhookBytes = DefaultMaxWebhookBytes
	}
	if l.MaxTotalBytes == 0 {
		l.MaxTotalBytes = DefaultMaxTotalBytes
	}
	return l
}

// Validate reports every problem of l; zero fields are valid (defaults).
func (l Limits) Validate() error {
	if l.MaxWebhooks < 0 || l.MaxWebhookBytes < 0 || l.MaxTotalBytes < 0 {
		return fmt.Errorf("expansion limits must not be negative: %+v", l)
	}
	return nil
}

// bodyOverhead bounds what a webhook body adds to its data and the copied
// fields: the envelope's names, ids, type and times.
const bodyOverhead = 1024

// tooLarge is ErrTooLarge saying which bound and by how much.
func tooLarge(format string, args ...any) error {
	return fmt.Errorf("%w: %w: %s", ErrExpansion, ErrTooLarge, fmt.Sprintf(format, args...))
}

// Expansion is one domain event to turn into delivery fan-outs: the webhook
// events its cascade rule emits, each for the hub's URLs that take it
// (pkg/routing). The expander expands every event as it arrives;
// OperationsService replays events with Replay set.
type Expansion struct {
	Event *eventsv1.DomainEvent
	// Subject is the event's subject (its type).
	Subject string
	// Arrived is when JetStream stored the event (the zero time: unknown).
	Arrived time.Time
	// Config is the hub's configuration to route by.
	Config *hubhooksv1.HubConfig
	// Replay makes replayed webhook events: ids from webhook.ReplayEventID,
	// bodies naming the original (replay_of), routed to the URLs that take
	// them now whenever the event arrived, and jobs without the arrival time
	// (which would cancel an event that arrived while the triggers were off).
	Replay bool
	// Take, when set, keeps only the (webhook event type, URL) pairs it
	// accepts, besides routing (a replay's filters).
	Take func(typ string, u *hubhooksv1.CallbackUrl) bool
	// Limits bound the expansion; zero fields are the defaults.
	Limits Limits
}

// Fanouts returns one fan-out per webhook event that goes to at least one
// URL, in cascade order, or the reason (Skip*) why the event sends nothing.
// An error wraps ErrExpansion.
func (x Expansion) Fanouts(rules *cascade.Rules) ([]*deliveryv1.DeliveryFanout, string, error) {
	hub, cfg := x.Event.GetHubId(), x.Config
	arrived := x.Arrived
	if x.Replay {
		arrived = time.Time{} // route by the URLs of now
	}
	// Every URL takes every event unless one is disabled or filters types
	// (or the caller filters): then each webhook event is routed by its type.
	perType := x.Take != nil || routing.Filtered(cfg)
	var urls []*hubhooksv1.CallbackUrl
	if !perType {
		if urls, _ = routing.Route(cfg, "", arrived); len(urls) == 0 {
			return nil, SkipBeforeEnabled, nil
		}
	}
	emitted, err := rules.Expand(x.Subject, x.Event.GetData())
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrExpansion, err)
	}
	if len(emitted) == 0 {
		return nil, SkipNoEvents, nil
	}
	lim := x.Limits.withDefaults()
	if len(emitted) > lim.MaxWebhooks {
		return nil, "", tooLarge("%d webhook events, at most %d", len(emitted), lim.MaxWebhooks)
	}
	// Every body is measured before it is built (its data, the copied
	// fields and the envelope), so the bounds hold without making a
	// single oversized body.
	copied := len(x.Event.GetId()) + len(x.Event.GetActor()) + len(hub) + len(x.Subject) + bodyOverhead
	total := 0
	for i, e := range emitted {
		n := len(e.Data) + len(e.Type) + copied
		if n > lim.MaxWebhookBytes {
			return nil, "", tooLarge("webhook event %d (%s) would be about %d bytes, at most %d", i, e.Type, n, lim.MaxWebhookBytes)
		}
		if total += n; total > lim.MaxTotalBytes {
			return nil, "", tooLarge("its %d webhook events would be more than %d bytes together, at most %d", len(emitted), total, lim.MaxTotalBytes)
		}
	}

	var arrivedAt *timestamppb.Timestamp
	if !x.Arrived.IsZero() && !x.Replay {
		arrivedAt = timestamppb.New(x.Arrived)
	}
	// The webhooks' and the log's time is when hubhooks accepted the event:
	// JetStream's stored time, the same however often the event is
	// redelivered (a replay's is now, as a redelivery's). The publisher's
	// occurred_at is its own claim (maybe long past, maybe ahead of the
	// clock): the body carries it as such.
	createdAt := x.Arrived
	if createdAt.IsZero() || x.Replay {
		createdAt = time.Now()
	}
	createdAt = createdAt.UTC()
	createdPB := timestamppb.New(createdAt) // shared by the fan-outs, only read
	ref := webhook.DomainEventRef{ID: x.Event.GetId(), Type: x.Subject, Actor: x.Event.GetActor()}
	if x.Event.OccurredAt != nil {
		ref.OccurredAt = x.Event.GetOccurredAt().AsTime().UTC()
	}

	fanouts := make([]*deliveryv1.DeliveryFanout, 0, len(emitted))
	for i, e := range emitted {
		if perType {
			if urls, _ = routing.Route(cfg, e.Type, arrived); x.Take != nil {
				urls = takeURLs(urls, e.Type, x.Take)
			}
			if len(urls) == 0 {
				continue // no URL takes this type; the position i stays its own
			}
		}
		eventID := webhook.EventID(hub, x.Event.GetId(), i)
		ev := &webhook.Event{ID: eventID, Type: e.Type, HubID: hub, CreatedAt: createdAt, Data: e.Data, DomainEvent: ref}
		if x.Replay {
			ev.ID, ev.ReplayOf = webhook.ReplayEventID(hub, x.Event.GetId(), i), eventID
		}
		body, err := ev.Marshal()
		if err != nil {
			return nil, "", fmt.Errorf("%w: %w", ErrExpansion, err)
		}
		// One fan-out per webhook event, whatever the number of URLs: the
		// deliverer splits it (eventbus.DecodeJobs).
		f := &deliveryv1.DeliveryFanout{
			Job: &deliveryv1.DeliveryJob{
				HubId:           hub,
				WebhookEventId:  ev.ID,
				EventType:       e.Type,
				Body:            body,
				CreatedAt:       createdPB,
				DomainEventId:   x.Event.GetId(),
				DomainEventType: x.Subject,
				Attempt:         1,
				ConfigVersion:   cfg.GetVersion(),
				EventArrivedAt:  arrivedAt,
			},
			Targets: make([]*deliveryv1.FanoutTarget, len(urls)),
		}
		for j, u := range urls {
			f.Targets[j] = &deliveryv1.FanoutTarget{
				DeliveryId: webhook.DeliveryID(ev.ID, u.GetId()), UrlId: u.GetId(), Url: u.GetUrl(),
			}
		}
		fanouts = append(fanouts, f)
	}
	if len(fanouts) == 0 {
		return nil, SkipFiltered, nil
	}
	return fanouts, "", nil
}

// takeURLs keeps the URLs take accepts for typ.
func takeURLs(urls []*hubhooksv1.CallbackUrl, typ string, take func(string, *hubhooksv1.CallbackUrl) bool) []*hubhooksv1.CallbackUrl {
	out := urls[:0:0]
	for _, u := range urls {
		if take(typ, u) {
			out = append(out, u)
		}
	}
	return out
}
