//! Access tokens: issuance (RFC 9068 JWTs or opaque reference tokens), introspection
//! (RFC 7662) and revocation (RFC 7009), plus the signing and opaque-secret primitives the
//! authorization code flow builds on. Transport-neutral: the HTTP and gRPC edges call
//! these functions and map [`TokenError`] and [`crate::error::Failure`] to the wire.

mod error;
mod exchange;
mod introspect;
mod issue;
mod lookups;
mod model;
pub(crate) mod repo;
mod revoke;
mod service;
mod writer;

pub(crate) use error::TokenError;
pub(crate) use exchange::{ACCESS_TOKEN_TYPE, ExchangeRequest, JWT_TOKEN_TYPE};
pub(crate) use model::{Introspection, PreparedAccess, Revocation};
pub(crate) use service::{Tokens, lookup_key, successor_token};
