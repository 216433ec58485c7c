package routing

import (
	"fmt"
	"slices"
	"strings"
	"time"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// Reasons a webhook event does not go to a URL.
const (
	// TriggersOff: the hub's event triggers are off.
	TriggersOff = "triggers_off"
	// ArrivedBeforeTriggers: the domain event reached hubhooks before the
	// triggers were last switched on (they were off when it arrived).
	ArrivedBeforeTriggers = "arrived_before_triggers"
	// ArrivedBeforeURL: the domain event reached hubhooks before the URL
	// was added.
	ArrivedBeforeURL = "arrived_before_url"
	// URLDisabled: the URL is disabled (see its disabled_reason).
	URLDisabled = "url_disabled"
	// TypeFiltered: the URL's event type filter leaves the type out.
	TypeFiltered = "type_filtered"
)

// Skip is a URL a webhook event does not go to, and why.
type Skip struct {
	URL *hubhooksv1.CallbackUrl
	// Reason is one of the constants above.
	Reason string
	// Detail says it for people.
	Detail string
}

// OperationalPrefix starts the webhook event type of every operational
// event (OPERATIONAL.URL_DISABLED, ...); no cascade rule emits such a type.
const OperationalPrefix = "OPERATIONAL."

// Accepts reports whether u, enabled, receives webhook events of type typ.
// Operational events go to the URL marked operational_events only, whatever
// its event type filter.
func Accepts(u *hubhooksv1.CallbackUrl, typ string) bool {
	if u.GetDisabled() {
		return false
	}
	if strings.HasPrefix(typ, OperationalPrefix) {
		return u.GetOperationalEvents()
	}
	types := u.GetEventTypes()
	return len(types) == 0 || slices.Contains(types, typ)
}

// Filtered reports whether any URL of cfg is disabled or takes only some
// types: when none is, every URL takes every event and callers can skip
// per-type routing.
func Filtered(cfg *hubhooksv1.HubConfig) bool {
	for _, u := range cfg.GetCallbackUrls() {
		if u.GetDisabled() || len(u.GetEventTypes()) > 0 {
			return true
		}
	}
	return false
}

// Route returns the URLs of cfg that a webhook event of type typ goes to,
// and the other URLs with the reason. arrived is when its domain event
// reached JetStream; the zero time means unknown (a replay, a redelivery)
// and skips the arrival checks. A hub whose triggers are off routes to no
// URL.
func Route(cfg *hubhooksv1.HubConfig, typ string, arrived time.Time) (to []*hubhooksv1.CallbackUrl, skipped []Skip) {
	urls := cfg.GetCallbackUrls()
	if why, detail := HubReason(cfg, arrived); why != "" {
		for _, u := range urls {
			skipped = append(skipped, Skip{URL: u, Reason: why, Detail: detail})
		}
		return nil, skipped
	}
	to = make([]*hubhooksv1.CallbackUrl, 0, len(urls))
	for _, u := range urls {
		if why, detail := URLReason(u, typ, arrived); why != "" {
			skipped = append(skipped, Skip{URL: u, Reason: why, Detail: detail})
			continue
		}
		to = append(to, u)
	}
	return to, skipped
}

// HubReason says why no event arriving at arrived goes to any URL of cfg
// ("" when the hub delivers).
func HubReason(cfg *hubhooksv1.HubConfig, arrived time.Time) (reason, detail string) {
	if !cfg.GetEventsEnabled() {
		return TriggersOff, "the hub's event triggers are off"
	}
	if on := cfg.GetEventsEnabledAt(); on != nil && !arrived.IsZero() && arrived.Before(on.AsTime()) {
		return ArrivedBeforeTriggers, fmt.Sprintf("the domain event arrived at %s, before the triggers were switched on at %s",
			arrived.UTC().Format(time.RFC3339Nano), on.AsTime().UTC().Format(time.RFC3339Nano))
	}
	return "", ""
}

// URLReason says why a webhook event of type typ, whose domain event
// arrived at arrived, does not go to u ("" when it does). The hub's own
// reasons (HubReason) are not checked.
func URLReason(u *hubhooksv1.CallbackUrl, typ string, arrived time.Time) (reason, detail string) {
	switch {
	case u.GetDisabled():
		detail := "the URL is disabled"
		if r := u.GetDisabledReason(); r != "" {
			detail += ": " + r
		}
		return URLDisabled, detail
	case strings.HasPrefix(typ, OperationalPrefix) && !u.GetOperationalEvents():
		return TypeFiltered, "the URL does not receive the hub's operational events"
	case !Accepts(u, typ):
		return TypeFiltered, fmt.Sprintf("the URL receives only %v", u.GetEventTypes())
	}
	if c := u.GetCreatedAt(); c != nil && !arrived.IsZero() && arrived.Before(c.AsTime()) {
		return ArrivedBeforeURL, fmt.Sprintf("the domain event arrived at %s, before the URL was added at %s",
			arrived.UTC().Format(time.RFC3339Nano), c.AsTime().UTC().Format(time.RFC3339Nano))
	}
	return "", ""
}
