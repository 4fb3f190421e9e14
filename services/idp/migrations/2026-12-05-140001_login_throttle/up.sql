-- Login throttling shared by every idp replica (OWASP ASVS V2.2.1). Portable SQL for
-- SQLite and PostgreSQL; times are Unix milliseconds.
--
-- login_throttle: one failure counter per key, where a key is the resolved account
-- ('user:' + user id), a login name that resolves to no account ('name:' + the normalised
-- name) or a client address ('addr:' + the IPv4 address or the IPv6 /64). Attempts refused
-- while blocked count as failures too. A row without a failure for
-- login_throttle.reset_after is forgotten (and purged in the background).
CREATE TABLE login_throttle (
    id TEXT PRIMARY KEY NOT NULL,
    failures BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL,
    blocked_until BIGINT NOT NULL
);

CREATE INDEX login_throttle_last_failure_at ON login_throttle (last_failure_at);

-- login_devices: the "device cookies" of OWASP's brute-force guidance. A successful
-- password login gives the browser a random token (only its SHA-256, hex, is stored here)
-- bound to the account and to the network the login came from (IPv4 /24, IPv6 /64); with
-- it, the right password still signs that account in while the account is throttled.
CREATE TABLE login_devices (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    network TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX login_devices_user_id ON login_devices (user_id);
CREATE INDEX login_devices_expires_at ON login_devices (expires_at);
