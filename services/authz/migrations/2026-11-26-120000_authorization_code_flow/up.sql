-- The authorization code flow: pending authorization requests with their login/consent
-- challenges, authz's browser sessions, remembered consent, authorization codes, grants
-- (one per redeemed code: the family of every token issued from it) with their refresh
-- tokens and the access tokens issued from them. Portable SQL for SQLite and PostgreSQL;
-- times are Unix seconds. Every secret (challenge, cookie, code, refresh token) is stored
-- only as a digest (`*_hash`, `session_key`): the time prefix of the value plus its SHA-256 (hex).

-- A validated /authorize request waiting for login and consent at idp. `stage`:
-- login -> login_accepted -> [consent -> consent_accepted] | rejected. `challenge_hash`
-- is the digest of the outstanding login or consent challenge (NULL once answered), so
-- each challenge is accepted once. `browser_hash` is the digest of the flow cookie that
-- binds the request to the browser that started it. `request` holds the validated
-- parameters (JSON: redirect_uri, response_mode, state, nonce, scope, code_challenge,
-- prompt, max_age, login_hint, ui_locales, acr_values, subject_hint); `login` what idp
-- reported (JSON: subject, idp_session_id, auth_time, amr, acr, sid).
CREATE TABLE authorization_requests (
    id TEXT PRIMARY KEY NOT NULL,
    browser_hash TEXT NOT NULL,
    stage TEXT NOT NULL,
    challenge_hash TEXT UNIQUE,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    request TEXT NOT NULL,
    login TEXT,
    granted_scope TEXT,
    error TEXT,
    error_description TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX authorization_requests_expires ON authorization_requests (expires_at);

-- authz's browser sessions (cookie authz_session), for SSO and prompt=none. `sid` is the
-- public session id put in ID tokens; `idp_session_id` is checked with
-- idp.v1.Sessions.CheckSession and ended with EndSession.
CREATE TABLE browser_sessions (
    session_key TEXT PRIMARY KEY NOT NULL,
    sid TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    idp_session_id TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    amr TEXT NOT NULL,
    acr TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX browser_sessions_expires ON browser_sessions (expires_at);

-- Remembered consent: the scopes a user granted a client.
CREATE TABLE consents (
    subject TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (subject, client_id)
);

-- One per redeemed authorization code: who, what, which session. Revoking it (code
-- replay, refresh token reuse, logout, RFC 7009) kills every token issued from it.
CREATE TABLE grants (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    scope TEXT NOT NULL,
    sid TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    amr TEXT NOT NULL,
    acr TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX grants_sid ON grants (sid);
CREATE INDEX grants_expires ON grants (expires_at);

-- Authorization codes, single use: `redeemed_at` is set by the one conditional UPDATE
-- that wins; `grant_id` then names what was issued, so a replay can revoke it.
CREATE TABLE authorization_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    nonce TEXT,
    scope TEXT NOT NULL,
    subject TEXT NOT NULL,
    sid TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    amr TEXT NOT NULL,
    acr TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    redeemed_at BIGINT,
    grant_id TEXT REFERENCES grants (id) ON DELETE CASCADE
);
CREATE INDEX authorization_codes_expires ON authorization_codes (expires_at);

-- Refresh tokens, rotated on every use: `rotated_at` is set by the one conditional
-- UPDATE that wins; presenting a rotated token again revokes the grant (RFC 9700 §4.14).
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    grant_id TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    rotated_at BIGINT
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);

-- The access tokens issued from a grant, so revoking the grant can put JWTs on the
-- denylist (by jti) and delete opaque ones (by opaque_hash).
CREATE TABLE grant_access_tokens (
    jti TEXT PRIMARY KEY NOT NULL,
    grant_id TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    opaque_hash TEXT,
    expires_at BIGINT NOT NULL
);
CREATE INDEX grant_access_tokens_grant ON grant_access_tokens (grant_id);
