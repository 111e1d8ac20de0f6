-- Take over log entries another recorder read but has not recorded for ARGV[3] ms (it died or
-- stalled), and fence that recorder: its fence key changes, so a write it still has in flight
-- (WATCHed on that key) aborts instead of recording the entries a second time.
-- KEYS[1] stream; ARGV: group, claiming consumer, min idle ms, count, fence key prefix
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], '-', '+', ARGV[4])
if #pending == 0 then return {} end
local ids, owners = {}, {}
for _, p in ipairs(pending) do
  ids[#ids + 1] = p[1]
  owners[p[2]] = true
end
for owner, _ in pairs(owners) do
  redis.call('INCR', ARGV[5] .. owner)
  redis.call('PEXPIRE', ARGV[5] .. owner, 86400000)
end
return redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], unpack(ids))
