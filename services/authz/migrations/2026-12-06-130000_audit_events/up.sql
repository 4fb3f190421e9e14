-- The audit trail (issue 18): one row per admin write (admin API and CLI) and per security
-- event (sign-in success/failure, lockout, consent, token revocation, key and client
-- secret rotation). Portable SQL for SQLite and PostgreSQL; times are Unix milliseconds.
-- No column holds a secret: actions and reasons are fixed names, the rest identifiers and
-- a client address. Rows older than audit.retention are purged in the background.
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY NOT NULL,
    occurred_at BIGINT NOT NULL,
    -- admin_client | user | client | operator | system | anonymous
    actor_kind TEXT NOT NULL,
    actor_id TEXT,
    address TEXT,
    action TEXT NOT NULL,
    target_kind TEXT,
    target_id TEXT,
    -- success | failure
    outcome TEXT NOT NULL,
    reason TEXT
);

-- Listing is newest first with a (occurred_at, id) keyset; the purge scans by time.
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at, id);
CREATE INDEX audit_events_action ON audit_events (action, occurred_at);
CREATE INDEX audit_events_actor_id ON audit_events (actor_id, occurred_at);
CREATE INDEX audit_events_target_id ON audit_events (target_id, occurred_at);
