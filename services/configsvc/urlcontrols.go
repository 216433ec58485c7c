package configsvc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// Limits of the per-URL controls.
const (
	// maxURLEventTypes bounds one URL's event type filter.
	maxURLEventTypes = 200
	// DefaultDisabledReason is the reason of a URL disabled without one.
	DefaultDisabledReason = "disabled by an operator"
)

// eventTypeFilter validates a URL's event type filter: known webhook event
// types, each once. It returns them trimmed, in the order given.
func (s *Service) eventTypeFilter(types []string) ([]string, error) {
	if len(types) > maxURLEventTypes {
		return nil, invalidf("event_types has %d types; at most %d allowed", len(types), maxURLEventTypes)
	}
	out := make([]string, 0, len(types))
	var errs []error
	for _, t := range types {
		t = strings.TrimSpace(t)
		switch {
		case len(t) > maxEventTypeLen || !s.types[t]:
			errs = append(errs, invalidf("event_types: %q is not a webhook event type; ListEventTypes lists them (webhook_event_types)", truncate(t, maxEventTypeLen)))
		case slices.Contains(out, t):
			errs = append(errs, invalidf("event_types: %s is listed twice", t))
		default:
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		out = nil
	}
	return out, errors.Join(errs...)
}

// configureURL is ConfigureCallbackUrl: change the event type filter,
// enabled state and description of one URL.
func (s *Service) configureURL(ctx context.Context, req *hubhooksv1.ConfigureCallbackUrlRequest) (*hubhooksv1.HubConfig, error) {
	hub, raw, id := req.GetHubId(), strings.TrimSpace(req.GetUrl()), req.GetId()
	if err := validateHub(hub); err != nil {
		return nil, err
	}
	var errs []error
	if (raw == "") == (id == "") {
		errs = append(errs, invalidf("set exactly one of url and id to name the callback URL"))
	}
	errs = append(errs, checkLen("url", raw, 4096), checkLen("id", id, maxIDLen))
	var types []string
	if req.GetEventTypes() != nil {
		var err error
		types, err = s.eventTypeFilter(req.GetEventTypes().GetTypes())
		errs = append(errs, err)
	}
	desc := strings.TrimSpace(req.GetDescription())
	reason := strings.TrimSpace(req.GetDisabledReason())
	errs = append(errs, checkLen("description", desc, maxDescriptionLen), checkLen("disabled_reason", reason, maxDescriptionLen))
	if reason != "" && (req.Enabled == nil || req.GetEnabled()) {
		errs = append(errs, invalidf("disabled_reason goes with enabled=false"))
	}
	if req.GetEventTypes() == nil && req.Enabled == nil && req.Description == nil && req.OperationalEvents == nil {
		errs = append(errs, invalidf("nothing to change: set event_types, enabled, description or operational_events"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if reason == "" {
		reason = DefaultDisabledReason
	}
	var disabled *hubhooksv1.CallbackUrl // set when this call disables the URL
	cfg, err := s.mutate(ctx, hub, KindURLConfigured, func(next *hubhooksv1.HubConfig, now time.Time) (bool, error) {
		disabled = nil
		i := findURL(next, raw, id)
		if i < 0 {
			what := "url " + strconv.Quote(raw)
			if id != "" {
				what = "id " + strconv.Quote(id)
			}
			return false, fmt.Errorf("%w: hub %s has no callback URL with %s; GetHubConfig lists its URLs", ErrURLNotFound, hub, what)
		}
		u := next.CallbackUrls[i]
		changed := false
		if req.GetEventTypes() != nil && !slices.Equal(u.EventTypes, types) {
			u.EventTypes, changed = types, true
		}
		if req.Description != nil && u.Description != desc {
			u.Description, changed = desc, true
		}
		if req.Enabled != nil {
			switch {
			case req.GetEnabled() && u.Disabled:
				u.Disabled, u.DisabledReason, u.DisabledAt, changed = false, "", nil, true
			case !req.GetEnabled() && !u.Disabled:
				u.Disabled, u.DisabledReason, u.DisabledAt, changed = true, reason, timestamppb.New(now), true
				disabled = u
			}
		}
		if req.OperationalEvents != nil {
			for _, o := range next.CallbackUrls {
				want := o == u && req.GetOperationalEvents()
				if o.OperationalEvents != want {
					o.OperationalEvents, changed = want, true
				}
			}
		}
		return changed, nil
	})
	if err == nil && disabled != nil {
		s.publishOps(ctx, &hubhooksv1.OperationalEvent{
			Id:    fmt.Sprintf("url_disabled.%s.%d", disabled.GetId(), cfg.GetVersion()),
			HubId: hub, Type: hubhooksv1.OperationalEventType_OPERATIONAL_EVENT_TYPE_URL_DISABLED,
			OccurredAt: disabled.GetDisabledAt(), UrlId: disabled.GetId(), Url: disabled.GetUrl(), Reason: disabled.GetDisabledReason(),
		})
	}
	return cfg, err
}

// publishOps publishes an operational event, best effort: the change it
// reports is made, so a failure is logged, not returned.
func (s *Service) publishOps(ctx context.Context, ev *hubhooksv1.OperationalEvent) {
	m, err := eventbus.NewOpsMsg(ev)
	if err == nil {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, err = s.js.PublishMsg(pctx, m)
		cancel()
	}
	if err != nil {
		s.log.Warn("publish operational event", "hub_id", ev.GetHubId(), "type", ev.GetType().String(), "err", err)
	}
}
