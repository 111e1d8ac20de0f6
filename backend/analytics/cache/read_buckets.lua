-- Reads a window's buckets in one round trip, sending back only what changed.
-- ARGV[i] is the version of KEYS[i] the caller has parsed already ('' if none).
-- Per key: 0 = no such bucket, 1 = unchanged, else its HGETALL.
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('HGET', key, '_v')
  if not v then out[i] = 0
  elseif v == ARGV[i] then out[i] = 1
  else out[i] = redis.call('HGETALL', key) end
end
return out
