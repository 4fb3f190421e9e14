-- account page: portable SQL for SQLite and PostgreSQL; times are Unix seconds.
--
-- retired_usernames: a username its owner changed away from stays reserved for that owner
-- (user_id) until held_until (account.username_hold), so nobody else can take it over
-- and be mistaken for them. No foreign key: the hold outlives a deleted account too.
CREATE TABLE retired_usernames (
    username TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    held_until BIGINT NOT NULL
);

CREATE INDEX retired_usernames_held_until ON retired_usernames (held_until);

-- revocation_outbox: revocations authz still has to perform, written in the same
-- transaction as the change that needs them (an account deletion: every grant of the
-- subject, client_id NULL) and delivered by a background task over LoginFlow with
-- retry and back-off, so they happen even when authz is down at that moment.
CREATE TABLE revocation_outbox (
    id TEXT PRIMARY KEY NOT NULL,
    subject TEXT NOT NULL,
    client_id TEXT,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL
);

CREATE INDEX revocation_outbox_next_attempt_at ON revocation_outbox (next_attempt_at);
