-- Token bucket: take one token from a bucket if it has one (goodsdrop.ratelimit.take_token).
-- One key per call, so every bucket lives in its own slot and the script is Redis-Cluster safe.
-- KEYS[1]  the bucket, a hash: tokens = tokens left (a decimal), ms = when they were counted
-- ARGV[1]  now, epoch milliseconds, from the caller (see goodsdrop.ratelimit for why not TIME)
-- ARGV[2]  refill rate, tokens per second (> 0)
-- ARGV[3]  burst: the bucket's capacity, the tokens a new or long-idle bucket holds (>= 1)
-- Returns  {1, 0} when a token was taken, or {0, ms} when the bucket is empty: ms until one
--          whole token is back (the caller's Retry-After).
local now = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ms')
local tokens, counted = tonumber(state[1]), tonumber(state[2])
if tokens == nil or counted == nil then
  tokens, counted = burst, now
end
-- A caller whose clock runs a little behind the last one's refills nothing (and owes nothing).
local elapsed = math.max(0, now - counted)
tokens = math.min(burst, tokens + elapsed * rate / 1000)
local taken = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ms', math.max(now, counted))
-- Once it would be full again the bucket is no different from no bucket: let Redis drop it then.
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
if taken == 1 then
  return {1, 0}
end
return {0, math.ceil((1 - tokens) * 1000 / rate)}
