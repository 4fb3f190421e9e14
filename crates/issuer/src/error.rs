/// Errors of key handling and token signing/verification.
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    /// The key-encryption key is malformed.
    #[error("key-encryption key: {0}")]
    Kek(String),
    /// A stored private key could not be decrypted: wrong key-encryption key or tampered
    /// data. No key material is produced.
    #[error("cannot decrypt signing key {kid}: wrong key-encryption key or tampered data")]
    Decrypt {
        /// The key that failed.
        kid: String,
    },
    /// A key could not be generated, parsed or used.
    #[error("key {0}")]
    Key(String),
    /// A token could not be signed.
    #[error("signing failed: {0}")]
    Sign(String),
}
