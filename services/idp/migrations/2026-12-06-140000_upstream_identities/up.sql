-- Sign-in through upstream identity providers (OpenID Connect, Google, GitHub). Portable
-- SQL for SQLite and PostgreSQL; times are Unix seconds.
--
-- upstream_identities: an upstream account linked to a local user, unique per
-- (provider, subject): one upstream account signs in to one local account only. The
-- upstream's subject stays here; the local user id is the only `sub` relying parties see.
CREATE TABLE upstream_identities (
    provider TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email TEXT,
    created_at BIGINT NOT NULL,
    last_login_at BIGINT NOT NULL,
    PRIMARY KEY (provider, subject)
);

CREATE INDEX upstream_identities_user_id ON upstream_identities (user_id);

-- upstream_flows: one row per redirect to an upstream, found by the SHA-256 (hex) of the
-- `state` sent, and deleted when the callback reads it (single use). It is bound to the
-- browser (the SHA-256 of its CSRF cookie) and holds the PKCE verifier and the nonce the
-- callback checks. A login flow carries the authz login_challenge; a link flow the
-- signed-in user it links to.
CREATE TABLE upstream_flows (
    state_hash TEXT PRIMARY KEY NOT NULL,
    provider TEXT NOT NULL,
    browser_hash TEXT NOT NULL,
    login_challenge TEXT,
    link_user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX upstream_flows_expires_at ON upstream_flows (expires_at);

-- upstream_pending: an upstream identity that signed in for the first time, waiting for the
-- setup step (choose a username, or prove the account with the same verified email). Found
-- by the SHA-256 (hex) of a random id given to the same browser only; `claims` is the
-- mapped profile as JSON. Deleted when the setup completes.
CREATE TABLE upstream_pending (
    id_hash TEXT PRIMARY KEY NOT NULL,
    provider TEXT NOT NULL,
    subject TEXT NOT NULL,
    browser_hash TEXT NOT NULL,
    login_challenge TEXT NOT NULL,
    claims TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX upstream_pending_expires_at ON upstream_pending (expires_at);
