//! Authentication of the callers of idp's gRPC API: `authorization: Basic
//! base64(client_id:client_secret)` metadata matching `sessions_api.client_id` and
//! `sessions_api.client_secret`. Each part may be form-urlencoded first, as RFC 6749 §2.3.1
//! asks of OAuth clients; both the raw and the decoded form are accepted. The secret is
//! compared as SHA-256 digests in constant time.

use base64::Engine;
use config::{ConfigError, Secret, Validate};
use serde::{Deserialize, Serialize};
use tonic::Status;
use tonic::metadata::MetadataMap;

/// The `sessions_api` section: who may call `idp.v1.Sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsApiConfig {
    /// The client id authz presents.
    pub client_id: String,
    /// Its secret. Secret: give it as `client_secret_file`. Without it every call is
    /// refused (`UNAUTHENTICATED`).
    pub client_secret: Option<Secret<String>>,
}

impl Default for SessionsApiConfig {
    fn default() -> Self {
        Self {
            client_id: "authz".to_owned(),
            client_secret: None,
        }
    }
}

impl Validate for SessionsApiConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.client_id.trim().is_empty() {
            return Err(ConfigError::new("client_id", "must not be empty"));
        }
        if self
            .client_secret
            .as_ref()
            .is_some_and(|s| s.expose().len() < 16)
        {
            return Err(ConfigError::new(
                "client_secret",
                "must be at least 16 characters",
            ));
        }
        Ok(())
    }
}

fn digest(value: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, value.as_bytes()).as_ref());
    out
}

fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("v={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The one caller allowed.
pub(crate) struct Callers {
    client_id: String,
    secret: Option<[u8; 32]>,
}

impl Callers {
    pub(crate) fn new(config: &SessionsApiConfig) -> Self {
        if config.client_secret.is_none() {
            tracing::warn!(
                "sessions_api.client_secret is not set: every idp.v1.Sessions call will be refused"
            );
        }
        Self {
            client_id: config.client_id.clone(),
            secret: config.client_secret.as_ref().map(|s| digest(s.expose())),
        }
    }

    /// `Ok` for the configured client with its secret; `UNAUTHENTICATED` otherwise.
    #[tracing::instrument(skip_all)]
    pub(crate) fn check(&self, metadata: &MetadataMap) -> Result<(), Status> {
        let refused = || Status::unauthenticated("client authentication failed");
        let header = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Status::unauthenticated("client credentials required"))?;
        let encoded = header
            .get(..6)
            .filter(|scheme| scheme.eq_ignore_ascii_case("basic "))
            .map(|_| header[6..].trim())
            .ok_or_else(|| Status::unauthenticated("use Basic client credentials"))?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(refused)?;
        let (id, secret) = raw.split_once(':').ok_or_else(refused)?;
        let Some(expected) = &self.secret else {
            return Err(refused());
        };
        let id_ok = id == self.client_id || form_decode(id) == self.client_id;
        // Both candidate forms are always compared, so timing says nothing about which
        // (if either) matched.
        let raw_ok = domain::constant_time_eq(&digest(secret), expected);
        let decoded_ok = domain::constant_time_eq(&digest(&form_decode(secret)), expected);
        if id_ok && (raw_ok | decoded_ok) {
            Ok(())
        } else {
            Err(refused())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn callers() -> Callers {
        Callers::new(&SessionsApiConfig {
            client_id: "authz".into(),
            client_secret: Some(Secret::new("s3cret+with/odd=chars".into())),
        })
    }

    fn basic(pair: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        let value = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        );
        m.insert("authorization", value.parse().unwrap());
        m
    }

    #[test]
    fn raw_and_form_encoded_credentials() {
        let c = callers();
        assert!(c.check(&basic("authz:s3cret+with/odd=chars")).is_ok());
        assert!(c.check(&basic("authz:s3cret%2Bwith%2Fodd%3Dchars")).is_ok());
        for bad in ["authz:wrong", "other:s3cret+with/odd=chars", "authz", ""] {
            assert_eq!(
                c.check(&basic(bad)).unwrap_err().code(),
                tonic::Code::Unauthenticated,
                "{bad}"
            );
        }
        assert!(c.check(&MetadataMap::new()).is_err());
        let unconfigured = Callers::new(&SessionsApiConfig::default());
        assert!(unconfigured.check(&basic("authz:")).is_err());
    }
}
