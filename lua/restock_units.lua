-- Put a cancelled or returned order line's units back into one stock shard, once.
-- Called under the product's MySQL row lock, before the transaction that adds them to MySQL commits.
-- The member's `held` count is given back separately, on the member's slot (return_held.lua).
-- KEYS[1]  the shard's stock hash   KEYS[2]  the line's restocked marker in this shard
-- ARGV[1]  units   ARGV[2]  marker ttl (s)
-- Returns  {code, available, version}: SettleCode.APPLIED = 1 applied; SettleCode.ALREADY = 0 already
--          applied; SettleCode.NOT_CACHED = 2 stock not cached (nothing to do: the next load reads
--          MySQL, which then has the units). (The names are goodsdrop.codes'.)
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {0, -1, -1}
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {2, -1, -1}
end
redis.call('SET', KEYS[2], '1', 'EX', tonumber(ARGV[2]))
local available = redis.call('HINCRBY', KEYS[1], 'available', tonumber(ARGV[1]))
return {1, available, redis.call('HINCRBY', KEYS[1], 'version', 1)}
