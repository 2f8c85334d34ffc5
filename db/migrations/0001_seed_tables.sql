-- The seed shop's tables (shared/seed-summary.md), in MySQL 8 / MariaDB 10.11 compatible SQL.
-- Money is BIGINT in won; times are UTC DATETIME(3).

CREATE TABLE members (
  id             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  email          VARCHAR(254) NOT NULL,
  password_hash  VARCHAR(255) NOT NULL,
  name           VARCHAR(100) NOT NULL,
  phone          VARCHAR(30)  NULL,
  address        VARCHAR(255) NULL,
  email_verified TINYINT(1)   NOT NULL DEFAULT 0,
  role           VARCHAR(16)  NOT NULL DEFAULT 'member',
  created_at     DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at     DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  UNIQUE KEY uq_members_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE sellers (
  member_id           BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  shop_name           VARCHAR(100) NOT NULL,
  address             VARCHAR(255) NOT NULL,
  contact_number      VARCHAR(30)  NOT NULL,
  registration_number VARCHAR(20)  NOT NULL,
  created_at          DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at          DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  UNIQUE KEY uq_sellers_registration (registration_number),
  CONSTRAINT fk_sellers_member FOREIGN KEY (member_id) REFERENCES members (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE products (
  id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  seller_id        BIGINT UNSIGNED NOT NULL,
  name             VARCHAR(200) NOT NULL,
  description      TEXT         NOT NULL,
  price            BIGINT UNSIGNED NOT NULL,
  sales_start_at   DATETIME(3)  NULL,
  per_member_limit INT UNSIGNED NULL,
  listed           TINYINT(1)   NOT NULL DEFAULT 1,
  created_at       DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at       DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  KEY ix_products_seller (seller_id, created_at),
  KEY ix_products_price (price),
  KEY ix_products_created (created_at),
  KEY ix_products_sales_start (sales_start_at),
  FULLTEXT KEY ft_products_text (name, description),
  CONSTRAINT fk_products_seller FOREIGN KEY (seller_id) REFERENCES sellers (member_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Units not yet sold. Redis holds the live split into available + reserved.
CREATE TABLE stock (
  product_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  count      INT UNSIGNED NOT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  KEY ix_stock_count (count),
  CONSTRAINT fk_stock_product FOREIGN KEY (product_id) REFERENCES products (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE payments (
  id         CHAR(26)        NOT NULL PRIMARY KEY,
  order_id   CHAR(26)        NOT NULL,
  member_id  BIGINT UNSIGNED NOT NULL,
  amount     BIGINT UNSIGNED NOT NULL,
  status     VARCHAR(16)     NOT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  KEY ix_payments_order (order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE orders (
  id             CHAR(26)        NOT NULL PRIMARY KEY,
  member_id      BIGINT UNSIGNED NOT NULL,
  payment_id     CHAR(26)        NULL,
  status         VARCHAR(16)     NOT NULL,
  failure_reason VARCHAR(64)     NULL,
  total_price    BIGINT UNSIGNED NOT NULL,
  created_at     DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at     DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  KEY ix_orders_member (member_id, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE order_products (
  order_id        CHAR(26)        NOT NULL,
  product_id      BIGINT UNSIGNED NOT NULL,
  count           INT UNSIGNED    NOT NULL,
  price           BIGINT UNSIGNED NOT NULL,
  delivery_status VARCHAR(16)     NOT NULL DEFAULT 'PREPARING',
  created_at      DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at      DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (order_id, product_id),
  KEY ix_order_products_product (product_id),
  CONSTRAINT fk_order_products_order FOREIGN KEY (order_id) REFERENCES orders (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Idempotent consumers: one row per (consumer, event) written in the same transaction as the effect.
CREATE TABLE processed_events (
  consumer     VARCHAR(64) NOT NULL,
  event_id     CHAR(36)    NOT NULL,
  processed_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (consumer, event_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
