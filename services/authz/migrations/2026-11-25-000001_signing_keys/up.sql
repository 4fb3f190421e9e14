-- Signing keys and their lifecycle (next -> current -> retired -> removed).
-- Portable SQL: the same migration runs on SQLite and PostgreSQL.
-- Times are Unix seconds. The private key is AES-256-GCM encrypted under the
-- key-encryption key and stored base64 (nonce || ciphertext || tag).
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    alg TEXT NOT NULL,
    state TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    private_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    activates_at BIGINT NOT NULL,
    retired_at BIGINT,
    remove_after BIGINT
);
CREATE INDEX signing_keys_state ON signing_keys (state, alg);
