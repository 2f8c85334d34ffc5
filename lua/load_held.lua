-- After Redis lost its data: add to a member's `held` counts what MySQL says they hold (sold and not
-- given back, plus reservations the ledger has OPEN), once per recovery. Claims made since the
-- loss already counted themselves, so the rebuilt counts are added, not set.
-- KEYS[1]  the member's held units (hash productId -> units)   KEYS[2]  the member's held-rebuilt marker
-- ARGV[1]  the recovery's token   ARGV[2]  marker ttl (s)   ARGV[3]  n, then n x (product id, units)
-- Returns  1 applied now, 0 already applied under this token.
if redis.call('GET', KEYS[2]) == ARGV[1] then
  return 0
end
local p = 4
for _ = 1, tonumber(ARGV[3]) do
  redis.call('HINCRBY', KEYS[1], ARGV[p], tonumber(ARGV[p + 1]))
  p = p + 2
end
redis.call('SET', KEYS[2], ARGV[1], 'EX', tonumber(ARGV[2]))
return 1
