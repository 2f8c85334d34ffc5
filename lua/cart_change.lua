-- Change one line of a member's cart: check the limits and write in one atomic step, and renew
-- the cart's sliding TTL whenever something changed. Concurrent adds never lose an update.
-- KEYS[1]  the member's cart hash (keys.cart): productId -> quantity
-- ARGV[1]  the product id (the hash field)
-- ARGV[2]  the change: "add" (add ARGV[3] to the line, creating it), "set" (set an existing line
--          to ARGV[3]; 0 removes it) or "remove" (delete the line; ARGV[3] is ignored)
-- ARGV[3]  the quantity (add: 1..99, set: 0..99)
-- ARGV[4]  the most the line may hold (min of the per-line maximum and the product's limit)
-- ARGV[5]  the most distinct lines the cart may hold
-- ARGV[6]  the cart's time to live in seconds (renewed on every change)
-- Returns  {0, quantity}  done: the line's quantity now (0 when the line is gone)
--          {1, quantity}  refused: the line would exceed ARGV[4]; its quantity now
--          {2, lines}     refused: a new line would exceed ARGV[5] lines; the lines now
--          {3, 0}         refused: "set" on a line that is not in the cart
local cart, field, change = KEYS[1], ARGV[1], ARGV[2]
local quantity, line_limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local max_lines, ttl = tonumber(ARGV[5]), tonumber(ARGV[6])

local current = tonumber(redis.call('HGET', cart, field) or '0')

if change == 'remove' or (change == 'set' and quantity == 0) then
  if current == 0 then
    return {change == 'set' and 3 or 0, 0}
  end
  redis.call('HDEL', cart, field)
  redis.call('EXPIRE', cart, ttl)  -- a no-op when that was the last line (the key is gone)
  return {0, 0}
end

local wanted = quantity
if change == 'add' then
  wanted = current + quantity
elseif current == 0 then
  return {3, 0}
end
if wanted > line_limit then
  return {1, current}
end
if current == 0 then
  local lines = redis.call('HLEN', cart)
  if lines >= max_lines then
    return {2, lines}
  end
end
redis.call('HSET', cart, field, wanted)
redis.call('EXPIRE', cart, ttl)
return {0, wanted}
