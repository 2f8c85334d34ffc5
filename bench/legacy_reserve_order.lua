-- Reserve every line of an order at once (all or nothing), keyed by the buyer's Idempotency-Key.
-- One script = one atomic step: the idempotency check, every check of every line, and every write.
-- KEYS[1]  the member's idempotency record for this key (hash: fp, state, outcome, order, started)
-- KEYS[2]  the order record (hash: member, status, created, expires, doc)
-- KEYS[3]  the expiry index (zset "member:order" -> expiry ms)
-- KEYS[4]  the member's pending orders (zset order -> created ms)
-- KEYS[5+3(i-1)], +1, +2   line i's product: stock hash, buyers hash, holds hash
-- ARGV[1]  the request's fingerprint (same key + other fingerprint = key reused)
-- ARGV[2]  now (epoch ms)           ARGV[3]  the reservation's expiry (epoch ms)
-- ARGV[4]  the new order id         ARGV[5]  the member id
-- ARGV[6]  the order document (JSON: lines with prices, total)
-- ARGV[7]  idempotency record ttl (s)   ARGV[8]  order record ttl (s)   ARGV[9]  number of lines n
-- ARGV[10+4(i-1)], +1, +2, +3   line i: product id, quantity, per-member limit (-1 none), sales start ms (-1 none)
-- Returns  {'REPLAY', state, outcome, order}  the key was used before with the same request
--          {'REUSED'}                          the key was used before with another request
--          {'LOAD', i}                         line i's stock is not in Redis: load it and call again
--          {'REFUSED', outcome}                NOT_ON_SALE / OUT_OF_STOCK / PURCHASE_LIMIT_EXCEEDED (stored)
--          {'RESERVED', available_1, version_1, ..., available_n, version_n}
local idem = redis.call('HMGET', KEYS[1], 'fp', 'state', 'outcome', 'order')
if idem[1] then
  if idem[1] ~= ARGV[1] then
    return {'REUSED'}
  end
  return {'REPLAY', idem[2] or '', idem[3] or '', idem[4] or ''}
end

local now, n, member = tonumber(ARGV[2]), tonumber(ARGV[9]), ARGV[5]

local function refuse(outcome)
  local encoded = cjson.encode(outcome)
  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'DONE', 'outcome', encoded)
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[7]))
  return {'REFUSED', encoded}
end

-- Pass 1: check every line; nothing is written unless all pass.
for i = 1, n do
  local a, k = 10 + 4 * (i - 1), 5 + 3 * (i - 1)
  local product, qty = ARGV[a], tonumber(ARGV[a + 1])
  local limit, start = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local available = redis.call('HGET', KEYS[k], 'available')
  if not available then
    return {'LOAD', i}
  end
  if start >= 0 and now < start then
    return refuse({code = 'NOT_ON_SALE', productId = product, salesStartMs = start})
  end
  available = tonumber(available)
  if available < qty then
    return refuse({code = 'OUT_OF_STOCK', productId = product, available = available})
  end
  if limit >= 0 then
    local held = tonumber(redis.call('HGET', KEYS[k + 1], member) or '0')
    if held + qty > limit then
      return refuse({code = 'PURCHASE_LIMIT_EXCEEDED', productId = product, held = held, limit = limit})
    end
  end
end

-- Pass 2: take the units, count them against the member, and record the hold per product.
local order = ARGV[4]
local result = {'RESERVED'}
for i = 1, n do
  local a, k = 10 + 4 * (i - 1), 5 + 3 * (i - 1)
  local qty = tonumber(ARGV[a + 1])
  redis.call('HINCRBY', KEYS[k], 'reserved', qty)
  local left = redis.call('HINCRBY', KEYS[k], 'available', -qty)
  local version = redis.call('HINCRBY', KEYS[k], 'version', 1)
  redis.call('HINCRBY', KEYS[k + 1], member, qty)
  redis.call('HSET', KEYS[k + 2], order, member .. ':' .. qty)
  result[#result + 1] = left
  result[#result + 1] = version
end
redis.call('HSET', KEYS[2], 'member', member, 'status', 'PENDING', 'created', ARGV[2], 'expires', ARGV[3],
           'doc', ARGV[6])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[8]))
redis.call('ZADD', KEYS[3], tonumber(ARGV[3]), member .. ':' .. order)
redis.call('ZADD', KEYS[4], now, order)
redis.call('EXPIRE', KEYS[4], tonumber(ARGV[8]))
redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'IN_FLIGHT', 'order', order, 'started', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[7]))
return result
