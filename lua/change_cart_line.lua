-- Add to, or set, one line of a member's cart atomically, within the cart's rules.
-- KEYS[1]  the member's cart hash (keys.cart): productId -> quantity
-- KEYS[2]  the member's held units (keys.member_held): productId -> units reserved + sold, not given back
-- KEYS[3]  the cart's checkout marker (keys.cart_checkout): exists while an order of the cart is pending
-- ARGV[1]  product id
-- ARGV[2]  mode: CartLineChange.ADD = 'add' (quantity += ARGV[3]) or CartLineChange.SET = 'set'
--          (quantity = ARGV[3] on a line already in the cart; 0 removes the line)
-- ARGV[3]  quantity
-- ARGV[4]  the product's per-member limit (0 = none)
-- ARGV[5]  most units of one product in a cart
-- ARGV[6]  most distinct lines in a cart
-- ARGV[7]  seconds the cart is kept after this change (sliding TTL)
-- Returns  the line's new quantity (0 = removed), CartLineCode.OVER_MEMBER_LIMIT = -1 a raise past the
--          per-member limit counting the units the member already holds or bought,
--          CartLineCode.CART_FULL = -2 the cart is full,
--          CartLineCode.OVER_LINE_MAXIMUM = -3 over the most units of a line,
--          CartLineCode.NOT_IN_CART = -4 "set" on a product that is not in the cart (checked here, so a
--          line removed by a concurrent request is never brought back by a "set"),
--          CartLineCode.CHECKOUT_PENDING = -5 an order of the cart is pending (its lines are being bought).
-- (The names are goodsdrop.codes'.)
if redis.call('EXISTS', KEYS[3]) == 1 then
  return -5
end
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if ARGV[2] == 'set' and current == 0 then
  return -4
end
local wanted = tonumber(ARGV[3])
if ARGV[2] == 'add' then
  wanted = current + wanted
end
if wanted > tonumber(ARGV[5]) then
  return -3
end
local limit = tonumber(ARGV[4])
if limit > 0 and wanted > current then
  -- only a raise is refused: a line may always come down towards what the limit leaves
  local held = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
  if held + wanted > limit then
    return -1
  end
end
if wanted == 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  if current == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[6]) then
    return -2
  end
  redis.call('HSET', KEYS[1], ARGV[1], wanted)
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[7])
end
return wanted
