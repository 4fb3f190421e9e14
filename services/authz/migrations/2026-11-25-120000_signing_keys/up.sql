-- Signing keys and their lifecycle (next -> current -> retired -> removed).
-- Portable SQL: the same migration runs on SQLite and PostgreSQL. Times are Unix seconds.
-- private_key is the PKCS#8 key sealed with AES-256-GCM under the key-encryption key,
-- base64(nonce || ciphertext || tag), bound to kid and alg.
-- (alg, generation) is unique: replicas that plan the same rotation race on this
-- constraint, so each rotation happens exactly once.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    alg TEXT NOT NULL,
    generation BIGINT NOT NULL,
    state TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    private_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    activates_at BIGINT NOT NULL,
    retired_at BIGINT,
    remove_after BIGINT
);
CREATE UNIQUE INDEX signing_keys_alg_generation ON signing_keys (alg, generation);
