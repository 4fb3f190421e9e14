//! Random identifiers. Secrets are digested with [`domain::secret::digest_hex`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};

use crate::IdpError;

/// `bytes` random bytes from the operating system, base64url without padding.
pub(crate) fn random_b64(bytes: usize) -> Result<String, IdpError> {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| IdpError::Task("no randomness available".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}
