-- Applies one bucket's pre-aggregated updates atomically: min/max need a compare, which plain
-- HINCRBY cannot do, and one call per bucket keeps a batch at one round trip.
-- KEYS[1] = bucket; ARGV = ttl, new version, then per (source, metric):
--   pair, count, sum, min, max, n, then n (sketch key, count) pairs.
-- Returns the bucket's version before the write ('' if new), so the writer can tell whether
-- its parsed copy was current. The new version is set first: should the script stop partway,
-- the bucket cannot keep its old version with new data under it.
local key = KEYS[1]
local before = redis.call('HGET', key, '_v') or ''
redis.call('HSET', key, '_v', ARGV[2])
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
local i = 3
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
  for j = 0, nk - 1 do
    redis.call('HINCRBY', key, p .. '|' .. ARGV[i + 2 * j], ARGV[i + 2 * j + 1])
  end
  i = i + 2 * nk
end
redis.call('EXPIRE', key, ARGV[1])
return before
