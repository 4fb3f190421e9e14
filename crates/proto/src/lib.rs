//! The gRPC contracts of the platform, generated from `proto/` at build time.
//!
//! - [`authz::v1`]: `LoginFlow` (idp → authz) and `Introspection` (resource servers →
//!   authz, RFC 7662 semantics).
//! - [`idp::v1`]: `Sessions` (authz → idp).
//! - [`FILE_DESCRIPTOR_SET`]: all of them, described for server reflection.

/// The encoded `google.protobuf.FileDescriptorSet` of every file in `proto/` (services,
/// messages, and the files they import), as the gRPC server reflection protocol
/// (`grpc.reflection.v1`) serves it to tools such as `grpcurl` and `grpcui`.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("descriptors");

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

#[cfg(test)]
mod tests {
    use prost::Message;

    /// The descriptor set names every service of `proto/` with its package, as reflection
    /// lists them.
    #[test]
    fn the_descriptor_set_describes_every_service() {
        let set = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET).unwrap();
        let mut services: Vec<String> = set
            .file
            .iter()
            .flat_map(|f| {
                f.service
                    .iter()
                    .map(move |s| format!("{}.{}", f.package(), s.name()))
            })
            .collect();
        services.sort();
        assert_eq!(
            services,
            [
                "authz.v1.Introspection",
                "authz.v1.LoginFlow",
                "idp.v1.Sessions"
            ]
        );
    }
}
