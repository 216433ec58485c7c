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

// entriesLua is shared by the scripts:
//   - place(entry) reads an entry's "x" and its size in bytes (the string's
//     length, or a hash's "z"), from either form;
//   - add(x, m) adds m to the indexes x names;
//   - remove(id, m, ranked) queues entry id for removal (once in a flush),
//     with its member in every index (named from its "x") and, unless
//     ranked says the caller removed it from the hub index already, the
//     hub-index member m (which may be another than the entry's own, or the
//     entry may be gone);
//   - flush() removes what was queued, with their bytes from the hub's
//     total, in a few calls; the total goes with the hub's last entry;
//   - oldest(k) removes the k oldest entries of the hub index.
const entriesLua = `
local base = string.sub(KEYS[1], 1, -2)
local all, total = base .. 'i', base .. 'b'
local queue = {keys = {}, order = {}, n = 0, entries = {}, freed = 0}

local function place(entry)
  local x, size = redis.pcall('GETRANGE', entry, 8, 88), 0
  if type(x) == 'table' then
    local v = redis.call('HMGET', entry, 'x', 'z')
    x, size = v[1], tonumber(v[2]) or 0
  elseif #x > 0 then
    size = redis.call('STRLEN', entry)
  end
  if not x or #x ~= 81 then
    x = false
  end
  return x, size
end

local function drop(key, m)
  local l = queue.keys[key]
  if not l then
    l = {n = 0}
    queue.keys[key] = l
    queue.order[#queue.order + 1] = key
  end
  l.n = l.n + 1
  l[l.n] = m
end

local function indexes(x, own)
  drop(base .. 't:' .. string.sub(x, 17, 32), own)
  drop(base .. 'u:' .. string.sub(x, 33, 48), own)
  drop(base .. 'v:' .. string.sub(x, 49, 64), own)
  drop(base .. 'd:' .. string.sub(x, 65, 80), own)
  if string.sub(x, 81, 81) == 't' then
    drop(base .. 'T', own)
  end
end

local function add(x, m)
  redis.call('ZADD', all, 0, m)
  redis.call('ZADD', base .. 't:' .. string.sub(x, 17, 32), 0, m)
  redis.call('ZADD', base .. 'u:' .. string.sub(x, 33, 48), 0, m)
  redis.call('ZADD', base .. 'v:' .. string.sub(x, 49, 64), 0, m)
  redis.call('ZADD', base .. 'd:' .. string.sub(x, 65, 80), 0, m)
end

local function remove(id, m, ranked)
  local entry = base .. 'e:' .. id
  if m and not ranked then
    drop(all, m)
  end
  local x, size = place(entry)
  if x then
    local own = string.sub(x, 1, 16) .. id
    if own ~= m then
      drop(all, own)
    end
    indexes(x, own)
  end
  queue.n = queue.n + 1
  queue.entries[queue.n] = entry
  queue.freed = queue.freed + size
end

local function flush()
  for _, key in ipairs(queue.order) do
    local l = queue.keys[key]
    redis.call('ZREM', key, unpack(l, 1, l.n))
  end
  if queue.n > 0 then
    redis.call('UNLINK', unpack(queue.entries, 1, queue.n))
    if redis.call('ZCARD', all) == 0 then
      redis.call('DEL', total)
    elseif queue.freed > 0 then
      redis.call('DECRBY', total, queue.freed)
    end
  end
  queue = {keys = {}, order = {}, n = 0, entries = {}, freed = 0}
end

local function oldest(k)
  if k <= 0 then
    return 0
  end
  local victims = redis.call('ZRANGE', all, -k, -1)
  redis.call('ZREMRANGEBYRANK', all, -k, -1)
  for _, m in ipairs(victims) do
    remove(string.sub(m, 17), m, true)
  end
  flush()
  return #victims
end
`

// maxRemovals bounds the entries one script call removes, so that lowering
// a cap does not block Redis on one huge trim: later writes remove the rest
// (a batch adds far fewer than that).
const maxRemovals = 1000

// boundScript runs after a batch's new entries and index members are
// written. It adds the bytes of the entries the batch created to the hub's
// count (here, not by a plain command: a pipeline run again after Redis lost
// the scripts must not count them twice), removes this batch's entries from
// before the hub's deletion
// (when the hub was deleted: the deletion may have run while the batch was
// written), then the hub's oldest entries: those older than the retention,
// beyond its maximum number of entries and beyond its maximum bytes, at
// most a budget in all. Two replicas never both remove for one excess
// entry: members leave the hub index in this atomic call.
//
// KEYS: 1 hub index, 2 byte count, 3 deletion mark. ARGV: 1 max entries,
// 2 max bytes, 3 the lexicographic lower bound of members older than the
// retention, 4 the budget, 5 the bytes of the entries the batch created,
// then the ids of the batch's entries (distinct). Returns {entries expired,
// entries trimmed}.
var boundScript = redis.NewScript(entriesLua + `
if tonumber(ARGV[5]) > 0 then
  redis.call('INCRBY', total, ARGV[5])
end
local deleted = redis.call('GET', KEYS[3])
if deleted then
  for i = 6, #ARGV do
    local x = place(base .. 'e:' .. ARGV[i])
    if x and string.sub(x, 1, 16) > deleted then
      remove(ARGV[i], nil, false)
    end
  end
  flush()
end

local budget = tonumber(ARGV[4])
local expired = redis.call('ZLEXCOUNT', all, ARGV[3], '+')
local k = math.min(math.max(redis.call('ZCARD', all) - tonumber(ARGV[1]), expired), budget)
local excess = (tonumber(redis.call('GET', total)) or 0) - tonumber(ARGV[2])
if excess > 0 then
  -- From the oldest, as many as the bytes need (the k oldest go anyway).
  local n, seen = redis.call('ZCARD', all), 0
  while excess > 0 and seen < n and seen < budget do
    local ms = redis.call('ZRANGE', all, -(seen + math.min(budget - seen, 100)), -(seen + 1))
    if #ms == 0 then
      break
    end
    for i = #ms, 1, -1 do
      local _, size = place(base .. 'e:' .. string.sub(ms[i], 17))
      excess = excess - size
      seen = seen + 1
      if excess <= 0 then
        break
      end
    end
  end
  k = math.max(k, seen)
end
local removed = oldest(k)
local aged = math.min(expired, removed)
return {aged, removed - aged}
`)

// toHashScript turns each entry stored as a string (entry.go) into a hash
// of the same fields with the same TTL, and "z": the string's length, the
// bytes counted for it; hashes and missing entries are left as they are.
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
    args[#args + 1] = 'z'
    args[#args + 1] = n
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
    remove(id, nil, false)
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
      if f ~= 'z' then
        size = size + #f + redis.call('HSTRLEN', entry, f)
      end
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
    local old = tonumber(redis.call('HGET', entry, 'z')) or 0
    if old ~= size then
      redis.call('HSET', entry, 'z', size)
      redis.call('INCRBY', total, size - old)
    end
    redis.call('EXPIRE', entry, ttl)
  end
end
flush()
return changed
`)

// purgeScript removes a hub's entries created before a time (or all of
// them), oldest first, at most a budget per call, and may first mark the hub
// deleted: the writes that were under way then drop their entries from
// before the mark (boundScript, updateScript).
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
return oldest(math.min(redis.call('ZLEXCOUNT', all, ARGV[1], '+'), tonumber(ARGV[2])))
`)
