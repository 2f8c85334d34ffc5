-- End an order's hold in one stock shard: sold (SettleTarget.SOLD = 'C') or released back to this shard
-- (SettleTarget.RELEASED = 'X'), once. (The names are goodsdrop.codes'.)
-- The saga calls it for every shard of the product (a line may be split over shards), under the
-- product's MySQL row lock, before its transaction commits; so does the hot path when a pass or a
-- publish failed. The settled marker (with the units it ended) makes a repeat a no-op. The
-- member's `held` count is given back separately, on the member's slot (return_held.lua).
-- KEYS[1]  the shard's stock hash   KEYS[2]  its holds hash (order -> "member:units")
-- KEYS[3]  this order's settled marker in the shard ("C:<units>" / "X:<units>")
-- ARGV[1]  order id   ARGV[2]  'C' or 'X'   ARGV[3]  marker ttl (s)
-- ARGV[4]  '1' when a release may undo a sale ('C' then 'X': the units come back): only a saga step
--          that holds the order's ledger row and found it OPEN knows that the sale never committed in
--          MySQL; '0' (the hot path, which cannot know) refuses to undo it.
-- Returns  {code, available, version, units}: SettleCode.APPLIED = 1 applied (units: what this shard's
--          hold had); SettleCode.ALREADY = 0 already so; SettleCode.NOT_CACHED = 2 stock not cached
--          (only the marker and the hold are written: the next load computes the stock from MySQL and
--          the markers); SettleCode.REFUSED = -3 refused: a sale ('C') of units already released
--          ('X') - the caller must not sell them - or, with ARGV[4] '0', a release ('X') of units
--          already sold ('C'). available/version: -1 unknown.
local current = redis.call('GET', KEYS[3])
local target = ARGV[2]
local state, marked = nil, 0
if current then
  state = string.sub(current, 1, 1)
  marked = tonumber(string.match(current, ':(%d+)$') or '0')
end
local function level()
  local v = redis.call('HMGET', KEYS[1], 'available', 'version')
  return tonumber(v[1] or '-1'), tonumber(v[2] or '-1')
end
if state == target then
  local available, version = level()
  return {0, available, version, 0}
end
if (state == 'X' and target == 'C') or (state == 'C' and target == 'X' and ARGV[4] ~= '1') then
  return {-3, -1, -1, 0}
end
local hold = redis.call('HGET', KEYS[2], ARGV[1])
local units = 0
if hold then
  units = tonumber(string.match(hold, ':(%d+)$'))
  redis.call('HDEL', KEYS[2], ARGV[1])
elseif state == 'C' then
  units = marked  -- the sale being undone (target 'X')
end
redis.call('SET', KEYS[3], target .. ':' .. units, 'EX', tonumber(ARGV[3]))
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {2, -1, -1, units}
end
if hold then
  redis.call('HINCRBY', KEYS[1], 'reserved', -units)
end
if target == 'X' and units > 0 then
  -- a released hold, or a sale whose MySQL transaction never committed (a crash): units come back here
  redis.call('HINCRBY', KEYS[1], 'available', units)
end
local version = redis.call('HINCRBY', KEYS[1], 'version', units > 0 and 1 or 0)
return {1, tonumber(redis.call('HGET', KEYS[1], 'available')), version, units}
