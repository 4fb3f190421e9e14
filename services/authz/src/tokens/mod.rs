//! Access tokens: issuance (RFC 9068 JWTs or opaque reference tokens), introspection
//! (RFC 7662) and revocation (RFC 7009). Transport-neutral: the HTTP and gRPC edges call
//! these functions.

mod repo;
mod service;
mod writer;

pub use service::{Introspection, IssuedToken, Tokens};
