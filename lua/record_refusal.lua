-- Store a refusal decided without a claim (the sold-out fast path of goodsdrop.reservations) under
-- the buyer's Idempotency-Key, unless the key was used meanwhile. One key: the member's slot.
-- KEYS[1]  the member's idempotency record for this key (hash: fp, state, outcome, order, started)
-- ARGV[1]  the request's fingerprint   ARGV[2]  the refusal (JSON)   ARGV[3]  record ttl (s)
-- Returns  {ClaimAnswer.REFUSED = 'REFUSED', outcome} stored now (IdempotencyState.DONE = 'DONE'), or,
--          as claim_order.lua, {ClaimAnswer.REPLAY = 'REPLAY', state, outcome, order} /
--          {ClaimAnswer.REUSED = 'REUSED'} when the key was used in between. (The names are goodsdrop.codes'.)
local idem = redis.call('HMGET', KEYS[1], 'fp', 'state', 'outcome', 'order')
if idem[1] then
  if idem[1] ~= ARGV[1] then
    return {'REUSED'}
  end
  return {'REPLAY', idem[2] or '', idem[3] or '', idem[4] or ''}
end
redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'DONE', 'outcome', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return {'REFUSED', ARGV[2]}
