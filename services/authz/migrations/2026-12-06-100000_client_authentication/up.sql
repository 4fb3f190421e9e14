-- clientauth: client authentication by JWT assertion (RFC 7523, OpenID Connect Core §9)
-- and mutual TLS (RFC 8705). Portable SQL for SQLite and PostgreSQL.

-- The client's public keys: an inline JWKS document (JSON text) or the URL it is fetched
-- from (RFC 7591 §2: never both), used for private_key_jwt, self_signed_tls_client_auth
-- and signed request objects.
ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;
-- The one JWS algorithm the client's assertions must use (RFC 7591 §2
-- token_endpoint_auth_signing_alg); NULL: any supported algorithm.
ALTER TABLE clients ADD COLUMN token_endpoint_auth_signing_alg TEXT;
-- tls_client_auth: the one certificate subject value registered (RFC 8705 §2.1.2).
ALTER TABLE clients ADD COLUMN tls_client_auth_subject_dn TEXT;
ALTER TABLE clients ADD COLUMN tls_client_auth_san_dns TEXT;
ALTER TABLE clients ADD COLUMN tls_client_auth_san_uri TEXT;
ALTER TABLE clients ADD COLUMN tls_client_auth_san_ip TEXT;
ALTER TABLE clients ADD COLUMN tls_client_auth_san_email TEXT;

-- client_secret_jwt needs the secret itself as the HMAC key: it is kept sealed with the
-- key-encryption key (AES-256-GCM, bound to the client and secret id), never in clear.
-- NULL for the other methods, which only need the digest.
ALTER TABLE client_secrets ADD COLUMN sealed_secret TEXT;

-- Client assertions seen, so each `jti` is accepted once (RFC 7523 §3 item 7) across
-- every replica sharing the database; rows are purged once the assertion has expired.
CREATE TABLE client_assertion_jtis (
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertion_jtis_expires_at ON client_assertion_jtis (expires_at);
