package deliverer

import (
	"context"

	"github.com/hubhooks/hubhooks/pkg/configcache"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// ConfigSource is where the deliverer reads hub configs: pkg/configcache's
// Cache in production. Implementations are safe for concurrent use;
// returned configs are shared and must not be modified.
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

var _ ConfigSource = (*configcache.Cache)(nil)

// AttemptLog is what the deliverer asks the event log (the logger's store,
// logstore.Store in production): whether attempts were recorded already.
// It asks about the jobs of a message JetStream delivers again (a deliverer
// died, or an ack was lost) or that the expander marked for a recheck, and
// about a parked attempt coming back from the retry store, so that an
// attempt already made is not POSTed twice. When the log cannot answer (an
// error), the jobs are attempted again: a duplicate keeps its webhook-id.
// Implementations are safe for concurrent use.
type AttemptLog interface {
	// RecordedAll reports, in one round trip, for deliveries of hubID,
	// whether the log holds attempt number attempts[i] of deliveryIDs[i], a
	// later one, or a final status: got[i] answers for deliveryIDs[i].
	RecordedAll(ctx context.Context, hubID string, deliveryIDs []string, attempts []int32) (got []bool, err error)
}
