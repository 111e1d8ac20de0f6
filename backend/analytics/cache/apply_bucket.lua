-- Applies one bucket's pre-aggregated updates atomically: min/max need a compare, which plain
-- HINCRBY cannot do, and one call per bucket keeps a batch at one round trip.
-- KEYS[1] = bucket; ARGV = ttl, new version, the most sketch bins per pair, then per (source, metric):
--   pair, count, sum, min, max, n, then n (sketch key, count) pairs.
-- Returns the bucket's version before the write ('' if new), so the writer can tell whether
-- its parsed copy was current. The new version is set first: should the script stop partway,
-- the bucket cannot keep its old version with new data under it.
local key = KEYS[1]
local before = redis.call('HGET', key, '_v') or ''
redis.call('HSET', key, '_v', ARGV[2])
local max_bins = tonumber(ARGV[3])
-- Sums are added in double precision, as every process adds its parsed copies, and kept with 17
-- significant digits (a double round-trips). Not HINCRBYFLOAT: it stores '%.17Lf', fixed-point,
-- which turns a sum under 1e-17 (valid values) into 0, and it refuses a sum that leaves the
-- range of a double (values near 1e308 are valid too): that saturates at +/-inf (nan if both).
local function add_sum(f, inc)
  local total = (tonumber(redis.call('HGET', key, f) or '0') or 0) + tonumber(inc)
  local text = 'nan'
  if total == total then text = string.format('%.17g', total) end
  redis.call('HSET', key, f, text)
end

-- The sketch bound (sketch.py, MAX_SKETCH_BINS): at most max_bins sketch fields per pair. Past
-- it the lowest bins (by value) are folded into the lowest one kept, exactly as sketch.py folds
-- in memory, so the writer's carried-forward copy stays equal to the bucket.
-- A pair's bins are never more than the hash's fields: while the hash has at most max_bins
-- (HLEN, O(1), once per write) nothing is tracked and a write costs what it did before. The
-- first write that takes it past reads the hash once (at most max_bins fields plus that write's
-- own; all of a bucket an older version wrote unbounded, once), folds any pair over the bound,
-- marks the hash ('#') and from then on keeps per pair
-- '@<pair>' (one '|': readers skip it): the ranks of its bins, fixed width, lowest first. A
-- write reads it once per pair; a new bin is seen for free (HINCRBY answers the increment itself
-- for a new field) and goes into the list by binary search; the bins to fold are at its start;
-- once the pair is full, values below its lowest bin go straight into that bin (where a fold
-- would put them). So no write past the first ever scans the hash, and each costs at most its
-- own fields plus one list per pair it touches (~14 KB at 2,048 bins), whatever the others hold.
-- Another writer that does not track bins (an older version, during an upgrade) can leave a pair
-- over the bound; readers fold whatever they read anyway.

-- A sketch key's rank: value order on one axis, n<i> (negative: larger i is lower), z, k<i>.
-- |i| < 40,000, so ranks lie within +/-1,040,000, and RANK_BASE + rank has 7 digits (W).
local RANK_BASE, W = 2000000, 7
local function rank(name)
  local c = string.byte(name, 1)
  if c == 122 then return 0 end -- z
  local i = tonumber(string.sub(name, 2))
  if c == 107 then return 1000000 + i end -- k
  return -1000000 - i -- n
end

local function name_of(r)
  if r == 0 then return 'z' end
  if r > 0 then return 'k' .. (r - 1000000) end
  return 'n' .. (-r - 1000000)
end

local function encode(r) return string.format('%07d', r + RANK_BASE) end

local function rank_at(list, j) -- the j-th rank of a list (':' then W digits per bin)
  local s = 2 + W * (j - 1)
  return tonumber(string.sub(list, s, s + W - 1)) - RANK_BASE
end

-- Deletes pair p's bins of the ranks given; returns the sum of their counts (read unless known).
local function take_bins(p, ranks, known)
  local moved, gone = 0, {}
  for _, r in ipairs(ranks) do
    local name = name_of(r)
    local field = p .. '|' .. name
    moved = moved + (known[name] or tonumber(redis.call('HGET', key, field)))
    gone[#gone + 1] = field
    if #gone == 500 then
      redis.call('HDEL', key, unpack(gone))
      gone = {}
    end
  end
  if #gone > 0 then redis.call('HDEL', key, unpack(gone)) end
  return moved
end

-- Pair p's list (`list`, sorted) plus `new` (ranks of bins it lacks, sorted; `known`: name ->
-- count), folded to the bound: the lowest of both go into the next one up. Writes the new list.
local function add_to_list(p, list, new, known)
  local m, k = (#list - 1) / W, #new
  local ia, ib = 1, 1 -- next of the list, next of the new ones
  local function lowest_is_new()
    return ib <= k and (ia > m or new[ib] < rank_at(list, ia))
  end
  local excess = m + k - max_bins
  if excess > 0 then
    local folded = {}
    for j = 1, excess do
      if lowest_is_new() then
        folded[j] = new[ib]
        ib = ib + 1
      else
        folded[j] = rank_at(list, ia)
        ia = ia + 1
      end
    end
    local target = lowest_is_new() and new[ib] or rank_at(list, ia)
    redis.call('HINCRBY', key, p .. '|' .. name_of(target), take_bins(p, folded, known))
  end
  -- The list from ia on, with the new ones from ib on inserted where they belong.
  local parts, from = {':'}, ia
  for j = ib, k do
    local lo, hi = from, m + 1 -- the first list entry above new[j] (never equal: new[j] is new)
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if rank_at(list, mid) < new[j] then lo = mid + 1 else hi = mid end
    end
    parts[#parts + 1] = string.sub(list, 2 + W * (from - 1), 1 + W * (lo - 1))
    parts[#parts + 1] = encode(new[j])
    from = lo
  end
  parts[#parts + 1] = string.sub(list, 2 + W * (from - 1))
  redis.call('HSET', key, '@' .. p, table.concat(parts))
end

-- The hash just went past max_bins fields: every pair's bins from one pass, listed and folded.
local function start_tracking()
  local ranks, counts = {}, {} -- pair -> ranks of its bins; pair -> name -> count
  local seen, cursor = {}, '0'
  repeat
    local reply = redis.call('HSCAN', key, cursor, 'MATCH', '*|*|*', 'COUNT', 1000)
    cursor = reply[1]
    local kv = reply[2]
    for j = 1, #kv, 2 do
      local pair, name = string.match(kv[j], '^([^|]*|[^|]*)|([knz].*)$')
      if pair and not seen[kv[j]] then -- HSCAN may return a field twice
        seen[kv[j]] = true
        if not ranks[pair] then
          ranks[pair], counts[pair] = {}, {}
        end
        ranks[pair][#ranks[pair] + 1] = rank(name)
        counts[pair][name] = tonumber(kv[j + 1])
      end
    end
  until cursor == '0'
  for pair, list in pairs(ranks) do
    table.sort(list)
    add_to_list(pair, ':', list, counts[pair])
  end
  redis.call('HSET', key, '#', 1)
end

local tracking = redis.call('HGET', key, '#') ~= false -- (a missing field reads as false)
local i = 4
local n = #ARGV
while i <= n do
  local p = ARGV[i]
  redis.call('HINCRBY', key, p .. '|c', ARGV[i + 1])
  add_sum(p .. '|s', ARGV[i + 2])
  local lo = redis.call('HGET', key, p .. '|lo')
  if (not lo) or tonumber(ARGV[i + 3]) < tonumber(lo) then redis.call('HSET', key, p .. '|lo', ARGV[i + 3]) end
  local hi = redis.call('HGET', key, p .. '|hi')
  if (not hi) or tonumber(ARGV[i + 4]) > tonumber(hi) then redis.call('HSET', key, p .. '|hi', ARGV[i + 4]) end
  local nk = tonumber(ARGV[i + 5])
  i = i + 6
  if not tracking then
    for j = i, i + 2 * nk - 1, 2 do redis.call('HINCRBY', key, p .. '|' .. ARGV[j], ARGV[j + 1]) end
  else
    local list = redis.call('HGET', key, '@' .. p) or ':'
    local floor, floor_name = nil, nil -- a full pair's lowest bin: lower values go into it
    if (#list - 1) / W >= max_bins then
      floor = rank_at(list, 1)
      floor_name = name_of(floor)
    end
    local new, known = {}, {} -- ranks of the bins this write creates; their counts by name
    for j = i, i + 2 * nk - 1, 2 do
      local name = ARGV[j]
      if floor and rank(name) < floor then name = floor_name end
      local now = redis.call('HINCRBY', key, p .. '|' .. name, ARGV[j + 1])
      if now == tonumber(ARGV[j + 1]) then -- a new field (a count is never 0)
        new[#new + 1] = rank(name)
        known[name] = now
      end
    end
    if #new > 0 then
      table.sort(new)
      add_to_list(p, list, new, known)
    end
  end
  i = i + 2 * nk
end
if not tracking and redis.call('HLEN', key) > max_bins then start_tracking() end
redis.call('EXPIRE', key, ARGV[1])
return before
