-- End an order's hold on one product: sold ('C') or released back to stock ('X'), exactly once.
-- Called by the saga under the product's MySQL row lock, before its transaction commits (and by
-- the hot path when publishing an order failed). The settled marker makes a repeat a no-op.
-- KEYS[1]  the product's stock hash        KEYS[2]  its buyers hash (member -> units held)
-- KEYS[3]  its holds hash (order -> "member:units")   KEYS[4]  this order's settled marker
-- ARGV[1]  order id   ARGV[2]  member id   ARGV[3]  units   ARGV[4]  'C' or 'X'   ARGV[5]  marker ttl (s)
-- Returns  {code, available, version}: code 1 applied; 0 already so; 2 stock not cached (only the
--          marker is written: the next load computes the stock from MySQL and the markers);
--          -3 refused: a sale ('C') of units already released ('X') - the caller must not sell them.
local current = redis.call('GET', KEYS[4])
local target = ARGV[4]
if current == target then
  return {0, -1, -1}
end
if current == 'X' and target == 'C' then
  return {-3, -1, -1}
end
local qty = tonumber(ARGV[3])
local held = redis.call('HDEL', KEYS[3], ARGV[1]) == 1
redis.call('SET', KEYS[4], target, 'EX', tonumber(ARGV[5]))
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {2, -1, -1}
end
local function give_back()
  redis.call('HINCRBY', KEYS[1], 'available', qty)
  local left = redis.call('HINCRBY', KEYS[2], ARGV[2], -qty)
  if left <= 0 then
    redis.call('HDEL', KEYS[2], ARGV[2])
  end
end
if held then
  redis.call('HINCRBY', KEYS[1], 'reserved', -qty)
  if target == 'X' then
    give_back()
  end
elseif current == 'C' and target == 'X' then
  -- Redis recorded a sale whose MySQL transaction never committed (a crash): the units come back.
  give_back()
end
local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
return {1, tonumber(redis.call('HGET', KEYS[1], 'available')), version}
