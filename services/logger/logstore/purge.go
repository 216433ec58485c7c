package logstore

import (
	"context"
	"fmt"
	"time"
)

// Purge removes the hub's entries created before before (all of them when
// before is zero) and returns how many it removed. It is idempotent. An
// entry whose delivery is still under way is created again by its next
// attempt's record, with that attempt only: Purge empties the log of what
// happened, not of what is still to come. Other hubs are not touched.
func (s *Store) Purge(ctx context.Context, hub string, before time.Time) (int, error) {
	from := "-"
	if !before.IsZero() {
		from = olderThan(before)
	}
	return s.purge(ctx, hub, from, "")
}

// DeleteHub removes every entry of the hub and marks the hub deleted at
// at: from then on, records of deliveries created before at are dropped
// (those under way when the hub was deleted, whenever they arrive), for as
// long as the retention. It is idempotent; a later deletion moves the mark.
// Deliveries created after at are logged as usual (the hub id was used
// again).
func (s *Store) DeleteHub(ctx context.Context, hub string, at time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("delete hub %s: no deletion time", hub)
	}
	_, err := s.purge(ctx, hub, "-", inverted(at))
	return err
}

// purge runs purgeScript until it finds nothing more to remove; mark is the
// deletion time to set first ("" for none).
func (s *Store) purge(ctx context.Context, hub, from, mark string) (int, error) {
	keys := []string{s.k.all(hub), s.k.bytes(hub), s.k.gone(hub)}
	total := 0
	for {
		n, err := purgeScript.Run(ctx, s.rdb, keys, from, maxRemovals, mark, s.ttl()).Int()
		if err != nil {
			return total, fmt.Errorf("purge hub %s: %w", hub, err)
		}
		total += n
		if n < maxRemovals {
			return total, nil
		}
	}
}
