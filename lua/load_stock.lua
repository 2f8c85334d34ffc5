-- Write one rebuilt stock shard (goodsdrop.stock.load_stock). The rebuild first removed every
-- shard's stock hash and left a token in each shard's slot, so no unit moved since; the token is
-- still there only if Redis did not lose this shard's data in between.
-- KEYS[1]  the shard's stock hash   KEYS[2]  its holds hash (order -> "member:units")
-- KEYS[3]  the shard's rebuild token
-- ARGV[1]  the rebuild's token   ARGV[2]  units available in this shard
-- ARGV[3]  n, then n x (order, "member:units"): holds Redis lost that the ledger has OPEN
-- Returns  {available, version}; {-9, 0} when the token is gone (Redis lost its data: recover first).
if redis.call('GET', KEYS[3]) ~= ARGV[1] then
  return {-9, 0}
end
local p = 4
for _ = 1, tonumber(ARGV[3]) do
  redis.call('HSET', KEYS[2], ARGV[p], ARGV[p + 1])
  p = p + 2
end
local reserved = 0
local holds = redis.call('HVALS', KEYS[2])
for _, hold in ipairs(holds) do
  reserved = reserved + tonumber(string.match(hold, ':(%d+)$'))
end
redis.call('HSET', KEYS[1], 'available', tonumber(ARGV[2]), 'reserved', reserved, 'version', 1)
redis.call('DEL', KEYS[3])
return {tonumber(ARGV[2]), 1}
