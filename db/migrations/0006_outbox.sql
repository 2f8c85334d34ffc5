-- The transactional outbox (goodsdrop.outbox): saga events written in the same transaction as the
-- change they announce, published to Kafka after the commit (fast path) or by the relay's sweep.
-- `topic` is the short topic name (goodsdrop.topics, without the deployment's prefix); `body` the
-- Envelope's JSON bytes with its event id (kept in `event_id` too, for support queries).
CREATE TABLE outbox (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  topic       VARCHAR(64)     NOT NULL,
  message_key VARCHAR(255)    NOT NULL,
  event_id    VARCHAR(64)     NOT NULL,
  body        MEDIUMBLOB      NOT NULL,
  created_at  DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  sent_at     DATETIME(3)     NULL,
  KEY ix_outbox_unsent (sent_at, created_at),
  KEY ix_outbox_key (message_key, sent_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
