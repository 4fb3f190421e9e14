//! Access tokens: issuance (RFC 9068 JWTs or opaque reference tokens), introspection
//! (RFC 7662) and revocation (RFC 7009), plus the signing and opaque-secret primitives the
//! authorization code flow builds on. Transport-neutral: the HTTP and gRPC edges call
//! these functions.

pub(crate) mod repo;
mod service;
mod writer;

pub use service::{Introspection, IssuedToken, Tokens};
pub(crate) use service::{PreparedAccess, lookup_key, server_error, storage_error};
