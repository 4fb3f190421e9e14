-- dcr: Dynamic Client Registration (RFC 7591) and its management protocol (RFC 7592).
-- Portable SQL for SQLite and PostgreSQL; times are Unix seconds.
--
-- Initial access tokens (RFC 7591 §3) minted by an operator: only the SHA-256 (hex) of the
-- token is stored. `scope` (space-separated) is the most a client registered with it may
-- ask for; `uses_left` is decremented by the registration that uses it, inside the
-- registration's transaction, and only while it is positive and the token unexpired.
CREATE TABLE registration_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    scope TEXT NOT NULL,
    uses_left BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- One row per dynamically registered client: the SHA-256 (hex) of its registration access
-- token (RFC 7592 §3, rotated on every update) and the initial access token it was
-- registered with (NULL: open registration, or that token has been revoked since).
CREATE TABLE client_registrations (
    client_id TEXT PRIMARY KEY NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    access_token_hash TEXT NOT NULL,
    registration_token_id TEXT REFERENCES registration_tokens (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
