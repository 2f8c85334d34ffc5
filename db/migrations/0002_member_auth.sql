-- Members, authentication and sellers (issue 3).
-- Every secret token is stored only as its SHA-256 (hex): a leaked table gives no usable token.

-- Email verification links: single use, 24 h. `used_at` is set on use (or when another link of
-- the same member verified the address).
CREATE TABLE email_verifications (
  token_hash CHAR(64)        NOT NULL PRIMARY KEY,
  member_id  BIGINT UNSIGNED NOT NULL,
  expires_at DATETIME(3)     NOT NULL,
  used_at    DATETIME(3)     NULL,
  created_at DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  KEY ix_email_verifications_member (member_id),
  CONSTRAINT fk_email_verifications_member FOREIGN KEY (member_id) REFERENCES members (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A login session = one refresh-token family. Access tokens carry its id (`sid`); revoking the
-- session (logout, reuse of a rotated refresh token, password change) ends the whole family.
CREATE TABLE auth_sessions (
  id             CHAR(32)        NOT NULL PRIMARY KEY,
  member_id      BIGINT UNSIGNED NOT NULL,
  expires_at     DATETIME(3)     NOT NULL,
  revoked_at     DATETIME(3)     NULL,
  revoked_reason VARCHAR(32)     NULL,
  created_at     DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at     DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  KEY ix_auth_sessions_member (member_id, revoked_at),
  KEY ix_auth_sessions_expires (expires_at),
  CONSTRAINT fk_auth_sessions_member FOREIGN KEY (member_id) REFERENCES members (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Refresh tokens of a session. Each works once: rotation sets `used_at` and issues the next one.
-- Rotated tokens are kept (until the session is purged) so that a replay is recognised as theft.
CREATE TABLE refresh_tokens (
  token_hash CHAR(64)    NOT NULL PRIMARY KEY,
  session_id CHAR(32)    NOT NULL,
  expires_at DATETIME(3) NOT NULL,
  used_at    DATETIME(3) NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  KEY ix_refresh_tokens_session (session_id),
  CONSTRAINT fk_refresh_tokens_session FOREIGN KEY (session_id) REFERENCES auth_sessions (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A shop name identifies a seller to buyers: unique (case-insensitively, by the collation).
ALTER TABLE sellers ADD UNIQUE KEY uq_sellers_shop_name (shop_name);
