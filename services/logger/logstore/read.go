package logstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/timestamppb"

	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// Entry is one delivery with everything stored about it.
type Entry struct {
	// Log is the summary (the list view).
	Log *hubhooksv1.EventLog
	// Job is the delivery's job as of its latest run, body included
	// (attempt fields cleared).
	Job *deliveryv1.DeliveryJob
	// Attempts are in order (runs in order, then attempt numbers), numbered
	// from 1 across runs, each with the full request (secret masked) and
	// response. An attempt's request body is left empty when it is Job's
	// body, so a client receives the body once.
	Attempts []*hubhooksv1.Attempt
}

// RecordedAll reports, for several deliveries of hub (the targets of one
// fan-out) in one round trip, whether the log holds attempt number
// attempts[i] of delivery ids[i] (in its latest run), or a later one, or a
// final status (succeeded, failed, dead, cancelled): got[i] answers for
// ids[i]. The deliverer asks before it makes again attempts whose job
// JetStream delivered again, so that a job acked too late is not POSTed
// twice.
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
	heads, err := s.heads(ctx, keys)
	if err != nil {
		return nil, err
	}
	for i, h := range heads {
		if h.sum == nil {
			continue
		}
		l := &hubhooksv1.EventLog{}
		if err := l.UnmarshalVT(h.sum); err != nil {
			return nil, fmt.Errorf("decode entry summary: %w", err)
		}
		switch st, _ := hubhooksv1.ParseDeliveryStatus(l.GetStatus()); {
		case st.Final():
			got[i] = true
		default:
			// The summary's own count: attempts of its (the latest) run.
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
	fields, err := s.fields(ctx, s.k.entry(hub, id))
	if err != nil {
		return nil, fmt.Errorf("read entry %s: %w", id, err)
	}
	x := fields[fieldX]
	if fields == nil || len(x) != xLen || fields[fieldSum] == "" {
		return nil, ErrNotFound
	}
	e := &Entry{Log: &hubhooksv1.EventLog{}}
	if err := e.Log.UnmarshalVT([]byte(fields[fieldSum])); err != nil {
		return nil, fmt.Errorf("decode entry summary %s: %w", id, err)
	}
	if e.Log.GetHubId() != hub {
		return nil, ErrNotFound
	}
	runs := map[string]*deliveryv1.DeliveryJob{}
	var attempts []attemptKey
	for f, v := range fields {
		if run, ok := strings.CutPrefix(f, "m:"); ok {
			job := &deliveryv1.DeliveryJob{}
			if err := job.UnmarshalVT([]byte(v)); err != nil {
				return nil, fmt.Errorf("decode entry metadata %s of %s: %w", f, id, err)
			}
			runs[run] = job
		} else if k, ok := parseAttemptField(f); ok {
			attempts = append(attempts, k)
		}
	}
	if len(runs) == 0 {
		return nil, ErrNotFound
	}
	order := slices.Sorted(func(yield func(string) bool) {
		for r := range runs {
			if !yield(r) {
				return
			}
		}
	})
	e.Job = runs[order[len(order)-1]]
	sort.Slice(attempts, func(i, j int) bool {
		a, b := attempts[i], attempts[j]
		if a.run != b.run {
			return a.run < b.run
		}
		if a.number != b.number {
			return a.number < b.number
		}
		return a.rank < b.rank
	})
	made := madePerRun(attempts)
	offset := map[string]int32{}
	var total int32
	for _, r := range order {
		offset[r] = total
		total += made[r]
	}
	for _, k := range attempts {
		f := attemptField(orderKey(k.run, k.number, k.rank))
		a := &hubhooksv1.Attempt{}
		if err := a.UnmarshalVT([]byte(fields[f])); err != nil {
			return nil, fmt.Errorf("decode attempt %s of %s: %w", f, id, err)
		}
		a.Number = offset[k.run] + k.number
		if a.Request != nil {
			if a.Request.Body == "" {
				if job := runs[k.run]; job != nil {
					a.Request.Body = string(job.GetBody())
				}
			}
			if a.Request.Body == string(e.Job.GetBody()) {
				a.Request.Body = ""
			}
			MaskHeaders(a.Request.Headers)
		}
		e.Attempts = append(e.Attempts, a)
	}
	e.Log.Attempts = total
	created, _ := fromInverted(placeCreated(x))
	e.Log.CreatedAt = timestamppb.New(created)
	return e, nil
}

// madePerRun is the number of attempts made in each run: per run, the most
// any of its records says were made.
func madePerRun(attempts []attemptKey) map[string]int32 {
	made := map[string]int32{}
	for _, k := range attempts {
		made[k.run] = max(made[k.run], k.made())
	}
	return made
}

// fields reads every field of the entry at key, of either form; nil when
// there is no entry.
func (s *Store) fields(ctx context.Context, key string) (map[string]string, error) {
	v, err := s.rdb.Get(ctx, key).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, nil
	case redis.HasErrorPrefix(err, "WRONGTYPE"):
		// More than one record: a hash.
		h, err := s.rdb.HGetAll(ctx, key).Result()
		if err != nil || len(h) == 0 {
			return nil, err
		}
		return h, nil
	case err != nil:
		return nil, err
	}
	return entryFields(v)
}

// Response classes of Query.ResponseClass.
const (
	Response2xx  = "2xx"
	Response3xx  = "3xx"
	Response4xx  = "4xx"
	Response5xx  = "5xx"
	ResponseNone = "none"
)

// ValidResponseClass reports whether c is one of the response classes.
func ValidResponseClass(c string) bool {
	switch c {
	case Response2xx, Response3xx, Response4xx, Response5xx, ResponseNone:
		return true
	}
	return false
}

// responseClass is the class of a summary's response status code: "none"
// when no response arrived (or no attempt was made).
func responseClass(code int32) string {
	switch {
	case code >= 200 && code < 300:
		return Response2xx
	case code >= 300 && code < 400:
		return Response3xx
	case code >= 400 && code < 500:
		return Response4xx
	case code >= 500 && code < 600:
		return Response5xx
	}
	return ResponseNone
}

// Query selects entries of one hub. Empty strings, zero times and a nil
// Test are no filter; filters combine (all must hold).
type Query struct {
	HubID     string
	EventType string
	Status    string
	// URL matches entries whose URL has the same urlguard.Normalize form.
	URL string
	// EventID is a webhook event id; DomainEventID a domain event id (every
	// delivery the domain event caused).
	EventID       string
	DomainEventID string
	// ResponseClass is one of the Response* classes of the latest attempt.
	ResponseClass string
	// Test selects test entries (true) or the others (false).
	Test *bool
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

// index chooses the index List reads: the most selective one a filter
// names (webhook event id, domain event id, test entries, event type, URL),
// else every entry of the hub. misplaced reports whether an entry found in
// that index no longer belongs there (its URL changed).
func (s *Store) index(q Query) (key string, misplaced func(*hubhooksv1.EventLog) bool) {
	never := func(*hubhooksv1.EventLog) bool { return false }
	switch {
	case q.EventID != "":
		return s.k.index(q.HubID, kindEvent, q.EventID), never
	case q.DomainEventID != "":
		return s.k.index(q.HubID, kindDomain, q.DomainEventID), never
	case q.Test != nil && *q.Test:
		return s.k.tests(q.HubID), never
	case q.EventType != "":
		return s.k.index(q.HubID, kindType, q.EventType), never
	case q.URL != "":
		want := digest(urlIndexValue(q.URL))
		return s.k.index(q.HubID, kindURL, urlIndexValue(q.URL)), func(l *hubhooksv1.EventLog) bool {
			return digest(urlIndexValue(l.GetUrl())) != want
		}
	}
	return s.k.all(q.HubID), never
}

// List returns a page of the hub's entries matching q, newest first. It
// reads the most selective index that covers a filter, checks every filter
// on each candidate, and stops after Options.ScanLimit candidates. Entries
// written while a client pages do not disturb it: a token is a position in
// the order, which never changes for an entry, so no entry is listed twice
// or skipped (new ones appear on the first page, or where their time puts
// them if that is further on).
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
	key, misplaced := s.index(q)
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
	var stale, moved []string
	defer func() { s.cleanUp(ctx, q.HubID, key, stale, moved) }()
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
		heads, err := s.heads(ctx, keys)
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
			h := heads[i]
			if h.sum == nil || len(h.x) != xLen || placeCreated(h.x) != m[:16] {
				// The entry is gone, or this member names another time than
				// the entry's (a later run of it wrote it; it is removed).
				stale = append(stale, m)
				continue
			}
			l := &hubhooksv1.EventLog{}
			if err := l.UnmarshalVT(h.sum); err != nil {
				return nil, fmt.Errorf("list: decode entry %s: %w", memberID(m), err)
			}
			created, _ := fromInverted(m[:16])
			l.CreatedAt = timestamppb.New(created)
			if h.made >= 0 {
				l.Attempts = h.made
			}
			if misplaced(l) {
				moved = append(moved, m)
				continue
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

// cleanUp removes, best effort and with its own short deadline, the members
// a List found stale (from the index it read and the hub index) and those
// that moved out of the index it read.
func (s *Store) cleanUp(ctx context.Context, hub, key string, stale, moved []string) {
	if len(stale) == 0 && len(moved) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	pipe := s.rdb.Pipeline()
	if gone := append(stale, moved...); len(gone) > 0 {
		pipe.ZRem(cctx, key, toAny(gone)...)
	}
	if len(stale) > 0 && key != s.k.all(hub) {
		pipe.ZRem(cctx, s.k.all(hub), toAny(stale)...)
	}
	_, _ = pipe.Exec(cctx)
}

// heads reads the place and summary of the entries keys (an empty key is
// skipped) in one round trip, or two when some entry is a hash or has a
// summary beyond summaryReadAhead. A missing entry's head is empty.
func (s *Store) heads(ctx context.Context, keys []string) ([]head, error) {
	out := make([]head, len(keys))
	prefixes := make([]*redis.StringCmd, len(keys))
	pipe := s.rdb.Pipeline()
	for i, k := range keys {
		if k != "" {
			prefixes[i] = pipe.GetRange(ctx, k, 0, summaryReadAhead-1)
		}
	}
	if pipe.Len() == 0 {
		return out, nil
	}
	_, _ = pipe.Exec(ctx) // errors are read per command
	type more struct {
		i    int
		hash *redis.SliceCmd  // HMGET x s n of an entry hash
		full *redis.StringCmd // GET of a long entry string
	}
	var again []more
	pipe = s.rdb.Pipeline()
	for i, c := range prefixes {
		if c == nil {
			continue
		}
		v, err := c.Bytes()
		switch {
		case redis.HasErrorPrefix(err, "WRONGTYPE"):
			again = append(again, more{i: i, hash: pipe.HMGet(ctx, keys[i], fieldX, fieldSum, fieldMade)})
			continue
		case err != nil:
			return nil, fmt.Errorf("read entry summaries: %w", err)
		case len(v) == 0:
			continue // GETRANGE of a missing key
		}
		h, found, err := entryHead(v)
		if err != nil {
			return nil, fmt.Errorf("read entry summary %s: %w", keys[i], err)
		}
		if !found {
			again = append(again, more{i: i, full: pipe.Get(ctx, keys[i])})
			continue
		}
		out[i] = h
	}
	if len(again) == 0 {
		return out, nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read entry summaries: %w", err)
	}
	for _, m := range again {
		var err error
		if m.hash != nil {
			out[m.i], err = hashHead(m.hash.Val())
		} else {
			out[m.i], err = s.longHead(ctx, keys[m.i], m.full)
		}
		if err != nil {
			return nil, fmt.Errorf("read entry summary %s: %w", keys[m.i], err)
		}
	}
	return out, nil
}

// hashHead is the head of an entry hash from HMGET x s n.
func hashHead(vals []any) (head, error) {
	h := head{made: -1}
	if len(vals) != 3 {
		return h, fmt.Errorf("HMGET answered %d values", len(vals))
	}
	x, _ := vals[0].(string)
	sum, _ := vals[1].(string)
	if x == "" || sum == "" {
		return h, nil // gone, or not written whole yet
	}
	h.x, h.sum = x, []byte(sum)
	if n, ok := vals[2].(string); ok {
		var made int32
		if _, err := fmt.Sscan(n, &made); err != nil {
			return h, fmt.Errorf("field n %q: %w", n, err)
		}
		h.made = made
	}
	return h, nil
}

// longHead is the head of an entry string whose summary lies beyond
// summaryReadAhead, read whole by full (or as a hash, if it turned into one
// since).
func (s *Store) longHead(ctx context.Context, key string, full *redis.StringCmd) (head, error) {
	v, err := full.Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return head{made: -1}, nil // gone since
	case redis.HasErrorPrefix(err, "WRONGTYPE"):
		vals, err := s.rdb.HMGet(ctx, key, fieldX, fieldSum, fieldMade).Result()
		if err != nil {
			return head{made: -1}, err
		}
		return hashHead(vals)
	case err != nil:
		return head{made: -1}, err
	}
	h, found, err := entryHead(v)
	if err == nil && !found {
		err = errors.New("no summary")
	}
	return h, err
}

func matches(l *hubhooksv1.EventLog, q Query) bool {
	if l.GetHubId() != q.HubID ||
		(q.EventType != "" && l.GetEventType() != q.EventType) ||
		(q.Status != "" && l.GetStatus() != q.Status) ||
		(q.URL != "" && urlIndexValue(l.GetUrl()) != urlIndexValue(q.URL)) ||
		(q.EventID != "" && l.GetEventId() != q.EventID) ||
		(q.DomainEventID != "" && l.GetDomainEventId() != q.DomainEventID) ||
		(q.ResponseClass != "" && responseClass(l.GetResponseStatusCode()) != q.ResponseClass) ||
		(q.Test != nil && l.GetTest() != *q.Test) {
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
