-- Put a cancelled or returned order line's units back into the live stock, once.
-- Called under the product's MySQL row lock, before the transaction that adds them to MySQL commits.
-- KEYS[1]  the product's stock hash   KEYS[2]  its buyers hash   KEYS[3]  the line's restocked marker
-- ARGV[1]  member id   ARGV[2]  units   ARGV[3]  marker ttl (s)
-- Returns  {code, available, version}: 1 applied; 0 already applied; 2 stock not cached (nothing to do:
--          the next load reads MySQL, which then has the units).
if redis.call('EXISTS', KEYS[3]) == 1 then
  return {0, -1, -1}
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {2, -1, -1}
end
local qty = tonumber(ARGV[2])
redis.call('SET', KEYS[3], '1', 'EX', tonumber(ARGV[3]))
local available = redis.call('HINCRBY', KEYS[1], 'available', qty)
local left = redis.call('HINCRBY', KEYS[2], ARGV[1], -qty)
if left <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return {1, available, redis.call('HINCRBY', KEYS[1], 'version', 1)}
