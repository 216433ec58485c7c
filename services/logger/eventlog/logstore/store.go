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

// writeScript applies a batch of records of one hub to their entries and
// the hub's indexes atomically (every key carries the hub's hash tag), and
// trims the hub to its maximum number of entries.
//
// KEYS: 1 hub index, then per record: entry, type index, url index, event
// index.
// ARGV: 1 TTL seconds, 2 max entries per hub, 3 lexicographic lower bound of
// expired index members, then per record: index member, order key, metadata
// blob, attempt field ("" for none), attempt blob, summary blob, index
// digests (the entry's "x": the type, url and event digests of its filter
// index keys, 3 x 16 hex digits).
// Returns {records that changed a summary, entries trimmed, trimmed members
// left to the caller...}.
//
// The script costs a few Redis calls per record: a new entry is one HSET,
// and every index gets one ZADD per batch. Trimming happens here too: a
// trimmed entry's filter-index keys are named from its "x" field under the
// hub's key prefix (so they carry the same hash tag, in the slot of KEYS[1]).
// Members of entries without "x" (written by older versions, or already
// expired) are returned for the caller to clean up. One call trims at most
// 1,000 entries, so lowering the cap does not block Redis on one huge trim:
// the next writes trim the rest (a batch adds far fewer than it trims).
var writeScript = redis.NewScript(`
local ttl, max, cutoff = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local trimMax = 1000
local n = (#KEYS - 1) / 4
local changed = 0
local members, idx = {}, {}
local function add(key, m)
  local l = members[key]
  if not l then
    l = {}
    members[key] = l
    idx[#idx + 1] = key
  end
  l[#l + 1] = m
end
for r = 0, n - 1 do
  local k, a = 1 + r * 4, 3 + r * 7
  local entry, m, ord = KEYS[k + 1], ARGV[a + 1], ARGV[a + 2]
  local field, sum = ARGV[a + 4], ARGV[a + 6]
  local cur = redis.call('HGET', entry, 'k')
  if not cur then
    if field ~= '' then
      redis.call('HSET', entry, 'm', ARGV[a + 3], 'k', ord, 's', sum, 'x', ARGV[a + 7], field, ARGV[a + 5])
    else
      redis.call('HSET', entry, 'm', ARGV[a + 3], 'k', ord, 's', sum, 'x', ARGV[a + 7])
    end
    changed = changed + 1
  else
    if field ~= '' then
      redis.call('HSET', entry, field, ARGV[a + 5])
    end
    if tonumber(ord) > tonumber(cur) then
      redis.call('HSET', entry, 'k', ord, 's', sum)
      changed = changed + 1
    end
  end
  redis.call('EXPIRE', entry, ttl)
  add(KEYS[1], m)
  for i = k + 2, k + 4 do
    add(KEYS[i], m)
  end
end
for _, key in ipairs(idx) do
  local l = members[key]
  for from = 1, #l, 512 do
    local args = {}
    for j = from, math.min(from + 511, #l) do
      args[#args + 1] = 0
      args[#args + 1] = l[j]
    end
    redis.call('ZADD', key, unpack(args))
  end
  redis.call('ZREMRANGEBYLEX', key, cutoff, '+')
  redis.call('EXPIRE', key, ttl)
end
local out = {changed, 0}
local total = redis.call('ZCARD', KEYS[1])
if total > max then
  local base = string.sub(KEYS[1], 1, -2)
  local popped = redis.call('ZPOPMAX', KEYS[1], math.min(total - max, trimMax))
  members, idx = {}, {}
  local entries = {}
  for i = 1, #popped, 2 do
    local m = popped[i]
    local entry = base .. 'e:' .. string.sub(m, 17)
    local x = redis.call('HGET', entry, 'x')
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
  out[2] = #entries
end
return out
`)

// WriteResult says what a Write did.
type WriteResult struct {
	// Changed counts records that changed an entry's summary.
	Changed int
	// Trimmed counts entries removed to respect MaxEntriesPerHub.
	Trimmed int
}

// Write stores a batch of records in one pipelined round trip, one script
// call per hub (two more round trips when hubs exceed MaxEntriesPerHub).
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
	ttl := int64(s.opts.Retention / time.Second)
	cutoff := "(" + inverted(now.Add(-s.opts.Retention)) + "\xff"
	type call struct {
		hub, prefix string // prefix: keys.hub(hub)
		keys        []string
		args        []any
	}
	var calls []*call
	byHub := map[string]*call{}
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
		field := ""
		if rec.GetStatus() != StatusPending {
			field = attemptField(rec)
		}
		c := byHub[hub]
		if c == nil {
			c = &call{hub: hub, prefix: s.k.hub(hub), keys: []string{s.k.all(hub)}, args: []any{ttl, s.opts.MaxEntriesPerHub, cutoff}}
			byHub[hub] = c
			calls = append(calls, c)
		}
		dt, du, de := digests.of(job.GetEventType()), digests.of(job.GetUrl()), digests.of(job.GetWebhookEventId())
		c.keys = append(c.keys, entryKey(c.prefix, id), indexKey(c.prefix, "t:", dt), indexKey(c.prefix, "u:", du), indexKey(c.prefix, "v:", de))
		c.args = append(c.args, member(createdAt(rec), id), orderKey(rec), meta, field, ablob, sum, dt+du+de)
	}

	run := func() ([]*redis.Cmd, error) {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(calls))
		for i, c := range calls {
			cmds[i] = writeScript.EvalSha(ctx, pipe, c.keys, c.args...)
		}
		_, err := pipe.Exec(ctx)
		return cmds, err
	}
	cmds, err := run()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		if err := writeScript.Load(ctx, s.rdb).Err(); err != nil {
			return res, fmt.Errorf("load write script: %w", err)
		}
		cmds, err = run()
	}
	if err != nil {
		return res, fmt.Errorf("write %d records: %w", len(recs), err)
	}

	type popped struct{ hub, id string }
	var trim []popped
	for i, cmd := range cmds {
		vals, err := cmd.Slice()
		if err != nil {
			return res, fmt.Errorf("write record: %w", err)
		}
		if len(vals) < 2 {
			return res, fmt.Errorf("write record: unexpected script reply %v", vals)
		}
		if c, ok := vals[0].(int64); ok {
			res.Changed += int(c)
		}
		if c, ok := vals[1].(int64); ok {
			res.Trimmed += int(c)
		}
		for _, v := range vals[2:] {
			if m, ok := v.(string); ok && validMember(m) {
				trim = append(trim, popped{hub: calls[i].hub, id: memberID(m)})
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
