//! The gRPC contracts of the platform, generated from `proto/` at build time.
//!
//! - [`authz::v1`]: `LoginFlow` (idp → authz) and `Introspection` (resource servers →
//!   authz, RFC 7662 semantics).
//! - [`idp::v1`]: `Sessions` (authz → idp).

/// Services offered by authz.
pub mod authz {
    /// Version 1 of the authz contracts.
    #[allow(missing_docs, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("authz.v1");
    }
}

/// Services offered by idp.
pub mod idp {
    /// Version 1 of the idp contracts.
    #[allow(missing_docs, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("idp.v1");
    }
}
