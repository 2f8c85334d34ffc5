-- Write one rebuilt stock shard (goodsdrop.reservations.rebuild.load_stock). The rebuild first removed every
-- shard's stock hash and left a token in each shard's slot, so no unit moved since; the token is
-- still there only if Redis did not lose this shard's data in between and no saga step undid a
-- settle the rebuild may have read (goodsdrop.reservations.unsettle / unrestock remove it).
-- KEYS[1]  the shard's stock hash   KEYS[2]  its holds hash (order -> "member:units")
-- KEYS[3]  the shard's rebuild token   KEYS[4]  the shard's closed marker (the product is off sale)
-- ARGV[1]  the rebuild's token   ARGV[2]  units available in this shard
-- ARGV[3]  the units the rebuild counted as held in this shard (its holds when read, plus the adds)
-- ARGV[4]  '1' when MySQL says the product is off sale (unlisted or deleted), else '0': the closed
--          marker is written with the shard, so a product Redis forgot is never reopened by a rebuild
-- ARGV[5]  n, then n x (order, "member:units"): holds Redis lost that the ledger has OPEN
-- Returns  {available, version}; {RebuildCode.TOKEN_LOST = -9, 0} when the token is gone (Redis lost
--          its data: recover first). (The name is goodsdrop.codes'.)
-- A hold released since the rebuild read the holds (the hot path gives units back without the
-- MySQL lock) is no longer in the hash: its units are added to this shard's available.
if redis.call('GET', KEYS[3]) ~= ARGV[1] then
  return {-9, 0}
end
if ARGV[4] == '1' then
  redis.call('SET', KEYS[4], '1')
else
  redis.call('DEL', KEYS[4])
end
local p = 6
for _ = 1, tonumber(ARGV[5]) do
  redis.call('HSET', KEYS[2], ARGV[p], ARGV[p + 1])
  p = p + 2
end
local reserved = 0
local holds = redis.call('HVALS', KEYS[2])
for _, hold in ipairs(holds) do
  reserved = reserved + tonumber(string.match(hold, ':(%d+)$'))
end
local available = tonumber(ARGV[2]) + math.max(tonumber(ARGV[3]) - reserved, 0)
redis.call('HSET', KEYS[1], 'available', available, 'reserved', reserved, 'version', 1)
redis.call('DEL', KEYS[3])
return {available, 1}
