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
