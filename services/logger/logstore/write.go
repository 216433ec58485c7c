package logstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hubhooks/hubhooks/pkg/daemon"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
)

// WriteResult says what a Write did.
type WriteResult struct {
	// Changed counts records that changed an entry's summary.
	Changed int
	// Trimmed counts entries removed to keep hubs within MaxEntriesPerHub
	// and MaxBytesPerHub.
	Trimmed int
	// Expired counts entries removed because they were created more than
	// Retention ago.
	Expired int
}

// Write stores a batch of records. Every record must pass ValidateRecord.
// When Write returns nil every record is durable in Redis (and, with
// WaitReplicas, on that many replicas); on error some may be, and the whole
// batch may be written again safely. Write does not change
// recs.
//
// A batch is written in two pipelined round trips:
//
//  1. create: each entry that does not exist yet is created whole by one
//     SET NX EX of its entry string (entry.go), summary and TTL included;
//     each index gets its members (ZADD of score 0, idempotent) and its TTL
//     renewed. Most entries only ever get one record (a first attempt that
//     succeeded): they are written.
//  2. settle, per hub: boundScript adds the bytes of the entries step 1
//     created to the hub's count and keeps the hub within its retention,
//     entry and byte bounds; and a record whose entry existed
//     (a retry, a duplicate, a second record of the entry in the batch, a
//     later run) goes through toHashScript (the entry becomes a hash if it
//     is still a string), plain HSETs of its run's job (if new) and of its
//     attempt, and updateScript (summary, attempts made, bytes, TTL).
//
// A crash between the two leaves a batch's bytes uncounted (the byte bound
// is then that much more lenient until the hub's entries are gone). The
// order keeps what readers see consistent: an entry has its summary before
// it is in an index (a list removes members of entries without one), and is
// trimmed only once indexed.
func (s *Store) Write(ctx context.Context, recs []*deliveryv1.AttemptRecorded) (WriteResult, error) {
	var res WriteResult
	if len(recs) == 0 {
		return res, nil
	}
	now := s.opts.Now()
	hubs, err := s.plan(recs, now)
	if err != nil {
		return res, err
	}
	if err := s.create(ctx, hubs, now); err != nil {
		return res, fmt.Errorf("write %d records: %w", len(recs), err)
	}
	if err := s.settle(ctx, hubs, now, &res); err != nil {
		return res, fmt.Errorf("write %d records: %w", len(recs), err)
	}
	if s.opts.WaitReplicas > 0 {
		markers := make([]string, len(hubs))
		for i, h := range hubs {
			markers[i] = s.k.marker(h.hub)
		}
		if err := daemon.AwaitReplicated(ctx, s.rdb, markers, s.opts.WaitReplicas, s.opts.WaitTimeout); err != nil {
			return res, fmt.Errorf("write %d records: %w", len(recs), err)
		}
	}
	return res, nil
}

// entryWrite is what one record writes to its entry.
type entryWrite struct {
	id, key string
	// whole is the entry string: the entry when it does not exist yet.
	whole []byte
	// member is the record's index member; x its "x" field.
	member, x string
	// order and sum are the record's order key and summary.
	order string
	sum   []byte
	// metaField and meta hold the record's run; attemptField and attempt
	// its attempt (attemptField "" for a pending record).
	metaField, attemptField string
	meta, attempt           []byte
}

// indexWrite is the members one batch adds to one index.
type indexWrite struct {
	key     string
	members []any // ZADD's score-member pairs
	// trim: the write also removes the index's members older than the
	// retention. The filter indexes of long-lived values (an event type, a
	// URL, the tests) need it. An index of one webhook or domain event
	// does not: its members are that event's deliveries, made together,
	// and it expires with them; a member whose entry is gone is skipped
	// by readers anyway. The hub index loses its old members in
	// boundScript, with their entries.
	trim bool
}

// hubWrite is what one hub's records write.
type hubWrite struct {
	hub     string
	entries []entryWrite
	indexes []indexWrite   // in first-use order
	index   map[string]int // index key -> position in indexes
	// created says, after create, which entries it created.
	created []*redis.BoolCmd
}

func (h *hubWrite) addMember(key string, m any, trim bool) {
	i, ok := h.index[key]
	if !ok {
		i = len(h.indexes)
		h.index[key] = i
		h.indexes = append(h.indexes, indexWrite{key: key, trim: trim})
	}
	h.indexes[i].members = append(h.indexes[i].members, 0, m)
}

// plan validates and encodes recs, grouped by hub in the order hubs first
// appear.
func (s *Store) plan(recs []*deliveryv1.AttemptRecorded, now time.Time) ([]*hubWrite, error) {
	var hubs []*hubWrite
	byHub := map[string]*hubWrite{}
	// A batch repeats its event types and URLs, and each webhook and domain
	// event once per URL: each distinct value is hashed once.
	digests := newDigestCache()
	for _, rec := range recs {
		if err := ValidateRecord(rec); err != nil {
			return nil, err
		}
		job := rec.GetJob()
		h := byHub[job.GetHubId()]
		if h == nil {
			h = &hubWrite{hub: job.GetHubId(), index: map[string]int{}}
			byHub[h.hub] = h
			hubs = append(hubs, h)
		}
		e, err := s.encode(rec, now, digests)
		if err != nil {
			return nil, err
		}
		h.entries = append(h.entries, e)
		prefix := s.k.hub(h.hub)
		d := placeDigests(e.x)
		m := any(e.member) // boxed once for all its indexes
		h.addMember(s.k.all(h.hub), m, false)
		h.addMember(indexKey(prefix, kindType, d[0]), m, true)
		h.addMember(indexKey(prefix, kindURL, d[1]), m, true)
		h.addMember(indexKey(prefix, kindEvent, d[2]), m, false)
		h.addMember(indexKey(prefix, kindDomain, d[3]), m, false)
		if job.GetTest() {
			h.addMember(s.k.tests(h.hub), m, true)
		}
	}
	return hubs, nil
}

// encode builds what rec writes.
func (s *Store) encode(rec *deliveryv1.AttemptRecorded, now time.Time, digests digestCache) (entryWrite, error) {
	job := rec.GetJob()
	created := createdAt(rec)
	e := entryWrite{
		id:     job.GetDeliveryId(),
		key:    s.k.entry(job.GetHubId(), job.GetDeliveryId()),
		member: member(created, job.GetDeliveryId()),
		x: entryPlace(inverted(created), digests.of(job.GetEventType()), digests.ofURL(job.GetUrl()),
			digests.of(job.GetWebhookEventId()), digests.of(job.GetDomainEventId()), job.GetTest()),
		order:     recordOrder(rec),
		metaField: metaField(runKey(created)),
	}
	var attempt sizedVT
	if a := storedAttempt(rec); a != nil {
		e.attemptField = attemptField(e.order)
		attempt = a
	}
	var err error
	e.whole, e.sum, e.meta, e.attempt, err = encodeEntry(e.x, e.order, summarize(rec, now), e.metaField, metadata(rec), e.attemptField, attempt)
	return e, err
}

// create runs step 1 of Write.
func (s *Store) create(ctx context.Context, hubs []*hubWrite, now time.Time) error {
	expired := s.olderThanRetention(now)
	return s.exec(ctx, func(pipe redis.Pipeliner) {
		for _, h := range hubs {
			h.created = make([]*redis.BoolCmd, len(h.entries))
			for j, e := range h.entries {
				h.created[j] = pipe.SetNX(ctx, e.key, e.whole, s.keyTTL())
			}
			for _, ix := range h.indexes {
				pipe.Do(ctx, append([]any{"zadd", ix.key}, ix.members...)...)
				if ix.trim {
					pipe.ZRemRangeByLex(ctx, ix.key, expired, "+")
				}
				pipe.Do(ctx, "expire", ix.key, s.ttl())
			}
		}
	})
}

// settle runs step 2 of Write. Its scripts go by digest, then by text if
// Redis lacks one (daemon.ScriptMode; their text is a few KB per hub and
// batch). Everything in the step may run twice: a hub whose boundScript
// did run is not counted again.
func (s *Store) settle(ctx context.Context, hubs []*hubWrite, now time.Time, res *WriteResult) error {
	counted := make([]bool, len(hubs))
	missing, err := s.settleOnce(ctx, hubs, now, counted, daemon.ScriptByDigest, res)
	if missing {
		_, err = s.settleOnce(ctx, hubs, now, counted, daemon.ScriptByText, res)
	}
	return err
}

// settleOnce runs step 2 once, by digest or by text. counted says which
// hubs' bytes are counted already and is updated. missing reports that
// Redis lacked a script (only by digest).
func (s *Store) settleOnce(ctx context.Context, hubs []*hubWrite, now time.Time, counted []bool, mode daemon.ScriptMode, res *WriteResult) (missing bool, err error) {
	expired := s.olderThanRetention(now)
	bounds := make([]*redis.Cmd, len(hubs))
	updates := make([]*redis.Cmd, len(hubs))
	var scripts []*redis.Cmd
	err = s.exec(ctx, func(pipe redis.Pipeliner) {
		run := func(sc *redis.Script, keys []string, args ...any) *redis.Cmd {
			c := daemon.QueueScript(ctx, pipe, sc, mode, keys, args...)
			scripts = append(scripts, c)
			return c
		}
		for i, h := range hubs {
			var added int64
			var existing []entryWrite
			ids := make([]any, 0, len(h.entries))
			seen := make(map[string]bool, len(h.entries))
			for j, e := range h.entries {
				if !seen[e.id] {
					seen[e.id] = true
					ids = append(ids, e.id)
				}
				if h.created[j].Val() {
					added += int64(len(e.whole))
				} else {
					existing = append(existing, e)
				}
			}
			if counted[i] {
				added = 0
			}
			args := append([]any{s.opts.MaxEntriesPerHub, s.opts.MaxBytesPerHub, expired, maxRemovals, added}, ids...)
			bytes := s.k.bytes(h.hub)
			keys := []string{s.k.all(h.hub), bytes, s.k.gone(h.hub)}
			bounds[i] = run(boundScript, keys, args...)
			pipe.Do(ctx, "expire", bytes, s.ttl())
			if len(existing) > 0 {
				updates[i] = s.update(ctx, pipe, keys, existing, run)
			}
		}
	})
	for _, c := range scripts {
		missing = missing || daemon.IsNoScript(c.Err())
	}
	for i, h := range hubs {
		if bounds[i].Err() != nil {
			continue
		}
		counted[i] = true
		vals, err := bounds[i].Int64Slice()
		if len(vals) != 2 {
			return false, fmt.Errorf("bound hub %s: reply %v: %w", h.hub, vals, err)
		}
		res.Expired += int(vals[0])
		res.Trimmed += int(vals[1])
	}
	if mode == daemon.ScriptByDigest && missing {
		// Another script may have failed only for want of this one
		// (toHashScript's entry then a string, for the plain writes).
		return true, nil
	}
	if err != nil {
		return false, err
	}
	for i, h := range hubs {
		for _, c := range h.created {
			if c.Val() {
				res.Changed++
			}
		}
		if updates[i] != nil {
			n, err := updates[i].Int()
			if err != nil {
				return false, fmt.Errorf("update entries of hub %s: %w", h.hub, err)
			}
			res.Changed += n
		}
	}
	return false, nil
}

// scriptRun queues a script in settle's pipeline, by digest or by text.
type scriptRun func(sc *redis.Script, keys []string, args ...any) *redis.Cmd

// update queues the writes of records whose entry exists; keys are the
// hub's keys of updateScript.
func (s *Store) update(ctx context.Context, pipe redis.Pipeliner, keys []string, entries []entryWrite, run scriptRun) *redis.Cmd {
	keys = append(keys[:3:3], make([]string, 0, len(entries))...)
	args := make([]any, 0, 1+4*len(entries))
	args = append(args, s.ttl())
	for _, e := range entries {
		keys = append(keys, e.key)
		args = append(args, e.id, e.order, e.sum, e.x)
	}
	run(toHashScript, append([]string{keys[0]}, keys[3:]...))
	for _, e := range entries {
		pipe.HSetNX(ctx, e.key, e.metaField, e.meta)
		if e.attemptField != "" {
			pipe.HSet(ctx, e.key, e.attemptField, e.attempt)
		}
	}
	return run(updateScript, keys, args...)
}
