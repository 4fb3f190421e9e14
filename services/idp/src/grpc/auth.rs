//! Authentication of the callers of idp's gRPC API, by the first of:
//! - mutual TLS: a client certificate (verified against `grpc.tls.client_ca_file` in the
//!   handshake) whose SAN DNS name or URI `grpc.identities` maps to `sessions_api.client_id`;
//! - when `grpc.basic_auth` is on: `authorization: Basic` client credentials in the metadata
//!   (RFC 6749 §2.3.1: id and secret form-urlencoded, then base64; decoded by
//!   [`domain::basic::parse`]) matching `sessions_api.client_id` and
//!   `sessions_api.client_secret`. The secret is compared as SHA-256 digests
//!   ([`domain::secret::digest`]) in constant time.

use domain::basic::BasicError;
use domain::secret::{constant_time_eq, digest};
use std::collections::BTreeMap;

use runtime::GrpcListenConfig;
use tonic::metadata::MetadataMap;
use tonic::{Request, Status};

use crate::config::SessionsApiConfig;

/// The one caller allowed.
pub(crate) struct Callers {
    client_id: String,
    secret: Option<[u8; 32]>,
    identities: BTreeMap<String, String>,
    basic_auth: bool,
}

impl Callers {
    /// The caller of `config`, authenticated as `grpc` says (certificate identities, Basic
    /// credentials or both).
    pub(crate) fn new(config: &SessionsApiConfig, grpc: &GrpcListenConfig) -> Self {
        let by_certificate = grpc.identities.values().any(|id| *id == config.client_id);
        if grpc.basic_auth && config.client_secret.is_none() && !by_certificate {
            tracing::warn!(
                "sessions_api.client_secret is not set: every idp.v1.Sessions call will be refused"
            );
        }
        Self {
            client_id: config.client_id.clone(),
            secret: config.client_secret.as_ref().map(|s| digest(s.expose())),
            identities: grpc.identities.clone(),
            basic_auth: grpc.basic_auth,
        }
    }

    /// `Ok` for the configured client, by its certificate or (when allowed) its secret;
    /// `UNAUTHENTICATED` otherwise, logged without credentials.
    #[tracing::instrument(skip_all)]
    pub(crate) fn check_request<T>(&self, request: &Request<T>) -> Result<(), Status> {
        if let Some(client_id) = runtime::mtls_client_id(request, &self.identities) {
            if client_id == self.client_id {
                return Ok(());
            }
            tracing::info!(
                client_id,
                "client certificate maps to a client not allowed here"
            );
            return Err(Status::unauthenticated("client authentication failed"));
        }
        if request.peer_certs().is_some_and(|certs| !certs.is_empty()) {
            tracing::info!("client certificate identity not mapped to a client (grpc.identities)");
        }
        self.check(request.metadata())
    }

    /// `Ok` for the configured client with its secret in Basic metadata, when
    /// `grpc.basic_auth` allows it; `UNAUTHENTICATED` otherwise.
    #[tracing::instrument(skip_all)]
    pub(crate) fn check(&self, metadata: &MetadataMap) -> Result<(), Status> {
        if !self.basic_auth {
            return Err(Status::unauthenticated(
                "a client certificate mapped to a client is required",
            ));
        }
        let refused = || Status::unauthenticated("client authentication failed");
        let header = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Status::unauthenticated("client credentials required"))?;
        let (id, secret) = domain::basic::parse(header).map_err(|e| match e {
            BasicError::NotBasic => Status::unauthenticated("use Basic client credentials"),
            _ => refused(),
        })?;
        let Some(expected) = &self.secret else {
            return Err(refused());
        };
        let id_ok = id == self.client_id;
        let secret_ok = constant_time_eq(&digest(&secret), expected);
        if id_ok & secret_ok {
            Ok(())
        } else {
            Err(refused())
        }
    }
}

#[cfg(test)]
mod tests {
    use config::Secret;

    use super::*;

    fn callers() -> Callers {
        Callers::new(
            &SessionsApiConfig {
                client_id: "authz".into(),
                client_secret: Some(Secret::new("s3cret+with/odd=chars".into())),
            },
            &GrpcListenConfig::loopback(0),
        )
    }

    fn header(value: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", value.parse().unwrap());
        m
    }

    fn basic(pair: &str) -> MetadataMap {
        use base64::Engine;
        header(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        ))
    }

    #[test]
    fn form_encoded_credentials_per_rfc_6749_2_3_1() {
        let c = callers();
        assert!(
            c.check(&header(&domain::basic::encode(
                "authz",
                "s3cret+with/odd=chars"
            )))
            .is_ok()
        );
        assert!(c.check(&basic("authz:s3cret%2Bwith%2Fodd%3Dchars")).is_ok());
        for bad in [
            // Unencoded, `+` reads as a space.
            "authz:s3cret+with/odd=chars",
            // What follows `&` is part of the secret, not a separate parameter to drop.
            "authz:s3cret%2Bwith%2Fodd%3Dchars&junk=1",
            "authz:wrong",
            "other:s3cret%2Bwith%2Fodd%3Dchars",
            "authz",
            "",
        ] {
            assert_eq!(
                c.check(&basic(bad)).unwrap_err().code(),
                tonic::Code::Unauthenticated,
                "{bad}"
            );
        }
        assert!(c.check(&MetadataMap::new()).is_err());
        let unconfigured = Callers::new(
            &SessionsApiConfig::default(),
            &GrpcListenConfig::loopback(0),
        );
        assert!(unconfigured.check(&basic("authz:")).is_err());
        let mtls_only = Callers::new(
            &SessionsApiConfig {
                client_id: "authz".into(),
                client_secret: Some(Secret::new("s3cret+with/odd=chars".into())),
            },
            &GrpcListenConfig {
                basic_auth: false,
                ..GrpcListenConfig::loopback(0)
            },
        );
        let good = header(&domain::basic::encode("authz", "s3cret+with/odd=chars"));
        assert_eq!(
            mtls_only.check(&good).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
    }
}
