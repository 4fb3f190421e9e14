//! Everything tokens stand on: signing keys and their lifecycle, JWS/JWT signing and
//! verification, and the JWKS document.
//!
//! - [`Algorithm`]: the allowlist (RS256, PS256, ES256, EdDSA); `none` and every HMAC
//!   algorithm are unrepresentable, so they can never be accepted.
//! - [`PrivateKey`]: generated (RSA 2048/3072/4096, P-256, Ed25519) or imported (PKCS#8
//!   PEM or private JWK); its `kid` is the RFC 7638 JWK thumbprint.
//! - [`Kek`]: AES-256-GCM encryption of private keys at rest, bound to kid and algorithm.
//! - [`lifecycle`]: the `next` → `current` → `retired` → removed rules as a pure function of
//!   the stored keys and the clock.
//! - [`KeyRing`]: an immutable snapshot with ready signers, verifiers and the precomputed
//!   JWKS bytes; swapped atomically when keys change.
//! - [`PublicKey`]: a public JWK decoded once for one algorithm; verification runs on
//!   `ring`, so code that only verifies tokens needs no OpenSSL.
//! - [`jws`]: compact JWS/JWT with explicit algorithm allowlist, mandatory `kid`, key/alg
//!   binding and `typ` checks (RFC 7515, RFC 7519, RFC 8725, RFC 9068).

mod alg;
mod clock;
mod error;
pub mod jwks;
pub mod jws;
mod kek;
mod key;
mod keyring;
pub mod lifecycle;
mod public_key;

pub use alg::Algorithm;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::IssuerError;
pub use kek::Kek;
pub use key::PrivateKey;
pub use keyring::KeyRing;
pub use lifecycle::{KeyRecord, KeyState};
pub use public_key::PublicKey;
