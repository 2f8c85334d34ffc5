-- Begin a checkout of the member's cart: mark the cart as being bought by one order, with a snapshot
-- of its lines, atomically (a second checkout of the same lines is refused until this one ends).
-- KEYS[1]  the cart's checkout marker (hash: order, digest, lines)  KEYS[2]  the member's cart (hash)
-- ARGV[1]  the new order id   ARGV[2]  the request's Idempotency-Key digest   ARGV[3]  the marker's TTL (s)
-- Returns  {CheckoutCode.TAKEN = 1, order, lines JSON}  the marker is this order's now (lines: the
--          cart's snapshot, {productId: quantity}); {CheckoutCode.SAME = 0, order, lines JSON} a retry of
--          the request that holds the marker (same digest); {CheckoutCode.BUSY = -1, order} another
--          order of the cart is still pending.
-- (The names are goodsdrop.codes'.)
local held = redis.call('HMGET', KEYS[1], 'order', 'digest', 'lines')
if held[1] then
  if held[2] == ARGV[2] then
    return {0, held[1], held[3] or '{}'}
  end
  return {-1, held[1]}
end
local flat = redis.call('HGETALL', KEYS[2])
local lines = {}
for i = 1, #flat, 2 do
  lines[flat[i]] = tonumber(flat[i + 1])
end
local encoded = '{}'
if #flat > 0 then
  encoded = cjson.encode(lines)
end
redis.call('HSET', KEYS[1], 'order', ARGV[1], 'digest', ARGV[2], 'lines', encoded)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return {1, ARGV[1], encoded}
