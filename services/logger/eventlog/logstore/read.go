package logstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// Entry is one delivery with everything stored about it.
type Entry struct {
	// Log is the summary (the list view).
	Log *hubhooksv1.EventLog
	// Attempts are in attempt order, each with the full request (body
	// included, secret masked) and response.
	Attempts []*hubhooksv1.Attempt
	// Job is the delivery's metadata and body (attempt fields cleared).
	Job *deliveryv1.DeliveryJob
}

// RecordedAll reports, for several deliveries of hub (the targets of one
// fan-out) in one round trip, whether the log holds attempt number
// attempts[i] of delivery ids[i], or a later one, or a final status
// (succeeded, failed, dead, cancelled): got[i] answers for ids[i]. The
// deliverer asks before it makes again attempts whose job JetStream delivered
// again, so that a job acked too late is not POSTed twice.
func (s *Store) RecordedAll(ctx context.Context, hub string, ids []string, attempts []int32) ([]bool, error) {
	if len(ids) != len(attempts) {
		return nil, fmt.Errorf("recorded: %d ids for %d attempt numbers", len(ids), len(attempts))
	}
	got := make([]bool, len(ids))
	cmds := make([]*redis.StringCmd, len(ids))
	pipe := s.rdb.Pipeline()
	for i, id := range ids {
		if ValidID(id) {
			cmds[i] = pipe.HGet(ctx, s.k.entry(hub, id), "s")
		}
	}
	if pipe.Len() == 0 {
		return got, nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read entry summaries: %w", err)
	}
	for i, cmd := range cmds {
		if cmd == nil {
			continue
		}
		b, err := cmd.Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read entry summary: %w", err)
		}
		l := &hubhooksv1.EventLog{}
		if err := l.UnmarshalVT(b); err != nil {
			return nil, fmt.Errorf("decode entry summary: %w", err)
		}
		switch l.GetStatus() {
		case StatusSucceeded, StatusFailed, StatusDead, StatusCancelled:
			got[i] = true
		default:
			got[i] = l.GetAttempts() >= attempts[i]
		}
	}
	return got, nil
}

// Get returns the entry id of hub, or ErrNotFound. An id of another hub is
// not found: keys are per hub.
func (s *Store) Get(ctx context.Context, hub, id string) (*Entry, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	h, err := s.rdb.HGetAll(ctx, s.k.entry(hub, id)).Result()
	if err != nil {
		return nil, fmt.Errorf("read entry: %w", err)
	}
	if h["s"] == "" || h["m"] == "" {
		return nil, ErrNotFound
	}
	e := &Entry{Log: &hubhooksv1.EventLog{}, Job: &deliveryv1.DeliveryJob{}}
	if err := proto.Unmarshal([]byte(h["s"]), e.Log); err != nil {
		return nil, fmt.Errorf("decode entry summary %s: %w", id, err)
	}
	if err := proto.Unmarshal([]byte(h["m"]), e.Job); err != nil {
		return nil, fmt.Errorf("decode entry metadata %s: %w", id, err)
	}
	if e.Log.GetHubId() != hub {
		return nil, ErrNotFound
	}
	fields := make([]string, 0, len(h))
	for f := range h {
		if strings.HasPrefix(f, "a:") {
			fields = append(fields, f)
		}
	}
	sort.Strings(fields)
	for _, f := range fields {
		a := &hubhooksv1.Attempt{}
		if err := proto.Unmarshal([]byte(h[f]), a); err != nil {
			return nil, fmt.Errorf("decode attempt %s of %s: %w", f, id, err)
		}
		if a.Request != nil {
			if a.Request.Body == "" {
				a.Request.Body = string(e.Job.GetBody())
			}
			MaskHeaders(a.Request.Headers)
		}
		e.Attempts = append(e.Attempts, a)
	}
	return e, nil
}

// Query selects entries of one hub. Empty strings and zero times are no
// filter.
type Query struct {
	HubID     string
	EventType string
	Status    string
	URL       string
	EventID   string
	// Since and Until bound created_at, both inclusive.
	Since, Until time.Time
	// PageSize is the most entries returned (must be > 0).
	PageSize int
	// PageToken continues a previous List.
	PageToken string
}

// Page is one page of entries, newest first.
type Page struct {
	Logs []*hubhooksv1.EventLog
	// NextPageToken continues the list; empty at the end. A page may hold
	// fewer than PageSize entries (even none) and still have a token when
	// the scan limit was reached before the page filled.
	NextPageToken string
}

// List returns a page of the hub's entries matching q, newest first. It
// reads the most selective index that covers a filter (event id, then
// event type, then URL, else all of the hub's entries), checks every filter
// on each candidate, and stops after Options.ScanLimit candidates.
func (s *Store) List(ctx context.Context, q Query) (*Page, error) {
	if q.PageSize <= 0 {
		return nil, errors.New("list: page size must be positive")
	}
	var cursor string
	if q.PageToken != "" {
		m, err := decodeToken(q.PageToken)
		if err != nil {
			return nil, err
		}
		cursor = m
	}
	key := s.k.all(q.HubID)
	switch {
	case q.EventID != "":
		key = s.k.byEvent(q.HubID, q.EventID)
	case q.EventType != "":
		key = s.k.byType(q.HubID, q.EventType)
	case q.URL != "":
		key = s.k.byURL(q.HubID, q.URL)
	}
	// Newest first = ascending members. Until (newest allowed) gives the
	// lower bound, since (oldest allowed) the upper bound. Bounds are at
	// microsecond precision, widened; exact checks happen per entry.
	minLex, maxLex := "-", "+"
	if !q.Until.IsZero() {
		bound := inverted(q.Until.Add(time.Microsecond - 1).Truncate(time.Microsecond))
		minLex = "[" + bound
		if cursor > bound {
			minLex = "(" + cursor
		}
	} else if cursor != "" {
		minLex = "(" + cursor
	}
	if !q.Since.IsZero() {
		maxLex = "[" + inverted(q.Since.Truncate(time.Microsecond)) + "\xff"
	}

	page := &Page{}
	scanned, last := 0, ""
	var stale []string
	defer func() {
		if len(stale) > 0 {
			// Lazy cleanup; best effort, with its own short deadline.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			pipe := s.rdb.Pipeline()
			pipe.ZRem(cctx, key, toAny(stale)...)
			if key != s.k.all(q.HubID) {
				pipe.ZRem(cctx, s.k.all(q.HubID), toAny(stale)...)
			}
			_, _ = pipe.Exec(cctx)
		}
	}()
	for {
		want := min(max(q.PageSize+1, 64), s.opts.ScanLimit-scanned)
		members, err := s.rdb.ZRangeByLex(ctx, key, &redis.ZRangeBy{Min: minLex, Max: maxLex, Count: int64(want)}).Result()
		if err != nil {
			return nil, fmt.Errorf("list: read index: %w", err)
		}
		if len(members) == 0 {
			return page, nil
		}
		pipe := s.rdb.Pipeline()
		gets := make([]*redis.StringCmd, len(members))
		for i, m := range members {
			gets[i] = pipe.HGet(ctx, s.k.entry(q.HubID, memberID(m)), "s")
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("list: read entries: %w", err)
		}
		for i, m := range members {
			if len(page.Logs) == q.PageSize {
				// Full, and at least one more candidate exists.
				page.NextPageToken = encodeToken(last)
				return page, nil
			}
			scanned++
			last = m
			b, err := gets[i].Bytes()
			if errors.Is(err, redis.Nil) {
				stale = append(stale, m)
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("list: read entry: %w", err)
			}
			l := &hubhooksv1.EventLog{}
			if err := proto.Unmarshal(b, l); err != nil {
				return nil, fmt.Errorf("list: decode entry %s: %w", memberID(m), err)
			}
			if matches(l, q) {
				page.Logs = append(page.Logs, l)
			}
		}
		if len(members) < want {
			return page, nil // index exhausted
		}
		if scanned >= s.opts.ScanLimit {
			page.NextPageToken = encodeToken(last)
			return page, nil
		}
		minLex = "(" + members[len(members)-1]
	}
}

func matches(l *hubhooksv1.EventLog, q Query) bool {
	if l.GetHubId() != q.HubID ||
		(q.EventType != "" && l.GetEventType() != q.EventType) ||
		(q.Status != "" && l.GetStatus() != q.Status) ||
		(q.URL != "" && l.GetUrl() != q.URL) ||
		(q.EventID != "" && l.GetEventId() != q.EventID) {
		return false
	}
	c := l.GetCreatedAt().AsTime()
	if !q.Since.IsZero() && c.Before(q.Since) {
		return false
	}
	if !q.Until.IsZero() && c.After(q.Until) {
		return false
	}
	return true
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
