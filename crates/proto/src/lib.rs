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

    /// Fuzz target for the protobuf messages the servers decode from the network: any
    /// bytes decode to a message or an error without panicking, and a message that decodes
    /// re-encodes to bytes that decode to the same message (so what a handler sees does
    /// not depend on how the sender laid the fields out). `FUZZ_CASES` sets the cases per
    /// message type (default 512).
    #[test]
    fn server_messages_decode_any_bytes() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestCaseError, TestRunner};

        fn roundtrip<M: Message + Default + PartialEq + std::fmt::Debug>(
            bytes: &[u8],
        ) -> Result<(), TestCaseError> {
            if let Ok(message) = M::decode(bytes) {
                let again = M::decode(message.encode_to_vec().as_slice())
                    .map_err(|e| TestCaseError::fail(format!("re-decode: {e}")))?;
                prop_assert_eq!(again, message);
            }
            Ok(())
        }

        let cases = std::env::var("FUZZ_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(512);
        type Check = fn(&[u8]) -> Result<(), TestCaseError>;
        let checks: [(&str, Check); 11] = [
            (
                "IntrospectRequest",
                roundtrip::<crate::authz::v1::IntrospectRequest>,
            ),
            (
                "IntrospectBatchRequest",
                roundtrip::<crate::authz::v1::IntrospectBatchRequest>,
            ),
            (
                "GetLoginRequestRequest",
                roundtrip::<crate::authz::v1::GetLoginRequestRequest>,
            ),
            (
                "AcceptLoginRequest",
                roundtrip::<crate::authz::v1::AcceptLoginRequest>,
            ),
            (
                "RejectRequest",
                roundtrip::<crate::authz::v1::RejectRequest>,
            ),
            (
                "GetConsentRequestRequest",
                roundtrip::<crate::authz::v1::GetConsentRequestRequest>,
            ),
            (
                "AcceptConsentRequest",
                roundtrip::<crate::authz::v1::AcceptConsentRequest>,
            ),
            (
                "RevokeSubjectRequest",
                roundtrip::<crate::authz::v1::RevokeSubjectRequest>,
            ),
            (
                "GetUserClaimsRequest",
                roundtrip::<crate::idp::v1::GetUserClaimsRequest>,
            ),
            (
                "CheckSessionRequest",
                roundtrip::<crate::idp::v1::CheckSessionRequest>,
            ),
            (
                "EndSessionRequest",
                roundtrip::<crate::idp::v1::EndSessionRequest>,
            ),
        ];
        // Bytes that are mostly well-formed fields (tag, wire type, length-delimited
        // payloads), so decoding gets past the first byte, and plain random bytes.
        let field = (1u8..16, 0u8..6, prop::collection::vec(any::<u8>(), 0..24)).prop_map(
            |(number, wire, payload)| {
                let mut out = vec![(number << 3) | wire];
                if wire == 2 {
                    out.push(u8::try_from(payload.len()).unwrap_or(0));
                }
                out.extend(payload);
                out
            },
        );
        let bytes = prop_oneof![
            prop::collection::vec(field, 0..8).prop_map(|f| f.concat()),
            prop::collection::vec(any::<u8>(), 0..128),
        ];
        for (name, check) in checks {
            TestRunner::new(Config {
                cases,
                failure_persistence: None,
                ..Config::default()
            })
            .run(&bytes, |b| check(&b))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
