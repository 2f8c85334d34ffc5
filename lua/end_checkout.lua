-- End the checkout of the member's cart by one order: when it was bought, the bought units leave
-- the cart (a line the member raised meanwhile keeps the rest); else the cart stays as it is.
-- KEYS[1]  the cart's checkout marker (hash: order, digest, lines)  KEYS[2]  the member's cart (hash)
-- ARGV[1]  the order id   ARGV[2]  CheckoutEnd.BOUGHT = 'bought' or CheckoutEnd.RELEASED = 'released'
-- Returns  1 when the marker was this order's (and is gone now), 0 when it was not (nothing changed).
-- (The names are goodsdrop.codes'.)
local held = redis.call('HMGET', KEYS[1], 'order', 'lines')
if held[1] ~= ARGV[1] then
  return 0
end
if ARGV[2] == 'bought' and held[2] then
  for product, quantity in pairs(cjson.decode(held[2])) do
    local current = tonumber(redis.call('HGET', KEYS[2], product) or '0')
    if current > 0 then
      local left = current - tonumber(quantity)
      if left > 0 then
        redis.call('HSET', KEYS[2], product, left)
      else
        redis.call('HDEL', KEYS[2], product)
      end
    end
  end
end
redis.call('DEL', KEYS[1])
return 1
