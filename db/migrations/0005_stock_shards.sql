-- Sharded live stock for hot drops (goodsdrop.stock): a product's Redis stock may be split over
-- 1..16 shards, each its own Redis Cluster slot. Chosen at creation (POST /products `stockShards`)
-- and never changed afterwards: the Redis keys of a product's stock depend on it.
ALTER TABLE products ADD COLUMN stock_shards TINYINT UNSIGNED NOT NULL DEFAULT 1;
