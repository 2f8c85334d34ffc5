-- Add units to one stock shard's `available`, or take up to some units from it (never below 0).
-- Used to spread a seller's stock change over the shards and to move units between shards
-- (rebalancing: take from the fullest, then give to an empty one - units are never created).
-- KEYS[1]  the shard's stock hash (available, reserved, version)
-- ARGV[1]  the change: n > 0 adds n units; n < 0 takes min(available, -n) units
-- Returns  {ShiftCode.SHIFTED = 1, units moved (signed), available, version},
--          {ShiftCode.NOT_CACHED = 2, 0, -1, -1} when the shard's stock is not cached (nothing changed).
-- (The names are goodsdrop.codes'.)
local v = redis.call('HMGET', KEYS[1], 'available', 'version')
if not v[1] then
  return {2, 0, -1, -1}
end
local change = tonumber(ARGV[1])
if change < 0 then
  change = -math.min(tonumber(v[1]), -change)
end
if change == 0 then
  return {1, 0, tonumber(v[1]), tonumber(v[2] or '0')}
end
local available = redis.call('HINCRBY', KEYS[1], 'available', change)
return {1, change, available, redis.call('HINCRBY', KEYS[1], 'version', 1)}
