package deliverer

import (
	"context"
	"time"

	"github.com/hubhooks/hubhooks/pkg/configcache"
	"github.com/hubhooks/hubhooks/pkg/routing"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// ConfigSource is the part of pkg/configcache's Cache the deliverer uses.
// Implementations are safe for concurrent use; returned configs are shared
// and must not be modified.
type ConfigSource interface {
	// Get returns the cached config of hubID, if any.
	Get(hubID string) (*hubhooksv1.HubConfig, bool)
	// Fetch returns the config of hubID with version >= minVersion, asking
	// configsvc when the cache is older.
	Fetch(ctx context.Context, hubID string, minVersion int64) (*hubhooksv1.HubConfig, error)
	// OnChange registers fn, called serially for every applied change (old
	// is nil for a hub first seen, new is nil for a hub deleted).
	OnChange(fn func(old, new *hubhooksv1.HubConfig))
	// Ready reports whether the initial snapshot has arrived.
	Ready() bool
	// WaitReady blocks until the initial snapshot has arrived or ctx ends.
	WaitReady(ctx context.Context) error
}

// cancelReason says why cfg no longer allows job, or "" when it does. Test
// jobs ignore the triggers toggle, as SendTestEvent does.
func cancelReason(cfg *hubhooksv1.HubConfig, job *deliveryv1.DeliveryJob) string {
	if cfg == nil {
		return "hub configuration deleted"
	}
	if !cfg.GetEventsEnabled() && !job.GetTest() {
		return "event triggers disabled"
	}
	if on, arrived := cfg.GetEventsEnabledAt(), job.GetEventArrivedAt(); on != nil && arrived != nil &&
		!job.GetTest() && job.GetRedeliveryOf() == "" && arrived.AsTime().Before(on.AsTime()) {
		// Expanded under a config that had not yet seen the triggers go off
		// (the caches lag by milliseconds): they were off at some point after
		// the event arrived, which cancels it like any pending delivery.
		return "event triggers were switched off after the event arrived"
	}
	for _, u := range cfg.GetCallbackUrls() {
		if (job.GetUrlId() != "" && u.GetId() == job.GetUrlId()) || (job.GetUrlId() == "" && u.GetUrl() == job.GetUrl()) {
			if job.GetTest() {
				return "" // a test reaches a disabled or filtering URL too
			}
			_, detail := routing.URLReason(u, job.GetEventType(), time.Time{})
			return detail
		}
	}
	return "callback URL removed"
}

// keptURLIDs are the URL ids whose retries cfg still allows (the enabled
// URLs). A URL that takes fewer types keeps its id: the retries of the
// types it no longer takes are cancelled when they fall due (cancelReason).
func keptURLIDs(cfg *hubhooksv1.HubConfig) []string {
	if cfg == nil || !cfg.GetEventsEnabled() {
		return nil
	}
	ids := make([]string, 0, len(cfg.GetCallbackUrls()))
	for _, u := range cfg.GetCallbackUrls() {
		if !u.GetDisabled() {
			ids = append(ids, u.GetId())
		}
	}
	return ids
}

// needsCancel reports whether a config change disallows some retries.
func needsCancel(old, cur *hubhooksv1.HubConfig) bool {
	if old == nil {
		return false
	}
	if cur == nil || (old.GetEventsEnabled() && !cur.GetEventsEnabled()) {
		return true
	}
	if !cur.GetEventsEnabled() {
		return false
	}
	have := map[string]bool{}
	for _, u := range cur.GetCallbackUrls() {
		have[u.GetId()] = !u.GetDisabled()
	}
	for _, u := range old.GetCallbackUrls() {
		if !u.GetDisabled() && !have[u.GetId()] {
			return true // removed or disabled
		}
	}
	return false
}

var _ ConfigSource = (*configcache.Cache)(nil)
