-- Session cookie digests change from base64url to lowercase hex SHA-256, the one format
-- every service stores secrets in (domain::secret::digest_hex). A base64url digest cannot
-- be re-encoded as hex in SQL that both SQLite and PostgreSQL run, so the existing
-- browser sessions end here: their users sign in again. Portable SQL.
DELETE FROM sessions;
