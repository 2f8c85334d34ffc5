-- Take a product off sale in one stock shard, or put it back on sale, and count the holds left there.
-- While the closed marker exists, lua/take_units.lua takes no new hold in this shard (a hold taken
-- before stays and settles as usual: sold, released, expired). Closing and counting in one step
-- lets a delete know that no reservation can appear after it looked.
-- KEYS[1]  the shard's closed marker (keys.stock_closed)   KEYS[2]  the shard's holds hash (order -> "member:units")
-- ARGV[1]  '1' close (off sale), '0' open (on sale again)
-- Returns  the number of open holds in this shard (reservations not yet sold or released).
if ARGV[1] == '1' then
  redis.call('SET', KEYS[1], '1')
else
  redis.call('DEL', KEYS[1])
end
return redis.call('HLEN', KEYS[2])
