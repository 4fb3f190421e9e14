-- The salt from which a rotated refresh token's successor is derived (with the rotated
-- token itself as the key), so that a repeat presentation within
-- tokens.refresh_reuse_interval can be answered with the same successor without storing it.
ALTER TABLE refresh_tokens ADD COLUMN successor_salt TEXT;
