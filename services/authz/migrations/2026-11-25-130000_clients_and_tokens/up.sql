-- Client registry and the token state the server must remember. Portable SQL for SQLite
-- and PostgreSQL; times are Unix seconds; lists are JSON arrays or space-separated.
CREATE TABLE clients (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    auth_method TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    scopes TEXT NOT NULL,
    audiences TEXT NOT NULL,
    access_token_format TEXT NOT NULL,
    token_lifetimes TEXT NOT NULL,
    signing_alg TEXT,
    first_party BOOLEAN NOT NULL,
    can_introspect BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- SHA-256 (hex) of generated high-entropy secrets; several while a rotation's grace
-- period runs, each with its expiry.
CREATE TABLE client_secrets (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT
);
CREATE INDEX client_secrets_client ON client_secrets (client_id);

-- Opaque access tokens, by SHA-256 (hex) of the token; the token itself is never stored.
CREATE TABLE opaque_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    jti TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    scope TEXT NOT NULL,
    audience TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX opaque_tokens_expires ON opaque_tokens (expires_at);

-- Revoked JWT access tokens (RFC 7009), kept until the token would have expired.
CREATE TABLE revoked_jtis (
    jti TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_jtis_expires ON revoked_jtis (expires_at);
