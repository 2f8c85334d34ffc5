-- Release a distributed lock only if we still hold it (compare the token, then delete).
-- KEYS[1]  the lock key   ARGV[1]  our token
-- Returns  1 released, 0 not ours (it expired and someone else holds it now).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
