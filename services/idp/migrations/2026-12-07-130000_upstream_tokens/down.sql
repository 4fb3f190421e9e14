ALTER TABLE upstream_pending DROP COLUMN tokens;
ALTER TABLE upstream_identities DROP COLUMN tokens_updated_at;
ALTER TABLE upstream_identities DROP COLUMN tokens;
