-- Fill a product's stock hash from the system of record, unless another writer already did.
-- KEYS[1]  the product's stock hash (keys.stock)
-- ARGV[1]  units available (MySQL stock minus open reservations)
-- ARGV[2]  units held by open reservations
-- Returns  the units available in Redis afterwards (the existing value wins over ARGV[1]).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return tonumber(redis.call('HGET', KEYS[1], 'available'))
end
redis.call('HSET', KEYS[1], 'available', ARGV[1], 'reserved', ARGV[2], 'version', 1)
return tonumber(ARGV[1])
