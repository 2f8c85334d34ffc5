-- Claim an order on the member's slot: the first of the place-order steps (all or nothing here).
-- Checks the buyer's Idempotency-Key, that every line is on sale and within the member's limit,
-- then counts every line against the member (`held`) and records the order and its idempotency
-- state. The units themselves are taken next, shard by shard (take_units.lua); if that fails the
-- claim is undone (unclaim_order.lua). Every key is the member's: one slot.
-- KEYS[1]  the member's idempotency record for this key (hash: fp, state, outcome, order, started)
-- KEYS[2]  the order record (hash: member, status, created, expires, doc)
-- KEYS[3]  the member's pending orders (zset order -> created ms)
-- KEYS[4]  the member's held units (hash productId -> units reserved + sold, not given back)
-- ARGV[1]  the request's fingerprint (same key + other fingerprint = key reused)
-- ARGV[2]  now (epoch ms)           ARGV[3]  the reservation's expiry (epoch ms)
-- ARGV[4]  the new order id         ARGV[5]  the member id
-- ARGV[6]  the order document (JSON: lines with prices, total)
-- ARGV[7]  idempotency record ttl (s)   ARGV[8]  order record ttl (s)   ARGV[9]  number of lines n
-- ARGV[10+4(i-1)], +1, +2, +3   line i: product id, quantity, per-member limit (-1 none), sales start ms (-1 none)
-- Returns  {ClaimAnswer.REPLAY = 'REPLAY', state, outcome, order}  the key was used with the same request
--          {ClaimAnswer.REUSED = 'REUSED'}  the key was used before with another request
--          {ClaimAnswer.REFUSED = 'REFUSED', outcome}  NOT_ON_SALE / PURCHASE_LIMIT_EXCEEDED (stored)
--          {ClaimAnswer.CLAIMED = 'CLAIMED'}
-- Writes   the record's status RecordStatus.PENDING = 'PENDING'; the key's state
--          IdempotencyState.IN_FLIGHT = 'IN_FLIGHT' (claimed) or IdempotencyState.DONE = 'DONE' (refused).
-- (The names are goodsdrop.codes'.)
local idem = redis.call('HMGET', KEYS[1], 'fp', 'state', 'outcome', 'order')
if idem[1] then
  if idem[1] ~= ARGV[1] then
    return {'REUSED'}
  end
  return {'REPLAY', idem[2] or '', idem[3] or '', idem[4] or ''}
end

local now, n = tonumber(ARGV[2]), tonumber(ARGV[9])

local function refuse(outcome)
  local encoded = cjson.encode(outcome)
  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'DONE', 'outcome', encoded)
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[7]))
  return {'REFUSED', encoded}
end

-- Pass 1: check every line; nothing is written unless all pass.
for i = 1, n do
  local a = 10 + 4 * (i - 1)
  local start = tonumber(ARGV[a + 3])
  if start >= 0 and now < start then
    return refuse({code = 'NOT_ON_SALE', productId = ARGV[a], salesStartMs = start})
  end
end
for i = 1, n do
  local a = 10 + 4 * (i - 1)
  local product, qty, limit = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  if limit >= 0 then
    local held = tonumber(redis.call('HGET', KEYS[4], product) or '0')
    if held + qty > limit then
      return refuse({code = 'PURCHASE_LIMIT_EXCEEDED', productId = product, held = held, limit = limit})
    end
  end
end

-- Pass 2: count the units against the member, record the order and the key's state.
for i = 1, n do
  local a = 10 + 4 * (i - 1)
  redis.call('HINCRBY', KEYS[4], ARGV[a], tonumber(ARGV[a + 1]))
end
redis.call('HSET', KEYS[2], 'member', ARGV[5], 'status', 'PENDING', 'created', ARGV[2], 'expires', ARGV[3],
           'doc', ARGV[6])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[8]))
redis.call('ZADD', KEYS[3], now, ARGV[4])
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[8]))
redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'IN_FLIGHT', 'order', ARGV[4], 'started', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[7]))
return {'CLAIMED'}
