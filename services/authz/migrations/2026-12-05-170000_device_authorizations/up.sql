-- The Device Authorization Grant (RFC 8628): one row per device authorization request.
-- Portable SQL for SQLite and PostgreSQL; times are Unix seconds. Both codes are secrets
-- and stored only as digests: `device_code_hash` is the digest of the device_code (time
-- prefix plus SHA-256, like authorization codes), `user_code_hash` the SHA-256 (hex) of the
-- canonical user code (8 characters, no hyphen).
--
-- `status`: pending -> approved | denied; approved -> redeemed (once, by the conditional
-- UPDATE that wins; `grant_id` then names what was issued). `poll_interval` is the
-- interval the device must respect; each `slow_down` adds 5 s to it (RFC 8628 §3.5).
-- `last_polled_at` is the last poll at the token endpoint. On approval idp's answer is
-- kept: the user (`subject`), idp's session and the authentication (`auth_time`, `amr`,
-- `acr`), and `sid`, the session id the tokens carry.
CREATE TABLE device_authorizations (
    device_code_hash TEXT PRIMARY KEY NOT NULL,
    user_code_hash TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    status TEXT NOT NULL,
    poll_interval BIGINT NOT NULL,
    last_polled_at BIGINT,
    subject TEXT,
    idp_session_id TEXT,
    sid TEXT,
    auth_time BIGINT,
    amr TEXT,
    acr TEXT,
    grant_id TEXT REFERENCES grants (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX device_authorizations_expires ON device_authorizations (expires_at);
