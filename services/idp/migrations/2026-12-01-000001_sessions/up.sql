-- Browser sessions of the identity provider. Portable SQL for SQLite and PostgreSQL; times
-- are Unix seconds. `id` is the public session id handed to authz (AcceptLogin.session_id,
-- Sessions.CheckSession / EndSession); the browser holds a different random secret in an
-- HttpOnly cookie, stored here only as its SHA-256 (`secret_hash`, base64url). A session is
-- alive while `expires_at` (absolute lifetime) and `last_seen_at` + idle timeout are ahead.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time BIGINT NOT NULL,
    amr TEXT NOT NULL,
    acr TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
