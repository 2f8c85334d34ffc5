-- Set a product's remaining stock (write-through from a seller's change) without ever letting
-- more units be sold than the new stock: units already held by open reservations stay held.
-- KEYS[1]  the product's stock hash (keys.stock)
-- ARGV[1]  the new remaining stock (units not yet sold, as MySQL now records it)
-- Returns  {available, version} after the change,
--          or {-1, reserved} when the new stock is below the units already reserved,
--          or {-2, 0} when the stock is not cached (the next load reads the new stock from MySQL).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-2, 0}
end
local reserved = tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')
local remaining = tonumber(ARGV[1])
if remaining < reserved then
  return {-1, reserved}
end
redis.call('HSET', KEYS[1], 'available', remaining - reserved, 'reserved', reserved)
local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
return {remaining - reserved, version}
