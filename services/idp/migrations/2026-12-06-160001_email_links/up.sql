-- Email links and their rate limits (issue 21: self-registration, password reset, email
-- change). Portable SQL for SQLite and PostgreSQL; times are Unix seconds.
--
-- email_links: the single-use tokens of the links idp mails. Only the SHA-256 (hex) of a
-- token is stored, never the token. `purpose` says what the link does ('reset', 'signup',
-- 'email_change'); `user_id` is the account it acts on (none for a sign-up, whose account
-- does not exist until the link is followed); `email` is the address the link was sent to;
-- `payload` holds what the purpose needs beyond that (a pending sign-up's username and
-- password hash, as JSON). A link is deleted when used, so it works once.
CREATE TABLE email_links (
    token_hash TEXT PRIMARY KEY NOT NULL,
    purpose TEXT NOT NULL,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    payload TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX email_links_user_id ON email_links (user_id);
CREATE INDEX email_links_expires_at ON email_links (expires_at);

-- email_rate: fixed-window counters of the forms that send mail, per client address and
-- per email address ('<purpose>:addr:<ip or /64>', '<purpose>:email:<sha256 of the
-- address>'); a window older than the configured one starts again from zero.
CREATE TABLE email_rate (
    id TEXT PRIMARY KEY NOT NULL,
    window_start BIGINT NOT NULL,
    count BIGINT NOT NULL
);

CREATE INDEX email_rate_window_start ON email_rate (window_start);
