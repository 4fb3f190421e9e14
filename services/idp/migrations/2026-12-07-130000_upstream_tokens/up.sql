-- Upstream tokens kept for providers with `store_tokens` (docs/guides/upstream-login.md).
-- Portable SQL for SQLite and PostgreSQL; times are Unix seconds.
--
-- upstream_identities.tokens: the upstream's access, refresh and ID tokens of the last
-- sign-in through this identity, as JSON sealed with AES-256-GCM under
-- `upstreams.token_key` (base64 of nonce, ciphertext and tag; the provider and subject are
-- the additional authenticated data). NULL when the provider does not store tokens. The
-- row's deletion (unlink, account deletion through the users cascade) deletes them.
ALTER TABLE upstream_identities ADD COLUMN tokens TEXT;
ALTER TABLE upstream_identities ADD COLUMN tokens_updated_at BIGINT;

-- upstream_pending.tokens: the same, sealed, for a first login waiting for its setup step;
-- moved to the identity when the setup completes, gone with the row otherwise.
ALTER TABLE upstream_pending ADD COLUMN tokens TEXT;
