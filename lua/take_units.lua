-- Take up to the units an order line still needs from one stock shard, and record the order's hold
-- there. Idempotent per order: if the order already holds units in this shard, those are reported
-- and nothing more is taken, so a retried pass never takes twice.
-- KEYS[1]  the shard's stock hash (available, reserved, version)
-- KEYS[2]  the shard's holds hash (order -> "member:units")
-- KEYS[3]  the order's settled marker in this shard (set once the hold ended)
-- KEYS[4]  the shard's closed marker (keys.stock_closed: the product is off sale)
-- ARGV[1]  order id   ARGV[2]  member id   ARGV[3]  units the line still needs (> 0)
-- Returns  {units the order holds in this shard now (0: the shard is empty), available, version},
--          {TakeCode.NOT_LOADED = -2, 0, 0} the shard's stock is not in Redis (load it and call again),
--          {TakeCode.HOLD_ENDED = -4, 0, 0} the order's hold already ended here (released or sold): take nothing,
--          {TakeCode.CLOSED = -5, 0, 0} the product is off sale: no new hold (an existing one is still reported).
-- (The names are goodsdrop.codes'.)
if redis.call('EXISTS', KEYS[3]) == 1 then
  return {-4, 0, 0}
end
local stock = redis.call('HMGET', KEYS[1], 'available', 'version')
if not stock[1] then
  return {-2, 0, 0}
end
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing then
  return {tonumber(string.match(existing, ':(%d+)$')), tonumber(stock[1]), tonumber(stock[2] or '0')}
end
if redis.call('EXISTS', KEYS[4]) == 1 then
  return {-5, 0, 0}
end
local available = tonumber(stock[1])
local take = math.min(available, tonumber(ARGV[3]))
if take <= 0 then
  return {0, available, tonumber(stock[2] or '0')}
end
redis.call('HINCRBY', KEYS[1], 'reserved', take)
local left = redis.call('HINCRBY', KEYS[1], 'available', -take)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ':' .. take)
return {take, left, redis.call('HINCRBY', KEYS[1], 'version', 1)}
