package logstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// Defaults of Options.
const (
	DefaultRetention        = 7 * 24 * time.Hour
	DefaultMaxEntriesPerHub = 100000
	DefaultScanLimit        = 5000
)

// Options configure a Store. Zero values take the defaults.
type Options struct {
	// Prefix starts every key; the store appends "log:".
	Prefix string
	// Retention is how long entries are kept after their last write and
	// listed after their creation; default 7 days.
	Retention time.Duration
	// MaxEntriesPerHub trims a hub's oldest entries beyond it; default 100000.
	MaxEntriesPerHub int
	// ScanLimit bounds the index members one List call examines when
	// filters the chosen index does not cover (status, or a second filter)
	// reject candidates; default 5000.
	ScanLimit int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Store is the Redis event log. It is safe for concurrent use, and any
// number of Stores (logger replicas) may share one Redis.
type Store struct {
	rdb  *redis.Client
	k    keys
	opts Options
}

// New returns a Store on rdb.
func New(rdb *redis.Client, o Options) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("logstore: nil redis client")
	}
	if o.Retention < 0 || o.MaxEntriesPerHub < 0 || o.ScanLimit < 0 {
		return nil, errors.New("logstore: negative retention, max entries or scan limit")
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.Retention < time.Second {
		return nil, errors.New("logstore: retention below 1s")
	}
	if o.MaxEntriesPerHub == 0 {
		o.MaxEntriesPerHub = DefaultMaxEntriesPerHub
	}
	if o.ScanLimit == 0 {
		o.ScanLimit = DefaultScanLimit
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Store{rdb: rdb, k: keys{base: o.Prefix + "log:"}, opts: o}, nil
}

// A batch of records is written in one pipeline, per hub in this order:
//
//  1. each entry that does not exist yet is created whole by one
//     SET NX EX: a string holding its fields (entryString), summary
//     included, with its TTL;
//  2. each index gets its members (ZADD of score 0, idempotent), loses the
//     members older than the retention and has its TTL renewed, by plain
//     commands;
//  3. trimScript trims the hub to its maximum number of entries.
//
// Most entries only ever get one record (a first attempt that succeeded),
// and step 1 is all they cost. A record whose entry exists (a retry, a
// duplicate, a second record of the entry in the batch) is written by a
// second pipeline: toHashScript turns the entry into a hash of the same
// fields if it is still a string, then plain commands write the fields that
// are the same whatever order records arrive in (metadata, index digests
// "x", the attempt's field) and the TTL, and summaryScript replaces the
// summary when the record has the highest order key.
//
// Only what needs a condition or atomicity runs in a script: in Redis's Lua
// every argument and reply is copied twice and every call has its own cost,
// which made the script most of Redis's time per record when it did all of
// the above. The order keeps what readers see consistent: an entry has its
// summary before it is in an index (a list removes members of entries
// without one), and is trimmed only once indexed.

// toHashScript turns each entry stored as a string (entryString) into a hash
// of the same fields with the same TTL; hashes and missing entries are left
// as they are.
//
// KEYS: the entries. Returns the number of entries turned.
var toHashScript = redis.NewScript(`
local turned = 0
for _, entry in ipairs(KEYS) do
  local v = redis.pcall('GET', entry)
  if type(v) == 'string' and string.sub(v, 1, 2) == 'L1' then
    local args, p, n = {}, 3, #v
    while p <= n do
      local nl = string.byte(v, p)
      local b1, b2, b3, b4 = string.byte(v, p + nl + 1, p + nl + 4)
      local dl = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
      args[#args + 1] = string.sub(v, p + 1, p + nl)
      args[#args + 1] = string.sub(v, p + nl + 5, p + nl + 4 + dl)
      p = p + nl + 5 + dl
    end
    local ttl = redis.call('PTTL', entry)
    redis.call('DEL', entry)
    redis.call('HSET', entry, unpack(args))
    if ttl > 0 then
      redis.call('PEXPIRE', entry, ttl)
    end
    turned = turned + 1
  end
end
return turned
`)

// summaryScript writes each entry's summary unless the entry holds one of a
// record with a higher order key.
//
// KEYS: the entries. ARGV: per entry: order key, summary blob.
// Returns the number of summaries written.
var summaryScript = redis.NewScript(`
local changed = 0
for i, entry in ipairs(KEYS) do
  local ord = ARGV[2 * i - 1]
  local cur = redis.call('HGET', entry, 'k')
  if not cur or tonumber(ord) > tonumber(cur) then
    redis.call('HSET', entry, 'k', ord, 's', ARGV[2 * i])
    changed = changed + 1
  end
end
return changed
`)

// trimScript removes a hub's oldest entries beyond its maximum, with their
// members in every index. A trimmed entry's filter-index keys are named from
// its "x" field (bytes 8 to 55 of an entry string, see entryString) under
// the hub's key prefix (so they carry the same hash tag, in the slot of
// KEYS[1]). Members of entries without "x" (hashes written by older
// versions, or entries already expired) are returned for the caller to
// clean up.
// One call trims at most 1,000 entries, so lowering the cap does not block
// Redis on one huge trim: the next writes trim the rest (a batch adds far
// fewer than it trims). Two replicas never both trim for one excess entry:
// the members leave the hub index in this atomic call.
//
// KEYS: 1 hub index. ARGV: 1 max entries per hub.
// Returns {entries trimmed, trimmed members left to the caller...}.
var trimScript = redis.NewScript(`
local total = redis.call('ZCARD', KEYS[1])
local over = math.min(total - tonumber(ARGV[1]), 1000)
if over <= 0 then
  return {0}
end
local base = string.sub(KEYS[1], 1, -2)
local from = tostring(-over)
local oldest = redis.call('ZRANGE', KEYS[1], from, '-1')
redis.call('ZREMRANGEBYRANK', KEYS[1], from, '-1')
local members, idx, entries, out = {}, {}, {}, {0}
local function add(key, m)
  local l = members[key]
  if not l then
    l = {}
    members[key] = l
    idx[#idx + 1] = key
  end
  l[#l + 1] = m
end
for _, m in ipairs(oldest) do
  local entry = base .. 'e:' .. string.sub(m, 17)
  local x = redis.pcall('GETRANGE', entry, 8, 55)
  if type(x) == 'table' then
    x = redis.call('HGET', entry, 'x')
  end
  if x and #x == 48 then
    add(base .. 't:' .. string.sub(x, 1, 16), m)
    add(base .. 'u:' .. string.sub(x, 17, 32), m)
    add(base .. 'v:' .. string.sub(x, 33, 48), m)
    entries[#entries + 1] = entry
  else
    out[#out + 1] = m
  end
end
for _, key in ipairs(idx) do
  redis.call('ZREM', key, unpack(members[key]))
end
if #entries > 0 then
  redis.call('UNLINK', unpack(entries))
end
out[1] = #entries
return out
`)

// WriteResult says what a Write did.
type WriteResult struct {
	// Changed counts records that changed an entry's summary.
	Changed int
	// Trimmed counts entries removed to respect MaxEntriesPerHub.
	Trimmed int
}

// Write stores a batch of records in one pipelined round trip with one
// script call per hub, plus one round trip for the records whose entry
// already exists (two script calls per hub) and two more when the trim meets
// entries written without index digests.
// Every record must pass ValidateRecord. When Write returns nil every record
// is durable in Redis; on error some may be, and the whole batch may be
// written again safely. Write masks the secret header of each record's
// request in place and briefly changes (then restores) fields of recs while
// encoding them, so recs must not be used concurrently with Write.
func (s *Store) Write(ctx context.Context, recs []*deliveryv1.AttemptRecorded) (WriteResult, error) {
	var res WriteResult
	if len(recs) == 0 {
		return res, nil
	}
	now := s.opts.Now()
	cutoff := "(" + inverted(now.Add(-s.opts.Retention)) + "\xff"
	ttl := any(int64(s.opts.Retention / time.Second))
	// hubWrite is what one hub's records write; hubs are written in the
	// order they first appear.
	type indexWrite struct {
		key     string
		members []any // ZADD's score-member pairs
	}
	type entryWrite struct {
		key           string
		whole         []byte // entryString: the entry when it does not exist yet
		x, afield     string // what else an existing entry needs (afield "" when pending)
		meta, attempt []byte
		ord           int64
		sum           []byte
	}
	type hubWrite struct {
		hub, prefix string
		entries     []entryWrite
		indexes     []indexWrite      // in first-use order
		index       map[[2]string]int // kind and digest -> position in indexes
	}
	var hubs []*hubWrite
	byHub := map[string]*hubWrite{}
	// A batch repeats its event types and URLs, and each webhook event
	// once per URL: each distinct value is hashed once.
	digests := digestCache{}
	for _, rec := range recs {
		if err := ValidateRecord(rec); err != nil {
			return res, err
		}
		job := rec.GetJob()
		hub, id := job.GetHubId(), job.GetDeliveryId()
		meta, err := marshalMetadata(rec)
		if err != nil {
			return res, fmt.Errorf("encode entry metadata: %w", err)
		}
		sum, err := summarize(rec, now).MarshalVT()
		if err != nil {
			return res, fmt.Errorf("encode entry summary: %w", err)
		}
		ablob, err := marshalAttempt(rec)
		if err != nil {
			return res, fmt.Errorf("encode attempt: %w", err)
		}
		h := byHub[hub]
		if h == nil {
			h = &hubWrite{hub: hub, prefix: s.k.hub(hub), index: map[[2]string]int{}}
			byHub[hub] = h
			hubs = append(hubs, h)
		}
		dt, du, de := digests.of(job.GetEventType()), digests.of(job.GetUrl()), digests.of(job.GetWebhookEventId())
		x := dt + du + de
		var afield string
		if rec.GetStatus() != hubhooksv1.StatusPending {
			afield = attemptField(rec)
		}
		ord := orderKey(rec)
		h.entries = append(h.entries, entryWrite{
			key:     entryKey(h.prefix, id),
			whole:   entryString(x, ord, sum, meta, afield, ablob),
			x:       x,
			afield:  afield,
			meta:    meta,
			attempt: ablob,
			ord:     ord,
			sum:     sum,
		})
		m := any(member(createdAt(rec), id))
		for _, key := range [...][2]string{{"i", ""}, {"t:", dt}, {"u:", du}, {"v:", de}} {
			i, ok := h.index[key]
			if !ok {
				i = len(h.indexes)
				h.index[key] = i
				h.indexes = append(h.indexes, indexWrite{key: indexKey(h.prefix, key[0], key[1])})
			}
			h.indexes[i].members = append(h.indexes[i].members, 0, m)
		}
	}

	// exec runs one pipeline, loading the scripts when Redis lost them.
	exec := func(build func(redis.Pipeliner)) error {
		pipe := s.rdb.Pipeline()
		build(pipe)
		_, err := pipe.Exec(ctx)
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			for _, sc := range []*redis.Script{toHashScript, summaryScript, trimScript} {
				if err := sc.Load(ctx, s.rdb).Err(); err != nil {
					return fmt.Errorf("load log script: %w", err)
				}
			}
			pipe = s.rdb.Pipeline()
			build(pipe)
			_, err = pipe.Exec(ctx)
		}
		return err
	}

	created := make([][]*redis.BoolCmd, len(hubs))
	trims := make([]*redis.Cmd, len(hubs))
	err := exec(func(pipe redis.Pipeliner) {
		for i, h := range hubs {
			created[i] = make([]*redis.BoolCmd, len(h.entries))
			for j, e := range h.entries {
				created[i][j] = pipe.SetNX(ctx, e.key, e.whole, s.opts.Retention)
			}
			for _, ix := range h.indexes {
				pipe.Do(ctx, append([]any{"zadd", ix.key}, ix.members...)...)
				pipe.ZRemRangeByLex(ctx, ix.key, cutoff, "+")
				pipe.Do(ctx, "expire", ix.key, ttl)
			}
			trims[i] = trimScript.EvalSha(ctx, pipe, []string{s.k.all(h.hub)}, s.opts.MaxEntriesPerHub)
		}
	})
	if err != nil {
		return res, fmt.Errorf("write %d records: %w", len(recs), err)
	}

	// Records whose entry exists: their fields into its hash, their summary
	// if it ranks highest.
	existing := make([][]entryWrite, len(hubs))
	slow := 0
	for i, h := range hubs {
		for j, e := range h.entries {
			if created[i][j].Val() {
				res.Changed++
				continue
			}
			existing[i] = append(existing[i], e)
			slow++
		}
	}
	if slow > 0 {
		changed := make([]*redis.Cmd, len(hubs))
		err := exec(func(pipe redis.Pipeliner) {
			for i, es := range existing {
				if len(es) == 0 {
					continue
				}
				keys := make([]string, len(es))
				sums := make([]any, 0, 2*len(es)) // ARGV of summaryScript
				for j, e := range es {
					keys[j] = e.key
					sums = append(sums, e.ord, e.sum)
				}
				toHashScript.EvalSha(ctx, pipe, keys)
				for _, e := range es {
					f := []any{"m", e.meta, "x", e.x}
					if e.afield != "" {
						f = append(f, e.afield, e.attempt)
					}
					pipe.HSet(ctx, e.key, f...)
					pipe.Do(ctx, "expire", e.key, ttl)
				}
				changed[i] = summaryScript.EvalSha(ctx, pipe, keys, sums...)
			}
		})
		if err != nil {
			return res, fmt.Errorf("write %d records to existing entries: %w", slow, err)
		}
		for _, c := range changed {
			if c == nil {
				continue
			}
			n, err := c.Int()
			if err != nil {
				return res, fmt.Errorf("write summaries: %w", err)
			}
			res.Changed += n
		}
	}

	type popped struct{ hub, id string }
	var trim []popped
	for i, t := range trims {
		vals, err := t.Slice()
		if err != nil {
			return res, fmt.Errorf("trim: %w", err)
		}
		if len(vals) < 1 {
			return res, fmt.Errorf("trim: unexpected script reply %v", vals)
		}
		if c, ok := vals[0].(int64); ok {
			res.Trimmed += int(c)
		}
		for _, v := range vals[1:] {
			if m, ok := v.(string); ok && validMember(m) {
				trim = append(trim, popped{hub: hubs[i].hub, id: memberID(m)})
			}
		}
	}
	if len(trim) == 0 {
		return res, nil
	}

	// Members of entries without index digests (written before they were
	// stored, or expired) left the hub index atomically in the script (so
	// two replicas never both trim for one excess entry); now delete the
	// entries and their filter-index members. A crash here leaves only keys
	// that expire and members that lists skip and remove.
	pipe := s.rdb.Pipeline()
	gets := make([]*redis.StringCmd, len(trim))
	for i, p := range trim {
		gets[i] = pipe.HGet(ctx, s.k.entry(p.hub, p.id), "s")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return res, fmt.Errorf("read trimmed entries: %w", err)
	}
	pipe = s.rdb.Pipeline()
	for i, p := range trim {
		pipe.Unlink(ctx, s.k.entry(p.hub, p.id))
		b, err := gets[i].Bytes()
		if err != nil {
			continue
		}
		l := &hubhooksv1.EventLog{}
		if proto.Unmarshal(b, l) != nil {
			continue
		}
		m := member(l.GetCreatedAt().AsTime(), p.id)
		pipe.ZRem(ctx, s.k.byType(p.hub, l.GetEventType()), m)
		pipe.ZRem(ctx, s.k.byURL(p.hub, l.GetUrl()), m)
		pipe.ZRem(ctx, s.k.byEvent(p.hub, l.GetEventId()), m)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return res, fmt.Errorf("delete trimmed entries: %w", err)
	}
	res.Trimmed += len(trim)
	return res, nil
}
