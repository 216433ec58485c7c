package logstore

import "github.com/redis/go-redis/v9"

// The Lua side of the store. Only what needs a condition or atomicity runs
// in a script: in Redis's Lua every argument and reply is copied twice and
// every call has its own cost, so plain pipelined commands write what does
// not depend on order (docs/performance.md has the figures). Every script
// works on the keys of one hub: KEYS[1] is always its index "P{hub}:i", from
// which the scripts derive the other key names of the hub (they carry the
// same hash tag, so they are in KEYS[1]'s slot). docs/event-log.md describes
// the fields they read.

// entriesLua is shared by the scripts. place(entry) reads an entry's "x"
// from either form; add(x, m) adds m to the indexes x names. remove(id, m)
// queues entry id for removal, with its member in every index (named from
// its "x" field) and, when m is set, the hub-index member m (which may be
// another than the entry's own, or the entry may be gone). flush() removes
// what was queued, with their sizes from the hub's byte count, in a few
// calls, and returns the bytes freed; the hub's byte counts go with its
// last entry.
const entriesLua = `
local base = string.sub(KEYS[1], 1, -2)
local sizes = base .. 'b'
local queue = {keys = {}, order = {}, entries = {}, ids = {}, seen = {}}

local function place(entry)
  local x = redis.pcall('GETRANGE', entry, 8, 87)
  if type(x) == 'table' then
    x = redis.call('HGET', entry, 'x')
  end
  if x and #x == 80 then
    return x
  end
  return nil
end

local function drop(key, m)
  local l = queue.keys[key]
  if not l then
    l = {}
    queue.keys[key] = l
    queue.order[#queue.order + 1] = key
  end
  l[#l + 1] = m
end

local function indexes(x, own)
  drop(base .. 't:' .. string.sub(x, 17, 32), own)
  drop(base .. 'u:' .. string.sub(x, 33, 48), own)
  drop(base .. 'v:' .. string.sub(x, 49, 64), own)
  drop(base .. 'd:' .. string.sub(x, 65, 80), own)
  drop(base .. 'T', own)
end

local function add(x, m)
  redis.call('ZADD', base .. 'i', 0, m)
  redis.call('ZADD', base .. 't:' .. string.sub(x, 17, 32), 0, m)
  redis.call('ZADD', base .. 'u:' .. string.sub(x, 33, 48), 0, m)
  redis.call('ZADD', base .. 'v:' .. string.sub(x, 49, 64), 0, m)
  redis.call('ZADD', base .. 'd:' .. string.sub(x, 65, 80), 0, m)
end

local function remove(id, m)
  if queue.seen[id] then
    return
  end
  queue.seen[id] = true
  local entry = base .. 'e:' .. id
  if m then
    drop(base .. 'i', m)
  end
  local x = place(entry)
  if x then
    local own = string.sub(x, 1, 16) .. id
    if own ~= m then
      drop(base .. 'i', own)
    end
    indexes(x, own)
  end
  queue.entries[#queue.entries + 1] = entry
  queue.ids[#queue.ids + 1] = id
end

local function flush()
  for _, key in ipairs(queue.order) do
    redis.call('ZREM', key, unpack(queue.keys[key]))
  end
  local freed = 0
  if #queue.ids > 0 then
    for _, v in ipairs(redis.call('HMGET', sizes, unpack(queue.ids))) do
      if v then
        freed = freed + tonumber(v)
      end
    end
    redis.call('HDEL', sizes, unpack(queue.ids))
    redis.call('UNLINK', unpack(queue.entries))
    if freed > 0 then
      redis.call('HINCRBY', sizes, '', -freed)
    end
    if redis.call('HLEN', sizes) <= 1 then
      redis.call('DEL', sizes)
    end
  end
  queue = {keys = {}, order = {}, entries = {}, ids = {}, seen = {}}
  return freed
end
`

// maxRemovals bounds the entries one script call removes, so that lowering
// a cap does not block Redis on one huge trim: later writes remove the rest
// (a batch adds far fewer than that).
const maxRemovals = 1000

// boundScript runs after a batch's new entries and index members are
// written. It counts the bytes of the batch's entries that are new to the
// hub, removes this batch's entries from before the hub's deletion (when the
// hub was deleted: the deletion may have run while the batch was written),
// then removes entries older than the retention, the oldest beyond the
// hub's maximum number of entries and the oldest beyond its maximum bytes:
// at most maxRemovals in all. Two replicas never both remove for one excess
// entry: members leave the hub index in this atomic call.
//
// KEYS: 1 hub index, 2 byte counts, 3 deletion mark. ARGV: 1 max entries,
// 2 max bytes, 3 the lexicographic lower bound of members older than the
// retention, 4 removal budget, then per entry of the batch: id, bytes,
// index member. Returns {entries expired, entries trimmed}.
var boundScript = redis.NewScript(entriesLua + `
local all = KEYS[1]
local added = 0
for i = 5, #ARGV, 3 do
  if redis.call('HSETNX', sizes, ARGV[i], ARGV[i + 1]) == 1 then
    added = added + tonumber(ARGV[i + 1])
  end
end
if added > 0 then
  redis.call('HINCRBY', sizes, '', added)
end
local budget = tonumber(ARGV[4])

local deleted = redis.call('GET', KEYS[3])
if deleted then
  for i = 5, #ARGV, 3 do
    local m = ARGV[i + 2]
    local x = place(base .. 'e:' .. ARGV[i])
    local created = x and string.sub(x, 1, 16) or string.sub(m, 1, 16)
    if created > deleted then
      remove(ARGV[i], m)
    end
  end
  flush()
end

local expired = redis.call('ZRANGEBYLEX', all, ARGV[3], '+', 'LIMIT', 0, budget)
for _, m in ipairs(expired) do
  remove(string.sub(m, 17), m)
end
flush()
budget = budget - #expired

local trimmed = 0
local over = math.min(redis.call('ZCARD', all) - tonumber(ARGV[1]), budget)
if over > 0 then
  for _, m in ipairs(redis.call('ZRANGE', all, -over, -1)) do
    remove(string.sub(m, 17), m)
  end
  flush()
  trimmed = over
  budget = budget - over
end

local excess = tonumber(redis.call('HGET', sizes, '') or '0') - tonumber(ARGV[2])
while excess > 0 and budget > 0 do
  local n = math.min(budget, 100)
  local oldest = redis.call('ZRANGE', all, -n, -1)
  if #oldest == 0 then
    break
  end
  local ids = {}
  for i = #oldest, 1, -1 do
    ids[#ids + 1] = string.sub(oldest[i], 17)
  end
  local sz = redis.call('HMGET', sizes, unpack(ids))
  for i = #oldest, 1, -1 do
    if excess <= 0 then
      break
    end
    remove(ids[#oldest - i + 1], oldest[i])
    excess = excess - tonumber(sz[#oldest - i + 1] or '0')
    trimmed = trimmed + 1
    budget = budget - 1
  end
  flush()
end
return {#expired, trimmed}
`)

// toHashScript turns each entry stored as a string (entry.go) into a hash
// of the same fields with the same TTL; hashes and missing entries are left
// as they are.
//
// KEYS: 1 hub index, then the entries. Returns the number of entries turned.
var toHashScript = redis.NewScript(`
local turned = 0
for i = 2, #KEYS do
  local entry = KEYS[i]
  local v = redis.pcall('GET', entry)
  if type(v) == 'string' and string.sub(v, 1, 2) == 'L2' then
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

// updateScript finishes the records written to existing entries (after
// toHashScript and the plain writes of their run's job and attempt): for
// each it
//   - drops an entry that is gone since (the plain writes then made a hash
//     without "x"), or whose hub was deleted after the entry was created;
//   - keeps the entry at the time of its earliest run: removes the
//     record's own index members when it is of a later run, or moves the
//     entry to the record's time when it is of an earlier one (which
//     happens only when records of two runs arrive out of order);
//   - writes the summary when the record has the highest order key, and
//     then follows the record's URL (a callback URL edited in place) in "x"
//     and the URL index;
//   - counts the attempts made ("n", per run, summed) and the entry's bytes.
//
// KEYS: 1 hub index, 2 byte counts, 3 deletion mark, then the entries.
// ARGV: 1 TTL in seconds, then per entry: id, order key, summary, the
// record's "x". Returns the number of summaries written.
var updateScript = redis.NewScript(entriesLua + `
local ttl = ARGV[1]
local deleted = redis.call('GET', KEYS[3])
local changed = 0
for j = 4, #KEYS do
  local entry = KEYS[j]
  local a = 2 + (j - 4) * 4
  local id, ord, sum, rx = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local x = redis.call('HGET', entry, 'x')
  if not x then
    redis.call('DEL', entry)
  elseif deleted and string.sub(x, 1, 16) > deleted then
    remove(id, nil)
  else
    local created, rc = string.sub(x, 1, 16), string.sub(rx, 1, 16)
    if rc > created then
      -- A record of an earlier run written after a later run's: the entry
      -- takes the earlier time, its place in the order.
      local old = created .. id
      drop(base .. 'i', old)
      indexes(x, old)
      created = rc
      x = created .. string.sub(x, 17)
      redis.call('HSET', entry, 'x', x)
      add(x, created .. id)
    elseif rc < created then
      -- A later run's record: the entry keeps its time.
      local m = rc .. id
      drop(base .. 'i', m)
      indexes(rx, m)
    end
    local cur = redis.call('HGET', entry, 'k')
    if not cur or ord > cur then
      redis.call('HSET', entry, 'k', ord, 's', sum)
      changed = changed + 1
      local nx = created .. string.sub(rx, 17)
      if nx ~= x then
        redis.call('HSET', entry, 'x', nx)
        add(nx, created .. id)
      end
    end
    local runs, size = {}, 0
    for _, f in ipairs(redis.call('HKEYS', entry)) do
      size = size + #f + redis.call('HSTRLEN', entry, f)
      if string.sub(f, 1, 2) == 'a:' then
        local run, n, r = string.sub(f, 3, 18), tonumber(string.sub(f, 20, 25)), string.sub(f, 27, 27)
        if r == '2' then
          n = n - 1
        elseif r == '0' then
          n = 0
        end
        if n > (runs[run] or 0) then
          runs[run] = n
        end
      end
    end
    local made = 0
    for _, n in pairs(runs) do
      made = made + n
    end
    redis.call('HSET', entry, 'n', made)
    local old = tonumber(redis.call('HGET', sizes, id) or '0')
    if old ~= size then
      redis.call('HSET', sizes, id, size)
      redis.call('HINCRBY', sizes, '', size - old)
    end
    redis.call('EXPIRE', entry, ttl)
  end
end
flush()
return changed
`)

// purgeScript removes a hub's entries created before a time (or all of
// them), at most a budget per call, and may first mark the hub deleted: the
// writes that were under way then drop their entries from before the mark
// (boundScript, updateScript).
//
// KEYS: 1 hub index, 2 byte counts, 3 deletion mark. ARGV: 1 the
// lexicographic lower bound of the members to remove ("-" for all), 2 the
// budget, 3 the deletion time to mark (inverted, "" for none), 4 the mark's
// TTL in seconds. Returns the number of entries removed: fewer than the
// budget when none is left.
var purgeScript = redis.NewScript(entriesLua + `
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[4])
end
local ms = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], '+', 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(ms) do
  remove(string.sub(m, 17), m)
end
flush()
return #ms
`)

// scripts are loaded again together when Redis lost them (a restart, a
// failover, SCRIPT FLUSH).
var scripts = []*redis.Script{boundScript, toHashScript, updateScript, purgeScript}
