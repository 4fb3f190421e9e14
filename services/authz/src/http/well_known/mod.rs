//! `/.well-known/…`: discovery metadata and the JWKS.

pub(crate) mod discovery;
pub(crate) mod jwks;
