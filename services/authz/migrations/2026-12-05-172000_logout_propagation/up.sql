-- Logout propagation (OpenID Connect Back-Channel Logout 1.0 §2.2, Front-Channel Logout
-- 1.0 §2): the clients' logout endpoints, and the stored queue of back-channel logout
-- deliveries. Portable SQL for SQLite and PostgreSQL; times are Unix seconds.

-- logout: client metadata, one JSON object (diesel tables stay within 16 columns):
-- {"backchannel_logout_uri": S|null, "backchannel_logout_session_required": B,
--  "frontchannel_logout_uri": S|null, "frontchannel_logout_session_required": B}.
ALTER TABLE clients ADD COLUMN logout TEXT NOT NULL DEFAULT '{}';

-- One back-channel logout token to deliver (§2.5): to whom (`client_id`, `uri` as
-- registered when the logout happened), about which session (`sid`) and End-User
-- (`subject`), with the token's `jti` (the token itself is signed at each attempt, with the
-- then current key). Delivered rows are deleted; a row is dropped once `attempts` reaches
-- the configured maximum or `expires_at` passes. `next_attempt_at` is also the lease of the
-- replica delivering it.
CREATE TABLE logout_deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    uri TEXT NOT NULL,
    subject TEXT NOT NULL,
    sid TEXT NOT NULL,
    jti TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_error TEXT
);
CREATE INDEX logout_deliveries_due ON logout_deliveries (next_attempt_at);
