-- Give an order's units back to the member's `held` counts exactly once per line (release, expiry,
-- compensation, cancel, return), or undo that give-back when the caller's MySQL transaction failed.
-- KEYS[1]  the member's held units (hash productId -> units)
-- KEYS[2]  the order's held-returned marker (hash productId -> 1)
-- ARGV[1]  HeldChange.RETURN = 'return' or HeldChange.UNDO = 'undo' (goodsdrop.codes)
-- ARGV[2]  marker ttl (s)   ARGV[3]  number of lines n, then n x (product id, units)
-- Returns  the number of lines changed now (0: every line was already so).
local changed = 0
local p = 4
for _ = 1, tonumber(ARGV[3]) do
  local product, units = ARGV[p], tonumber(ARGV[p + 1])
  p = p + 2
  if ARGV[1] == 'return' then
    if redis.call('HSETNX', KEYS[2], product, '1') == 1 then
      changed = changed + 1
      -- after Redis lost its data the count may be rebuilt later: never keep a negative count
      if redis.call('HINCRBY', KEYS[1], product, -units) <= 0 then
        redis.call('HDEL', KEYS[1], product)
      end
    end
  elseif redis.call('HDEL', KEYS[2], product) == 1 then
    changed = changed + 1
    redis.call('HINCRBY', KEYS[1], product, units)
  end
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2]))
end
return changed
