-- Undo a claim (claim_order.lua) whose units could not be taken, or whose OrderRequested could not
-- be published: the member's `held` counts come back (once per line), the order record is marked,
-- and the Idempotency-Key either keeps the refusal (a replay answers the same) or is forgotten.
-- Every key is the member's: one slot.
-- KEYS[1]  the idempotency record   KEYS[2]  the order record   KEYS[3]  the member's pending orders
-- KEYS[4]  the member's held units  KEYS[5]  the order's held-returned marker (hash productId -> 1)
-- ARGV[1]  order id   ARGV[3]  reason
-- ARGV[2]  record status: RecordStatus.REFUSED = 'REFUSED' or RecordStatus.ABORTED = 'ABORTED'
--          (the key keeps IdempotencyState.DONE = 'DONE' with the outcome; the names are goodsdrop.codes')
-- ARGV[4]  the stored outcome (JSON), or '' to forget the key   ARGV[5]  idempotency ttl (s)
-- ARGV[6]  marker ttl (s)   ARGV[7]  number of lines n, then n x (product id, units)
-- Returns  the number of lines whose units went back to `held` now.
local returned = 0
local p = 8
for _ = 1, tonumber(ARGV[7]) do
  local product, units = ARGV[p], tonumber(ARGV[p + 1])
  p = p + 2
  if redis.call('HSETNX', KEYS[5], product, '1') == 1 then
    returned = returned + 1
    if redis.call('HINCRBY', KEYS[4], product, -units) <= 0 then
      redis.call('HDEL', KEYS[4], product)
    end
  end
end
redis.call('EXPIRE', KEYS[5], tonumber(ARGV[6]))
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'status', ARGV[2], 'reason', ARGV[3])
end
redis.call('ZREM', KEYS[3], ARGV[1])
if ARGV[4] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'state', 'DONE', 'outcome', ARGV[4])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
end
return returned
