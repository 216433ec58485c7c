package deliverer

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hubhooks/hubhooks/pkg/batch"
	"github.com/hubhooks/hubhooks/pkg/daemon"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
)

// retryStore keeps pending retries in Redis:
//
//	<prefix>{retry}:due          ZSET  member "<hub>/<delivery_id>", score = due time (unix ms)
//	<prefix>{retry}:hub:<hub>    HASH  field delivery_id -> "<hex url_id>:<DeliveryJob protobuf>"
//	<prefix>{retry}:cancel:due   ZSET  cancelled retries waiting for their "cancelled" record
//	<prefix>{retry}:cancel:jobs  HASH  member -> value, as above
//
// A value holds the next job (attempt already incremented). Storing the same
// delivery again replaces its entry, so repeating a store is harmless,
// unless the entry is of a later attempt of the same run: that one is kept
// (storeScript). The
// scripts move entries between a hub's hash and the sorted sets of every
// hub, so on a Redis Cluster every key shares the hash tag {retry} and one
// slot (docs/scaling.md says when that shard becomes the limit).
//
// An entry stands for a JetStream message acknowledged once it is stored,
// so with waitReplicas > 0 a store succeeds only once that many Redis
// replicas have it (daemon.WriteReplicated): a failover cannot then lose a
// retry whose message is gone.
//
// Stores are batched (sendStores): the stores pending at the same time go
// out as one MULTI/EXEC and one WAIT, so a URL that fails every attempt
// costs Redis and the deliverer a round trip per batch, not per attempt.
type retryStore struct {
	rdb          redis.UniversalClient
	prefix       string
	due          string
	cancelDue    string
	cancelJobs   string
	waitReplicas int
	waitTimeout  time.Duration
	stores       *batch.Batcher[*storeReq]
}

// Limits of one batch of stores, and how many batches are written at once.
// Flushers write without lingering: the stores that arrive while a batch is
// being written make the next batch, so batches grow with the failure rate
// and a lone store is not delayed. An entry holds its job's body, hence the
// bytes.
const (
	storeBatchMax      = 128
	storeBatchMaxBytes = 1 << 20
	storeFlushers      = 2
)

// storeReq is one store handed to the batcher.
type storeReq struct {
	ctx   context.Context
	job   *deliveryv1.DeliveryJob
	value string
	due   int64 // unix ms
	err   error // set by sendStores when the store was not sent (its context ended)
}

func newRetryStore(rdb redis.UniversalClient, prefix string, waitReplicas int, waitTimeout time.Duration) *retryStore {
	p := prefix + "{retry}:"
	r := &retryStore{rdb: rdb, prefix: p, due: p + "due", cancelDue: p + "cancel:due", cancelJobs: p + "cancel:jobs",
		waitReplicas: waitReplicas, waitTimeout: waitTimeout}
	lim := batch.Limits{MaxWeight: storeBatchMax, MaxBytes: storeBatchMaxBytes, Flushers: storeFlushers}
	r.stores = batch.New(lim, r.sendStores)
	return r
}

func (r *retryStore) hubKey(hub string) string { return r.prefix + "hub:" + hub }

func member(hub, deliveryID string) string { return hub + "/" + deliveryID }

func splitMember(m string) (hub, deliveryID string, ok bool) {
	return strings.Cut(m, "/")
}

func encodeEntry(job *deliveryv1.DeliveryJob) (string, error) {
	b, err := job.MarshalVT()
	if err != nil {
		return "", fmt.Errorf("encode retry job: %w", err)
	}
	return hex.EncodeToString([]byte(job.GetUrlId())) + ":" + string(b), nil
}

func decodeEntry(v string) (*deliveryv1.DeliveryJob, error) {
	_, raw, ok := strings.Cut(v, ":")
	if !ok {
		return nil, errors.New("decode retry job: no url id separator")
	}
	job := &deliveryv1.DeliveryJob{}
	if err := job.UnmarshalVT([]byte(raw)); err != nil {
		return nil, fmt.Errorf("decode retry job: %w", err)
	}
	return job, nil
}

// store saves next (the job of the next attempt) due at due.
func (r *retryStore) store(ctx context.Context, next *deliveryv1.DeliveryJob, due time.Time) error {
	_, err := r.storeEntry(ctx, next, due)
	return err
}

// storeEntry is store, returning the stored value (for removeEntry), also
// with an error wrapping daemon.ErrNotReplicated. An entry of a later
// attempt of the same run is kept (storeScript): the store then succeeds
// without writing, and the value returned is not in the store. It returns
// once the batch that carried the store is written (sendStores), with that
// batch's error.
func (r *retryStore) storeEntry(ctx context.Context, next *deliveryv1.DeliveryJob, due time.Time) (string, error) {
	v, err := encodeEntry(next)
	if err != nil {
		return "", err
	}
	req := &storeReq{ctx: ctx, job: next, value: v, due: due.UnixMilli()}
	// One key: every entry lives in the {retry} slot, on one primary.
	err = r.stores.Add(r.due, req, 1, len(v))
	if err == nil {
		err = req.err
	}
	if err != nil {
		// v is returned with ErrNotReplicated: it is on the primary.
		return v, fmt.Errorf("store retry %s: %w", next.GetDeliveryId(), err)
	}
	return v, nil
}

// sendStores writes a batch of stores as one daemon.WriteReplicated: one
// MULTI/EXEC running storeScript for each, then, with waitReplicas, one
// WAIT. Every store of the batch gets its outcome: the entries are written
// (and replicated) together or the batch fails as a whole. A store whose
// context ended while it was pending is left out, with its context's
// error. The batch runs until the latest deadline of its stores: each
// caller waits for its batch anyway, and an early deadline must not fail
// the stores that came later.
func (r *retryStore) sendStores(_ string, reqs []*storeReq) error {
	live := make([]*storeReq, 0, len(reqs))
	var deadline time.Time
	bounded := true
	for _, q := range reqs {
		if err := q.ctx.Err(); err != nil {
			q.err = err
			continue
		}
		live = append(live, q)
		d, ok := q.ctx.Deadline()
		bounded = bounded && ok
		if d.After(deadline) {
			deadline = d
		}
	}
	if len(live) == 0 {
		return nil
	}
	ctx := context.WithoutCancel(live[0].ctx)
	if bounded {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	write := func(mode daemon.ScriptMode) func(redis.Pipeliner) error {
		return func(p redis.Pipeliner) error {
			for _, q := range live {
				hub, id := q.job.GetHubId(), q.job.GetDeliveryId()
				keys := []string{r.due, r.hubKey(hub)}
				daemon.QueueScript(ctx, p, storeScript, mode, keys, id, q.value, q.due, member(hub, id))
			}
			return nil
		}
	}
	// By digest, then by text if Redis lacks the script (daemon.ScriptMode:
	// the digest spares over a third of a store's Redis CPU,
	// docs/performance.md). The whole batch is then written again: a store
	// repeated is harmless.
	err := daemon.WriteReplicated(ctx, r.rdb, r.due, r.waitReplicas, r.waitTimeout, write(daemon.ScriptByDigest))
	if daemon.IsNoScript(err) {
		err = daemon.WriteReplicated(ctx, r.rdb, r.due, r.waitReplicas, r.waitTimeout, write(daemon.ScriptByText))
	}
	return err
}

// removeEntry deletes the entry of hub's delivery if it still holds v (a
// later store replaced it otherwise, and it is left alone).
func (r *retryStore) removeEntry(ctx context.Context, hub, deliveryID, v string) (bool, error) {
	return r.remove(ctx, false, claimed{member: member(hub, deliveryID), hub: hub, field: deliveryID, value: v})
}

// storeScript stores the entry ARGV[2] of delivery ARGV[1] (field of hash
// KEYS[2]) due at ARGV[3] (member ARGV[4] of ZSET KEYS[1]), unless the hash
// holds an entry further along in the same run (the job's created_at): of a
// later attempt, or of the same attempt parked more often (deferrals); it
// returns 1 if it stored. Such an entry means the delivery moved on: it was
// stored when an attempt after this one ended, or when a later copy of this
// attempt was parked again, so an older copy made or parked again late (its
// message came back after an outage, before the event log held it) must not
// replace it: the older entry's job has a Nats-Msg-Id JetStream has seen
// already, so the scheduler's republish of it is dropped as a duplicate, and
// the delivery would be lost. An entry of another run (the event expanded
// again) is replaced. The script reads the DeliveryJob after the URL id:
// created_at is field 8, attempt field 11 and deferrals field 16 (varints).
var storeScript = redis.NewScript(`
local function job(v)
  local i = string.find(v, ':', 1, true)
  if not i then return 0, 0, '' end
  i = i + 1
  local n, attempt, deferrals, created = #v, 0, 0, ''
  local function varint()
    local x, m = 0, 1
    while i <= n do
      local b = string.byte(v, i)
      i = i + 1
      x = x + (b % 128) * m
      if b < 128 then return x end
      m = m * 128
    end
    return nil
  end
  while i <= n do
    local tag = varint()
    if not tag then return 0, 0, '' end
    local field, wt = math.floor(tag / 8), tag % 8
    if wt == 0 then
      local x = varint()
      if not x then return 0, 0, '' end
      if field == 11 then attempt = x end
      if field == 16 then deferrals = x end
    elseif wt == 2 then
      local l = varint()
      if not l then return 0, 0, '' end
      if field == 8 then created = string.sub(v, i, i + l - 1) end
      i = i + l
    elseif wt == 1 then
      i = i + 8
    elseif wt == 5 then
      i = i + 4
    else
      return 0, 0, ''
    end
  end
  return attempt, deferrals, created
end
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if cur then
  local ca, cd, cc = job(cur)
  local na, nd, nc = job(ARGV[2])
  if cc == nc and (ca > na or (ca == na and cd > nd)) then return 0 end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
return 1
`)

// claimScript hides up to ARGV[3] members due by ARGV[1] until ARGV[2] (the
// lease) and returns them. Only one caller gets each member per lease.
var claimScript = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(ids) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], m)
end
return ids
`)

// removeScript removes member ARGV[1] (field ARGV[2] of hash KEYS[2]) from
// ZSET KEYS[1] only if the hash still holds ARGV[3] (or, when ARGV[3] is
// empty, holds nothing): an entry replaced meanwhile (the next attempt's
// retry) is left alone.
var removeScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[2], ARGV[2])
if ARGV[3] == '' then
  if cur then return 0 end
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
if cur ~= ARGV[3] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
`)

// cancelScript moves a hub's retries whose URL id (hex) is not among
// ARGV[3..] to the cancel outbox, due at ARGV[2], and returns how many moved.
var cancelScript = redis.NewScript(`
local keep = {}
for i = 3, #ARGV do keep[ARGV[i]] = true end
local all = redis.call('HGETALL', KEYS[2])
local n = 0
for i = 1, #all, 2 do
  local f, v = all[i], all[i + 1]
  local sep = string.find(v, ':', 1, true)
  local uid = ''
  if sep then uid = string.sub(v, 1, sep - 1) end
  if not keep[uid] then
    local m = ARGV[1] .. '/' .. f
    redis.call('HDEL', KEYS[2], f)
    redis.call('ZREM', KEYS[1], m)
    redis.call('HSET', KEYS[4], m, v)
    redis.call('ZADD', KEYS[3], ARGV[2], m)
    n = n + 1
  end
end
return n
`)

// claimed is one due entry with its stored value ("" when it vanished).
type claimed struct {
	member string
	hub    string
	field  string
	value  string
}

// claim leases due entries of the retry queue (cancel=false) or of the
// cancel outbox (cancel=true).
func (r *retryStore) claim(ctx context.Context, cancel bool, now time.Time, lease time.Duration, limit int) ([]claimed, error) {
	zset := r.due
	if cancel {
		zset = r.cancelDue
	}
	res, err := claimScript.Run(ctx, r.rdb, []string{zset},
		now.UnixMilli(), now.Add(lease).UnixMilli(), limit).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("claim due retries: %w", err)
	}
	if len(res) == 0 {
		return nil, nil
	}
	out := make([]claimed, 0, len(res))
	cmds := make([]*redis.StringCmd, 0, len(res))
	_, err = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range res {
			hub, did, _ := splitMember(m)
			c := claimed{member: m, hub: hub, field: did}
			if cancel {
				c.field = m
				cmds = append(cmds, p.HGet(ctx, r.cancelJobs, m))
			} else {
				cmds = append(cmds, p.HGet(ctx, r.hubKey(hub), did))
			}
			out = append(out, c)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read claimed retries: %w", err)
	}
	for i, cmd := range cmds {
		v, err := cmd.Result()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return nil, fmt.Errorf("read claimed retry: %w", err)
		default:
			out[i].value = v
		}
	}
	return out, nil
}

// remove deletes a claimed entry if it still holds the claimed value.
func (r *retryStore) remove(ctx context.Context, cancel bool, c claimed) (bool, error) {
	keys := []string{r.due, r.hubKey(c.hub)}
	if cancel {
		keys = []string{r.cancelDue, r.cancelJobs}
	}
	n, err := removeScript.Run(ctx, r.rdb, keys, c.member, c.field, c.value).Int()
	if err != nil {
		return false, fmt.Errorf("remove retry %s: %w", c.member, err)
	}
	return n == 1, nil
}

// removeAll removes claimed entries of due retries (not cancellations) that
// still hold their claimed value, in one pipeline, and returns how many it
// removed. By digest, then by text if Redis lacks the script
// (daemon.ScriptMode): removing an entry twice is harmless.
func (r *retryStore) removeAll(ctx context.Context, cs []claimed) (int, error) {
	if len(cs) == 0 {
		return 0, nil
	}
	run := func(mode daemon.ScriptMode) ([]*redis.Cmd, error) {
		cmds := make([]*redis.Cmd, len(cs))
		_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, c := range cs {
				cmds[i] = daemon.QueueScript(ctx, p, removeScript, mode, []string{r.due, r.hubKey(c.hub)}, c.member, c.field, c.value)
			}
			return nil
		})
		return cmds, err
	}
	cmds, err := run(daemon.ScriptByDigest)
	if daemon.IsNoScript(err) {
		cmds, err = run(daemon.ScriptByText)
	}
	removed := 0
	for _, c := range cmds {
		if n, _ := c.Int(); n == 1 {
			removed++
		}
	}
	if err != nil {
		return removed, fmt.Errorf("remove %d republished retries: %w", len(cs), err)
	}
	return removed, nil
}

// cancelExcept moves the hub's retries for URLs not in keepURLIDs to the
// cancel outbox. It returns how many moved.
func (r *retryStore) cancelExcept(ctx context.Context, hub string, keepURLIDs []string, now time.Time) (int, error) {
	args := make([]any, 0, 2+len(keepURLIDs))
	args = append(args, hub, now.UnixMilli())
	for _, id := range keepURLIDs {
		args = append(args, hex.EncodeToString([]byte(id)))
	}
	n, err := cancelScript.Run(ctx, r.rdb, []string{r.due, r.hubKey(hub), r.cancelDue, r.cancelJobs}, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("cancel retries of hub %s: %w", hub, err)
	}
	return n, nil
}

// cancelEntriesScript moves the named retries of a hub to the cancel
// outbox, each only if it still holds the value read (a retry stored since
// is judged again later), and returns how many moved.
//
//	KEYS: 1 retry:due, 2 retry:hub:<hub>, 3 cancel:due, 4 cancel:jobs
//	ARGV: 1 hub, 2 due time (ms), then field, value pairs
var cancelEntriesScript = redis.NewScript(`
local n = 0
for i = 3, #ARGV, 2 do
  local f, v = ARGV[i], ARGV[i + 1]
  if redis.call('HGET', KEYS[2], f) == v then
    local m = ARGV[1] .. '/' .. f
    redis.call('HDEL', KEYS[2], f)
    redis.call('ZREM', KEYS[1], m)
    redis.call('HSET', KEYS[4], m, v)
    redis.call('ZADD', KEYS[3], ARGV[2], m)
    n = n + 1
  end
end
return n
`)

// cancelWhere moves the hub's retries whose job drop reports true to the
// cancel outbox and returns how many moved. It reads every retry of the
// hub, so it is for the rare change a URL-id script cannot judge (a type
// taken away from a URL's filter).
func (r *retryStore) cancelWhere(ctx context.Context, hub string, drop func(*deliveryv1.DeliveryJob) bool, now time.Time) (int, error) {
	all, err := r.rdb.HGetAll(ctx, r.hubKey(hub)).Result()
	if err != nil {
		return 0, fmt.Errorf("read retries of hub %s: %w", hub, err)
	}
	args := []any{hub, now.UnixMilli()}
	for f, v := range all {
		job, err := decodeEntry(v)
		if err != nil || !drop(job) {
			continue // an undecodable entry is dropped when claimed
		}
		args = append(args, f, v)
	}
	if len(args) == 2 {
		return 0, nil
	}
	n, err := cancelEntriesScript.Run(ctx, r.rdb, []string{r.due, r.hubKey(hub), r.cancelDue, r.cancelJobs}, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("cancel retries of hub %s: %w", hub, err)
	}
	return n, nil
}

// pending counts stored retries (for tests and diagnostics).
func (r *retryStore) pending(ctx context.Context) (int64, error) {
	return r.rdb.ZCard(ctx, r.due).Result()
}
