package logstore

import (
	"context"
	"fmt"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// Summaries returns the current summaries of entries ids of hub, in one or
// two round trips (what a live view re-reads when a change notice names
// entries): got[i] is the entry ids[i], nil when it does not exist (trimmed,
// expired, or an id that is not valid).
func (s *Store) Summaries(ctx context.Context, hub string, ids []string) ([]*hubhooksv1.EventLog, error) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		if ValidID(id) {
			keys[i] = s.k.entry(hub, id)
		}
	}
	heads, err := s.heads(ctx, keys)
	if err != nil {
		return nil, err
	}
	got := make([]*hubhooksv1.EventLog, len(ids))
	for i, h := range heads {
		if h.sum == nil {
			continue
		}
		l := &hubhooksv1.EventLog{}
		if err := l.UnmarshalVT(h.sum); err != nil {
			return nil, fmt.Errorf("decode entry summary %s: %w", ids[i], err)
		}
		got[i] = l
	}
	return got, nil
}

// Matches reports whether entry l passes every filter of q (its page size
// and token aside): what List applies to each candidate.
func (q Query) Matches(l *hubhooksv1.EventLog) bool { return matches(l, q) }
