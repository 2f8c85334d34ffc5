-- The seller's order desk, returns as requests, and taking products off sale (issues 20 and 15).
--
-- Order lines learn when they were delivered (the return window counts from then) and when a
-- return was requested and decided (the seller accepts or refuses on receipt). Lines delivered
-- before this migration have no delivered_at: their window counts from updated_at.
ALTER TABLE order_products
  ADD COLUMN delivered_at        DATETIME(3) NULL,
  ADD COLUMN return_requested_at DATETIME(3) NULL,
  ADD COLUMN return_decided_at   DATETIME(3) NULL,
  -- The desk pages a seller's lines newest first, per product and status.
  ADD KEY ix_order_products_product_created (product_id, created_at),
  ADD KEY ix_order_products_product_status (product_id, delivery_status, created_at);

-- A deleted product stays as a row (its id may be in carts, refunds and ledger rows) but is
-- never listed again; only a product nothing was ever ordered of can be deleted.
ALTER TABLE products ADD COLUMN deleted_at DATETIME(3) NULL;
