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
	keys := make([]string, len(ids))
	for i, id := range ids {
		if ValidID(id) {
			keys[i] = s.k.entry(hub, id)
		}
	}
	sums, err := s.summaries(ctx, keys)
	if err != nil {
		return nil, err
	}
	for i, b := range sums {
		if b == nil {
			continue
		}
		l := &hubhooksv1.EventLog{}
		if err := l.UnmarshalVT(b); err != nil {
			return nil, fmt.Errorf("decode entry summary: %w", err)
		}
		if st, _ := hubhooksv1.ParseDeliveryStatus(l.GetStatus()); st.Final() {
			got[i] = true
		} else {
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
	key := s.k.entry(hub, id)
	var h map[string]string
	v, err := s.rdb.Get(ctx, key).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, ErrNotFound
	case redis.HasErrorPrefix(err, "WRONGTYPE"):
		// More than one record: a hash.
		if h, err = s.rdb.HGetAll(ctx, key).Result(); err != nil {
			return nil, fmt.Errorf("read entry: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("read entry: %w", err)
	default:
		if h, err = entryFields(v); err != nil {
			return nil, fmt.Errorf("decode entry %s: %w", id, err)
		}
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
		keys := make([]string, len(members))
		for i, m := range members {
			keys[i] = s.k.entry(q.HubID, memberID(m))
		}
		sums, err := s.summaries(ctx, keys)
		if err != nil {
			return nil, fmt.Errorf("list: %w", err)
		}
		for i, m := range members {
			if len(page.Logs) == q.PageSize {
				// Full, and at least one more candidate exists.
				page.NextPageToken = encodeToken(last)
				return page, nil
			}
			scanned++
			last = m
			b := sums[i]
			if b == nil {
				stale = append(stale, m)
				continue
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

// summaries reads the summaries of the entries keys (an empty key is
// skipped) in one round trip, or two when some entry is a hash or has a
// summary longer than summaryReadAhead. A missing entry's summary is nil.
func (s *Store) summaries(ctx context.Context, keys []string) ([][]byte, error) {
	out := make([][]byte, len(keys))
	heads := make([]*redis.StringCmd, len(keys))
	pipe := s.rdb.Pipeline()
	for i, k := range keys {
		if k != "" {
			heads[i] = pipe.GetRange(ctx, k, 0, summaryReadAhead-1)
		}
	}
	if pipe.Len() == 0 {
		return out, nil
	}
	_, _ = pipe.Exec(ctx) // errors are read per command
	type more struct {
		i    int
		hash *redis.StringCmd // HGET s of an entry hash
		full *redis.StringCmd // GET of a long entry string
	}
	var again []more
	pipe = s.rdb.Pipeline()
	for i, c := range heads {
		if c == nil {
			continue
		}
		v, err := c.Bytes()
		switch {
		case redis.HasErrorPrefix(err, "WRONGTYPE"):
			again = append(again, more{i: i, hash: pipe.HGet(ctx, keys[i], "s")})
			continue
		case err != nil:
			return nil, fmt.Errorf("read entry summaries: %w", err)
		case len(v) == 0:
			continue // GETRANGE of a missing key
		}
		sum, found, err := entrySummary(v)
		if err != nil {
			return nil, fmt.Errorf("read entry summary %s: %w", keys[i], err)
		}
		if !found {
			again = append(again, more{i: i, full: pipe.Get(ctx, keys[i])})
			continue
		}
		out[i] = sum
	}
	if len(again) == 0 {
		return out, nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read entry summaries: %w", err)
	}
	for _, m := range again {
		if m.hash != nil {
			b, err := m.hash.Bytes()
			if err != nil && !errors.Is(err, redis.Nil) {
				return nil, fmt.Errorf("read entry summary: %w", err)
			}
			out[m.i] = b
			continue
		}
		v, err := m.full.Bytes()
		if errors.Is(err, redis.Nil) {
			continue // gone since
		}
		if redis.HasErrorPrefix(err, "WRONGTYPE") {
			// Turned into a hash since (a second record): read it there.
			b, err := s.rdb.HGet(ctx, keys[m.i], "s").Bytes()
			if err != nil && !errors.Is(err, redis.Nil) {
				return nil, fmt.Errorf("read entry summary: %w", err)
			}
			out[m.i] = b
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read entry summary: %w", err)
		}
		sum, found, err := entrySummary(v)
		if err != nil || !found {
			return nil, fmt.Errorf("read entry summary %s: no summary (%v)", keys[m.i], err)
		}
		out[m.i] = sum
	}
	return out, nil
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
