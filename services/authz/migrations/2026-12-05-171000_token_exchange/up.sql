-- Token exchange (RFC 8693). Portable SQL.
-- Each client's exchange policy, as JSON: {"audiences":[...],"scopes":"...","impersonate":bool}
-- (the audiences it may exchange tokens for, the most scopes an exchanged token may carry,
-- whether it may exchange without an actor token). '{}' is the empty policy: no audience.
ALTER TABLE clients ADD COLUMN token_exchange TEXT NOT NULL DEFAULT '{}';
-- The RFC 8693 §4.1 `act` claim of an opaque access token issued by a token exchange
-- (JSON object; NULL for every other token), so introspection reports it as for JWTs.
ALTER TABLE opaque_tokens ADD COLUMN act TEXT;
