-- The order saga's durable records (goodsdrop.ledger, goodsdrop.saga).
-- Money is BIGINT in won; times are UTC DATETIME(3).

-- The reservation ledger: every reservation the hot path made in Redis, recorded by the first
-- saga consumer (payments) before any money moves. OPEN until the sale is persisted (CONSUMED)
-- or the units go back to stock (RELEASED: declined, failed, expired, aborted). A rebuild of
-- Redis stock counts the OPEN rows as held units; every saga step locks its row first.
CREATE TABLE reservations (
  order_id     CHAR(26)        NOT NULL PRIMARY KEY,
  member_id    BIGINT UNSIGNED NOT NULL,
  state        VARCHAR(16)     NOT NULL,
  reason       VARCHAR(64)     NULL,
  total_price  BIGINT UNSIGNED NOT NULL,
  reserved_at  DATETIME(3)     NOT NULL,
  expires_at   DATETIME(3)     NOT NULL,
  created_at   DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at   DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  KEY ix_reservations_open (state, expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE reservation_lines (
  order_id   CHAR(26)        NOT NULL,
  product_id BIGINT UNSIGNED NOT NULL,
  quantity   INT UNSIGNED    NOT NULL,
  price      BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (order_id, product_id),
  KEY ix_reservation_lines_product (product_id, order_id),
  CONSTRAINT fk_reservation_lines_reservation FOREIGN KEY (order_id) REFERENCES reservations (order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One payment per order (the gateway charge is idempotent by order id).
ALTER TABLE payments ADD UNIQUE KEY uq_payments_order (order_id);

-- Refunds: the whole order (compensation, cancel) or one line (line cancel, return).
CREATE TABLE refunds (
  id         VARCHAR(80)     NOT NULL PRIMARY KEY,
  order_id   CHAR(26)        NOT NULL,
  product_id BIGINT UNSIGNED NULL,
  amount     BIGINT UNSIGNED NOT NULL,
  reason     VARCHAR(32)     NOT NULL,
  created_at DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  KEY ix_refunds_order (order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- When the order became CONFIRMED (the saga's reserve→CONFIRMED latency is measured on it).
ALTER TABLE orders ADD COLUMN confirmed_at DATETIME(3) NULL;
ALTER TABLE orders ADD KEY ix_orders_member_status (member_id, status, created_at);

-- When a cancelled or returned line's units went back to stock (NULL: still sold / not yet).
ALTER TABLE order_products ADD COLUMN restocked_at DATETIME(3) NULL;
