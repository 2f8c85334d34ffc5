-- One login throttle (goodsdrop.sessions): reserve an attempt BEFORE the password is checked, or
-- give a reservation back. Counting first and in one step is what bounds the password checks: of
-- any number of parallel guesses, no more than the limit are let through to scrypt.
-- KEYS[1]  the throttle, a hash: n = attempts counted in its window, last = ms of the latest one
-- ARGV[1]  "take" or "give_back" (a successful login returns its reservation)
-- ARGV[2]  now, epoch milliseconds (the caller's clock, like lua/take_token.lua)
-- ARGV[3]  limit: attempts in one window; beyond it every attempt is refused until the window ends
-- ARGV[4]  window in ms: the key's life, from the first attempt, or from the latest when ARGV[8] is "1"
-- ARGV[5]  free: attempts counted before delays start (= limit: no delays)
-- ARGV[6]  the first delay in ms; it doubles with every further attempt
-- ARGV[7]  the longest delay in ms
-- ARGV[8]  "1": every attempt renews the window (the throttle lasts while the attack does)
-- Returns  {1, 0} when reserved (or given back), {0, ms to wait} when refused (nothing counted).
local seen = redis.call('HMGET', KEYS[1], 'n', 'last')
local n = tonumber(seen[1] or '0')
if ARGV[1] == 'give_back' then
  if n > 0 then
    redis.call('HINCRBY', KEYS[1], 'n', -1)
  end
  return {1, 0}
end
local now, limit, free = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[5])
if n >= limit then
  return {0, math.max(redis.call('PTTL', KEYS[1]), 1)}
end
if n >= free then
  local delay = math.min(tonumber(ARGV[6]) * 2 ^ (n - free), tonumber(ARGV[7]))
  local ready = tonumber(seen[2] or '0') + delay
  if now < ready then
    return {0, math.ceil(ready - now)}
  end
end
redis.call('HSET', KEYS[1], 'n', n + 1, 'last', now)
if n == 0 or ARGV[8] == '1' then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
end
return {1, 0}
