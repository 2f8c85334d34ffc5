-- Rebuilding the Redis deny-list after Redis lost its data (goodsdrop.tokens.rebuild_deny_list)
-- reads the sessions revoked within an access token's life: an index on revoked_at keeps that
-- one range read instead of a scan of every session.
ALTER TABLE auth_sessions ADD KEY ix_auth_sessions_revoked (revoked_at);
