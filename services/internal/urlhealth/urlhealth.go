// Package urlhealth keeps in Redis since when each callback URL has failed
// every attempt made to it: the deliverer notes each attempt's outcome
// (Tracker), and OperationsService disables the URLs that have been
// failing for longer than the auto-disable period (Store.Failing).
//
//	<prefix>urlfail   HASH  "<hub>/<url id>" -> first failure of the current run (unix ms)
//
// A success deletes the URL's field; a failure sets it only when absent.
package urlhealth

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store is the failure record in Redis. It is safe for concurrent use.
type Store struct {
	rdb redis.UniversalClient
	key string
}

// New returns a Store under prefix + "urlfail".
func New(rdb redis.UniversalClient, prefix string) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("urlhealth: nil redis client")
	}
	return &Store{rdb: rdb, key: prefix + "urlfail"}, nil
}

func field(hub, urlID string) string { return hub + "/" + urlID }

// Failed notes a failed attempt at at: the URL's run of failures starts
// then unless it started before.
func (s *Store) Failed(ctx context.Context, hub, urlID string, at time.Time) error {
	if err := s.rdb.HSetNX(ctx, s.key, field(hub, urlID), at.UnixMilli()).Err(); err != nil {
		return fmt.Errorf("note failure of %s/%s: %w", hub, urlID, err)
	}
	return nil
}

// Succeeded notes a successful attempt: the URL is not failing.
func (s *Store) Succeeded(ctx context.Context, hub, urlID string) error {
	if err := s.rdb.HDel(ctx, s.key, field(hub, urlID)).Err(); err != nil {
		return fmt.Errorf("note success of %s/%s: %w", hub, urlID, err)
	}
	return nil
}

// Run is a URL failing every attempt since Since.
type Run struct {
	Hub, URLID string
	Since      time.Time
}

// Failing lists every URL failing now.
func (s *Store) Failing(ctx context.Context) ([]Run, error) {
	all, err := s.rdb.HGetAll(ctx, s.key).Result()
	if err != nil {
		return nil, fmt.Errorf("read failing URLs: %w", err)
	}
	out := make([]Run, 0, len(all))
	for f, v := range all {
		hub, url, ok := strings.Cut(f, "/")
		ms, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil {
			continue
		}
		out = append(out, Run{Hub: hub, URLID: url, Since: time.UnixMilli(ms)})
	}
	return out, nil
}

// Forget deletes a URL's run (it was disabled, or is gone).
func (s *Store) Forget(ctx context.Context, hub, urlID string) error {
	return s.Succeeded(ctx, hub, urlID)
}

// Tracker notes attempt outcomes for one deliverer replica, writing at most
// once per URL and outcome every interval: a failing URL costs one write
// every interval, not one per attempt. A run's start may so be noted up to
// interval late, and a success up to interval late: a URL is disabled
// later rather than sooner. It is safe for concurrent use.
type Tracker struct {
	store    *Store
	interval time.Duration
	mu       sync.Mutex
	last     map[noted]time.Time // last write of each URL's outcome
}

// noted is one outcome of one URL.
type noted struct {
	hub, urlID string
	ok         bool
}

// NewTracker returns a Tracker writing to store.
func NewTracker(store *Store, interval time.Duration) *Tracker {
	return &Tracker{store: store, interval: interval, last: map[noted]time.Time{}}
}

// Note records an attempt's outcome at now, unless the same outcome of the
// URL was written less than the interval ago; a write is bounded by
// timeout. Most calls write nothing, and cost no context or key string.
func (t *Tracker) Note(hub, urlID string, ok bool, now time.Time, timeout time.Duration) error {
	k := noted{hub: hub, urlID: urlID, ok: ok}
	t.mu.Lock()
	if now.Sub(t.last[k]) < t.interval {
		t.mu.Unlock()
		return nil
	}
	t.last[k] = now
	if len(t.last) > 100000 {
		for key, at := range t.last {
			if now.Sub(at) >= t.interval {
				delete(t.last, key)
			}
		}
	}
	t.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if ok {
		return t.store.Succeeded(ctx, hub, urlID)
	}
	return t.store.Failed(ctx, hub, urlID, now)
}
