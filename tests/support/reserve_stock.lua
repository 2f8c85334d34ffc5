-- Reserve units of one product's stock: check and decrement in one atomic step (tests only:
-- tests/support/reserve_stock.py; orders reserve through goodsdrop.reservations).
-- KEYS[1]  the product's stock hash (keys.stock): fields available, reserved, version
-- ARGV[1]  units to reserve (a positive integer)
-- Returns  the units still available after the reservation (>= 0),
--          SHORT = -1 when fewer than ARGV[1] units are available (nothing changed),
--          NOT_LOADED = -2 when the stock is not in Redis yet (the caller loads it from MySQL and retries).
local available = redis.call('HGET', KEYS[1], 'available')
if not available then
  return -2
end
local units = tonumber(ARGV[1])
available = tonumber(available)
if available < units then
  return -1
end
redis.call('HINCRBY', KEYS[1], 'reserved', units)
redis.call('HINCRBY', KEYS[1], 'version', 1)
return redis.call('HINCRBY', KEYS[1], 'available', -units)
