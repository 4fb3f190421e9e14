-- Users of the identity provider. Portable SQL for SQLite and PostgreSQL; times are Unix
-- seconds. `id` is the stable, opaque OIDC `sub`. Usernames and emails are stored in the
-- normalised (lower-case) form used for look-ups.
CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    username TEXT NOT NULL UNIQUE,
    email TEXT UNIQUE,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    name TEXT,
    given_name TEXT,
    family_name TEXT,
    picture TEXT,
    locale TEXT,
    password_hash TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
