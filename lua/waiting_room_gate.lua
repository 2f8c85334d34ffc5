-- The waiting room's gate on POST /orders for one product: counts the order attempt (demand),
-- opens the product's room when the attempts of this second pass the threshold (and keeps it
-- open while they stay above it), and tells whether the caller may order now.
-- Every key carries the product's hash tag, so the script stays within one cluster slot.
-- KEYS[1]  arrivals of the current second, a hash: second = epoch second, count = attempts in it
-- KEYS[2]  the room, a hash: opened = ms it opened (also the opening's identity), base = last
--          ticket issued before it opened; its TTL is the room's life (renewed while demand stays high)
-- KEYS[3]  the product's ticket sequence (INCR'd by lua/waiting_room_ticket.lua)
-- KEYS[4]  the caller's admission pass for this product (set by lua/waiting_room_ticket.lua): it
--          holds the `opened` of the room that admitted them and is good in that opening only
-- ARGV[1]  now, epoch milliseconds (the caller's clock)
-- ARGV[2]  threshold: attempts per second above which the room opens (0: never opened by demand)
-- ARGV[3]  milliseconds the room stays open after the last second above the threshold
-- Returns  1 when the caller may order (no room open, or a pass of this opening), 0 when the room
--          is open and the caller holds no pass for it (QUEUE_REQUIRED).
local now = tonumber(ARGV[1])
local threshold = tonumber(ARGV[2])
if threshold > 0 then
  local second = math.floor(now / 1000)
  local seen = redis.call('HMGET', KEYS[1], 'second', 'count')
  local count = 1
  if tonumber(seen[1]) == second then
    count = tonumber(seen[2]) + 1
  end
  redis.call('HSET', KEYS[1], 'second', second, 'count', count)
  redis.call('PEXPIRE', KEYS[1], 2000)
  if count > threshold then
    if redis.call('EXISTS', KEYS[2]) == 0 then
      redis.call('HSET', KEYS[2], 'opened', now, 'base', tonumber(redis.call('GET', KEYS[3]) or '0'))
    end
    redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]))
  end
end
local opened = redis.call('HGET', KEYS[2], 'opened')
if not opened or redis.call('GET', KEYS[4]) == opened then
  return 1
end
return 0
