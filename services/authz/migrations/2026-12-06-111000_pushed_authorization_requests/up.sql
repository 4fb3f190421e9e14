-- PAR: Pushed Authorization Requests (RFC 9126). Portable SQL for SQLite and PostgreSQL;
-- times are Unix seconds.
--
-- A pushed request is stored under the SHA-256 (hex) of the random part of its
-- `request_uri`; `parameters` is the JSON array of its [name, value] pairs (client
-- authentication parameters removed). It is deleted when used (single use, RFC 9126 §4)
-- and purged once expired.
CREATE TABLE pushed_requests (
    request_hash TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    parameters TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX pushed_requests_expires ON pushed_requests (expires_at);

-- The client must push its authorization requests (RFC 9126 §6,
-- `require_pushed_authorization_requests`).
ALTER TABLE clients ADD COLUMN require_pushed_authorization_requests BOOLEAN NOT NULL DEFAULT FALSE;
