-- Cache a product's detail document unless the cache already holds a newer one.
-- KEYS[1]  the product's detail key (keys.product_detail): a JSON document with a `stamp` field
-- ARGV[1]  the document (JSON) to cache
-- ARGV[2]  its stamp: the row's updated_at in epoch milliseconds
-- ARGV[3]  time to live in seconds
-- Returns  1 when the document was cached, 0 when a newer one was kept.
-- A reader that loaded the row just before a seller's edit committed therefore can never put
-- the old document back over the edited one.
local current = redis.call('GET', KEYS[1])
if current then
  local ok, doc = pcall(cjson.decode, current)
  if ok and type(doc) == 'table' and tonumber(doc['stamp']) and tonumber(doc['stamp']) > tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[3]))
return 1
