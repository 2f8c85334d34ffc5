-- Rebuild a product's live stock from MySQL (the system of record) and the holds Redis still has.
-- Runs while the caller holds a share lock on the product's MySQL stock row, so no saga step can
-- change MySQL and Redis for this product in between.
-- KEYS[1]  the product's stock hash (available, reserved, version)   KEYS[2]  its buyers hash
-- KEYS[3]  its holds hash (order -> "member:units")   KEYS[4]  the stock epoch (absent: Redis lost its data)
-- ARGV[1]  units not yet sold, per MySQL
-- ARGV[2]  the prefix of this product's settled markers (keys.stock_settled(product, ''))
-- ARGV[3]  settled-marker ttl (s)
-- ARGV[4]  n, then n x (order, member, units, ledger state): the product's reservations the ledger
--          has OPEN, and those of the holds Redis still has, whatever their state
-- then     m, then m x (member, units): units sold to each member and not given back, per MySQL
-- Returns  {available, version} (an existing stock hash wins: nothing is changed then),
--          {-9, 0} when the epoch is missing: Redis lost its data and must be recovered first.
if redis.call('EXISTS', KEYS[1]) == 1 then
  local v = redis.call('HMGET', KEYS[1], 'available', 'version')
  return {tonumber(v[1]), tonumber(v[2] or '0')}
end
if redis.call('EXISTS', KEYS[4]) == 0 then
  return {-9, 0}
end
local count, prefix, ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local reserved = 0
local buyers = {}
local function add(member, units)
  buyers[member] = (buyers[member] or 0) + units
end
local known = {}
local p = 5
for _ = 1, tonumber(ARGV[4]) do
  local order, member, units, state = ARGV[p], ARGV[p + 1], tonumber(ARGV[p + 2]), ARGV[p + 3]
  p = p + 4
  known[order] = true
  if state == 'OPEN' then
    local marker = redis.call('GET', prefix .. order)
    if marker == 'C' then
      -- sold in Redis by a step whose MySQL commit has not landed (a crash): it will be redone
      count = count - units
      add(member, units)
      redis.call('HDEL', KEYS[3], order)
    elseif marker == 'X' then
      redis.call('HDEL', KEYS[3], order)
    else
      reserved = reserved + units
      add(member, units)
      redis.call('HSET', KEYS[3], order, member .. ':' .. units)
    end
  else
    -- MySQL already ended this reservation; a hold still in Redis is stale
    redis.call('HDEL', KEYS[3], order)
    redis.call('SET', prefix .. order, state == 'CONSUMED' and 'C' or 'X', 'EX', ttl)
  end
end
-- Holds the ledger does not have yet (their OrderRequested is still on its way): still held.
local holds = redis.call('HGETALL', KEYS[3])
for j = 1, #holds, 2 do
  if not known[holds[j]] then
    local member, units = string.match(holds[j + 1], '^(.*):(%d+)$')
    reserved = reserved + tonumber(units)
    add(member, tonumber(units))
  end
end
for _ = 1, tonumber(ARGV[p]) do
  add(ARGV[p + 1], tonumber(ARGV[p + 2]))
  p = p + 2
end
local available = count - reserved
if available < 0 then
  available = 0
end
redis.call('DEL', KEYS[2])
for member, units in pairs(buyers) do
  if units > 0 then
    redis.call('HSET', KEYS[2], member, units)
  end
end
redis.call('HSET', KEYS[1], 'available', available, 'reserved', reserved, 'version', 1)
return {available, 1}
