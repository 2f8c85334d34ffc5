-- Catalogue search (goodsdrop.catalogue): every search filters on `listed = 1`, so the sort indexes
-- lead with it. Then "newest" and "price" pages are read in index order, the id-only page query
-- (deferred join) and the unfiltered COUNT are index-only scans, and deep pages stay cheap.
-- A seller's products sorted by price read (seller_id, price) instead of walking the whole price
-- index for the few rows of one seller. The old single-column sort indexes become redundant.
ALTER TABLE products
  ADD KEY ix_products_listed_created (listed, created_at),
  ADD KEY ix_products_listed_price (listed, price),
  ADD KEY ix_products_seller_price (seller_id, price),
  DROP KEY ix_products_created,
  DROP KEY ix_products_price;
