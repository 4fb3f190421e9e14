//! What the OAuth endpoints share: strict form parsing (RFC 6749 §3.2), client
//! authentication parameters (§2.3) and the error response (§5.2).
//!
//! It is also authz's one HTTP error edge: the services' errors ([`Failure`],
//! [`TokenError`], [`AuthorizeError`], [`ClientAuthError`]) become statuses, OAuth error
//! codes and headers here, and their causes are logged here, once.

use actix_web::dev::ServiceResponse;
use actix_web::http::{StatusCode, header};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError};
use domain::basic::BasicError;
use domain::{ErrorCode, OAuthError};

use crate::clients::{AuthContext, ClientAuthError, Credentials};
use crate::error::Failure;
use crate::flow::AuthorizeError;
use crate::tokens::TokenError;

/// The HTTP status of a [`Failure`], logging its cause once (a warning when it is
/// transient, an error otherwise; the request's span adds its context): 503 when trying
/// again shortly may work ([`Failure::is_transient`]), 500 otherwise. The cause is never
/// sent to the client.
pub(crate) fn failure_status(failure: &Failure) -> StatusCode {
    if failure.is_transient() {
        tracing::warn!(error = %failure, "dependency unavailable");
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        tracing::error!(error = %failure, "request failed");
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

/// The OAuth error of a [`Failure`] (RFC 6749 §4.1.2.1, §5.2): `temporarily_unavailable`
/// when [`failure_status`] says 503, `server_error` otherwise.
pub(crate) fn failure_error(failure: &Failure) -> OAuthError {
    if failure_status(failure) == StatusCode::SERVICE_UNAVAILABLE {
        OAuthError::new(ErrorCode::TemporarilyUnavailable, "try again later")
    } else {
        OAuthError::new(ErrorCode::ServerError, "internal error")
    }
}

/// `Retry-After: 1` on a 503 (RFC 9110 §10.2.3), so clients wait a moment before trying
/// again; other statuses are left alone.
pub(crate) fn retry_after(res: &mut HttpResponseBuilder, status: StatusCode) {
    if status == StatusCode::SERVICE_UNAVAILABLE {
        res.insert_header((header::RETRY_AFTER, "1"));
    }
}

/// The authorization error response for the client's redirect URI (RFC 6749 §4.1.2.1,
/// OpenID Connect Core §3.1.2.6).
pub(crate) fn authorization_error(e: AuthorizeError) -> OAuthError {
    let code = match &e {
        AuthorizeError::AccountSelectionRequired => ErrorCode::AccountSelectionRequired,
        AuthorizeError::LoginRequired => ErrorCode::LoginRequired,
        AuthorizeError::ConsentRequired => ErrorCode::ConsentRequired,
        AuthorizeError::Busy(_) => ErrorCode::TemporarilyUnavailable,
        AuthorizeError::Rejected { code, description } => {
            return OAuthError::new(*code, description.clone());
        }
        AuthorizeError::Failed(f) => return failure_error(f),
    };
    OAuthError::new(code, e.to_string())
}

/// An OAuth error response: `{"error","error_description"}`, never cached, with
/// `WWW-Authenticate: Basic` when the client tried HTTP Basic and failed (RFC 6749 §5.2)
/// and on every other 401 (RFC 7235 §3.1: a 401 without a challenge is malformed).
#[derive(Debug)]
pub(crate) struct OAuthFailure {
    pub(crate) error: OAuthError,
    pub(crate) status: StatusCode,
    pub(crate) basic_challenge: bool,
}

impl std::fmt::Display for OAuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl OAuthFailure {
    /// A 400 with `code`.
    pub(crate) fn bad(code: ErrorCode, description: impl Into<String>) -> Self {
        let status = match code {
            ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        Self {
            error: OAuthError::new(code, description),
            status,
            basic_challenge: false,
        }
    }

    /// `invalid_request`.
    pub(crate) fn invalid_request(description: impl Into<String>) -> Self {
        Self::bad(ErrorCode::InvalidRequest, description)
    }

    /// `invalid_client` (401), challenging for Basic when Basic was used.
    pub(crate) fn invalid_client(basic: bool) -> Self {
        let mut f = Self::bad(ErrorCode::InvalidClient, "client authentication failed");
        f.basic_challenge = basic;
        f
    }

    /// Maps a client authentication failure: `invalid_client` (401) whose description
    /// says what an integrator can fix (the registered method, the assertion's problem)
    /// but never whether an unknown client or a wrong secret was the cause.
    pub(crate) fn from_client_auth(e: ClientAuthError, basic: bool) -> Self {
        match e {
            ClientAuthError::Invalid => Self::invalid_client(basic),
            // clientauth
            e @ (ClientAuthError::WrongMethod { .. }
            | ClientAuthError::Assertion(_)
            | ClientAuthError::Certificate(_)) => {
                let mut f = Self::bad(ErrorCode::InvalidClient, e.to_string());
                f.basic_challenge = basic;
                f
            }
            ClientAuthError::Storage(e) => Self::from(Failure::from(e)),
        }
    }
}

impl From<OAuthError> for OAuthFailure {
    fn from(error: OAuthError) -> Self {
        let code = error.code;
        let mut f = Self::bad(code, String::new());
        f.error = error;
        f
    }
}

impl From<Failure> for OAuthFailure {
    fn from(failure: Failure) -> Self {
        Self::from(failure_error(&failure))
    }
}

impl From<TokenError> for OAuthFailure {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::InvalidGrant(description) => {
                Self::bad(ErrorCode::InvalidGrant, description)
            }
            TokenError::InvalidScope(description) => {
                Self::bad(ErrorCode::InvalidScope, description)
            }
            TokenError::InvalidRequest(description) => Self::invalid_request(description),
            TokenError::InvalidTarget(description) => {
                Self::bad(ErrorCode::InvalidTarget, description)
            }
            TokenError::UnauthorizedClient(description) => {
                Self::bad(ErrorCode::UnauthorizedClient, description)
            }
            TokenError::Failed(failure) => Self::from(failure),
        }
    }
}

// device grant (RFC 8628 §3.5)
impl From<crate::device::PollError> for OAuthFailure {
    fn from(e: crate::device::PollError) -> Self {
        use crate::device::PollError;
        let description = e.to_string();
        let code = match e {
            PollError::Token(t) => return Self::from(t),
            PollError::Pending => ErrorCode::AuthorizationPending,
            PollError::SlowDown(_) => ErrorCode::SlowDown,
            PollError::Denied => ErrorCode::AccessDenied,
            PollError::Expired => ErrorCode::ExpiredToken,
        };
        Self::bad(code, description)
    }
}

impl ResponseError for OAuthFailure {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        metrics::counter!("oauth_errors_total", "error" => self.error.code.as_str()).increment(1);
        let mut res = HttpResponse::build(self.status);
        res.insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"));
        // RFC 7235 §3.1: every 401 carries a challenge; RFC 6749 §5.2 names the schemes
        // the client may use, and requires it when the client tried Basic.
        if self.error.code == ErrorCode::InvalidToken {
            // dcr: RFC 6750 §3 for the Bearer-protected registration endpoints.
            res.insert_header((
                header::WWW_AUTHENTICATE,
                format!(
                    r#"Bearer realm="authz", error="invalid_token", error_description="{}""#,
                    self.error.description.replace(['"', '\\'], "")
                ),
            ));
        } else if self.basic_challenge || self.status == StatusCode::UNAUTHORIZED {
            res.insert_header((
                header::WWW_AUTHENTICATE,
                r#"Basic realm="authz", charset="UTF-8""#,
            ));
        }
        retry_after(&mut res, self.status);
        let mut body = serde_json::json!({ "error": self.error.code.as_str() });
        if !self.error.description.is_empty() {
            body["error_description"] = self.error.description.clone().into();
        }
        res.json(body)
    }
}

// dcr: Dynamic Client Registration (RFC 7591 §3.2.2, RFC 7592 §3)
impl From<crate::registration::RegistrationError> for OAuthFailure {
    fn from(e: crate::registration::RegistrationError) -> Self {
        use crate::registration::RegistrationError;
        use crate::registration::metadata::MetadataError;
        match e {
            RegistrationError::InvalidToken(description) => Self {
                error: OAuthError::new(ErrorCode::InvalidToken, description),
                status: StatusCode::UNAUTHORIZED,
                basic_challenge: false,
            },
            RegistrationError::Metadata(MetadataError::RedirectUri(d)) => {
                Self::bad(ErrorCode::InvalidRedirectUri, d)
            }
            RegistrationError::Metadata(MetadataError::Metadata(d)) => {
                Self::bad(ErrorCode::InvalidClientMetadata, d)
            }
            RegistrationError::InvalidRequest(d) => Self::invalid_request(d),
            RegistrationError::Failed(f) => Self::from(f),
        }
    }
}

/// The Bearer token of a request (RFC 6750 §2.1), for the registration endpoints. `Ok(None)`:
/// no `Authorization` header; another scheme or a malformed header is `invalid_request`.
pub(crate) fn bearer(req: &HttpRequest) -> Result<Option<&str>, OAuthFailure> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| OAuthFailure::invalid_request("malformed Authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(OAuthFailure::invalid_request(
            "the Authorization header must carry a Bearer token",
        )),
    }
}

/// A parsed `application/x-www-form-urlencoded` body.
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    /// Parses the body of a POST; other content types are `invalid_request`.
    pub(crate) fn parse(req: &HttpRequest, body: &[u8]) -> Result<Self, OAuthFailure> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let media = content_type.split(';').next().unwrap_or_default().trim();
        if !media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(OAuthFailure::invalid_request(
                "the request body must be application/x-www-form-urlencoded",
            ));
        }
        Ok(Self::from_urlencoded(body))
    }

    /// Parses `application/x-www-form-urlencoded` data (a query string or a body).
    pub(crate) fn from_urlencoded(raw: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(raw).into_owned().collect())
    }

    /// The one value of `name`; a parameter sent without a value counts as omitted
    /// (RFC 6749 §3.1). A repeated one is an error naming it.
    pub(crate) fn get(&self, name: &str) -> Result<Option<&str>, String> {
        let mut values = self
            .0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(format!("parameter {name} is repeated"));
        }
        Ok(first.filter(|v| !v.is_empty()))
    }

    /// [`Form::get`], with a repeated parameter as `invalid_request`.
    pub(crate) fn one(&self, name: &str) -> Result<Option<&str>, OAuthFailure> {
        self.get(name).map_err(OAuthFailure::invalid_request)
    }

    /// `one`, but required.
    pub(crate) fn required(&self, name: &str) -> Result<&str, OAuthFailure> {
        self.one(name)?
            .ok_or_else(|| OAuthFailure::invalid_request(format!("parameter {name} is required")))
    }

    // PAR / JAR (RFC 9126, RFC 9101)
    /// A form of these pairs (pushed or request-object parameters).
    pub(crate) fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    /// Every pair, in order.
    pub(crate) fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// Every non-empty value of a parameter that may repeat (`resource`, RFC 8707 §2).
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

// clientauth
/// The client authentication methods a client may be registered for and use at the
/// token, introspection (not `none`), revocation, device authorization and PAR endpoints
/// (RFC 8414 §2 `token_endpoint_auth_methods_supported`).
pub(crate) const SUPPORTED_AUTH_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "none",
];

/// The JWS algorithms of client assertions (`private_key_jwt`: the asymmetric ones;
/// `client_secret_jwt`: HS256), RFC 8414 §2 `token_endpoint_auth_signing_alg_values_supported`.
pub(crate) const ASSERTION_ALGORITHMS: &[&str] = &["RS256", "PS256", "ES256", "EdDSA", "HS256"];

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub(crate) const JWT_BEARER_ASSERTION: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The client credentials of a request (RFC 6749 §2.3): HTTP Basic (id and secret
/// form-urlencoded, §2.3.1), body parameters, or a JWT client assertion (RFC 7523 §2.2,
/// RFC 7521 §4.2), never two of them. `Ok(None)`: none presented.
pub(crate) fn credentials(
    req: &HttpRequest,
    form: &Form,
) -> Result<Option<Credentials>, OAuthFailure> {
    let body_id = form.one("client_id")?;
    let body_secret = form.one("client_secret")?;
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let basic = authorization.map(domain::basic::parse);
    let basic = basic.filter(|b| !matches!(b, Err(BasicError::NotBasic)));
    // clientauth: a client assertion (RFC 7521 §4.2).
    let assertion_type = form.one("client_assertion_type")?;
    let assertion = form.one("client_assertion")?;
    if assertion_type.is_some() || assertion.is_some() {
        if basic.is_some() || body_secret.is_some() {
            return Err(OAuthFailure::invalid_request(
                "use one client authentication method, not a client assertion and a secret together",
            ));
        }
        let (Some(kind), Some(assertion)) = (assertion_type, assertion) else {
            return Err(OAuthFailure::invalid_request(
                "client_assertion and client_assertion_type go together",
            ));
        };
        if kind != JWT_BEARER_ASSERTION {
            return Err(OAuthFailure::bad(
                ErrorCode::InvalidClient,
                format!("unsupported client_assertion_type (supported: {JWT_BEARER_ASSERTION})"),
            ));
        }
        // RFC 7523 §3 item 2: `sub` names the client; client_id, when sent, must agree.
        let sub = crate::clients::keys::UnverifiedJws::parse(assertion)
            .ok()
            .and_then(|j| {
                j.claims
                    .get("sub")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            });
        let id = match (body_id, sub) {
            (Some(id), Some(sub)) if id != sub => {
                return Err(OAuthFailure::bad(
                    ErrorCode::InvalidClient,
                    "client assertion rejected: sub must be the client_id",
                ));
            }
            (Some(id), _) => id.to_owned(),
            (None, Some(sub)) => sub,
            (None, None) => {
                return Err(OAuthFailure::bad(
                    ErrorCode::InvalidClient,
                    "client assertion rejected: malformed JWT",
                ));
            }
        };
        return Ok(Some(Credentials::Assertion {
            id,
            assertion: assertion.to_owned(),
        }));
    }
    if let Some(parsed) = basic {
        if body_secret.is_some() {
            return Err(OAuthFailure::invalid_request(
                "use one client authentication method, not Basic and client_secret together",
            ));
        }
        let (id, secret) = parsed.map_err(|_| OAuthFailure::invalid_client(true))?;
        if body_id.is_some_and(|b| b != id) {
            return Err(OAuthFailure::invalid_request(
                "client_id does not match the Basic credentials",
            ));
        }
        return Ok(Some(Credentials::Basic { id, secret }));
    }
    Ok(match (body_id, body_secret) {
        (Some(id), Some(secret)) => Some(Credentials::Post {
            id: id.to_owned(),
            secret: secret.to_owned(),
        }),
        (None, Some(_)) => {
            return Err(OAuthFailure::invalid_request(
                "client_secret without client_id",
            ));
        }
        (Some(id), None) => Some(Credentials::PublicId { id: id.to_owned() }),
        (None, None) => None,
    })
}

/// The common start of every client-authenticated OAuth endpoint (token, introspection,
/// revocation, device authorization, PAR): parse the form, require client credentials,
/// authenticate them (RFC 6749 §2.3; RFC 7523 §2.2 client assertions, whose `aud` may be
/// the issuer, the token endpoint or the URL of the endpoint called).
pub(crate) async fn authenticated_form(
    req: &HttpRequest,
    body: &[u8],
    state: &crate::AppState,
) -> Result<(Form, std::sync::Arc<crate::clients::Client>), OAuthFailure> {
    let form = Form::parse(req, body)?;
    let credentials = credentials(req, &form)?.ok_or_else(|| {
        OAuthFailure::bad(ErrorCode::InvalidClient, "client authentication required")
    })?;
    let basic = matches!(credentials, Credentials::Basic { .. });
    // clientauth
    // mTLS (RFC 8705 §2): on a connection from a trusted proxy, the certificate it
    // forwarded (the proxy verified the chain; the handshake certificate, if any, is the
    // proxy's own); on any other, the certificate of authz's own handshake.
    let certificate = match state
        .clients
        .certificate_header(req.peer_addr().map(|a| a.ip()))
    {
        Some(header) => req
            .headers()
            .get(header)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::clients::certificate::from_header)
            .map(|der| crate::clients::certificate::Presented {
                der: der.into(),
                chain_verified: true,
            }),
        None => req.conn_data::<runtime::PeerCertificate>().map(|peer| {
            crate::clients::certificate::Presented {
                der: std::sync::Arc::clone(&peer.der),
                chain_verified: peer.chain_verified,
            }
        }),
    };
    // Only a client assertion has an `aud` to check: the other methods skip building them.
    let mut audiences = Vec::new();
    if matches!(credentials, Credentials::Assertion { .. }) {
        audiences.extend([
            state.issuer.clone(),
            state.endpoint(super::TOKEN_PATH),
            state.endpoint(req.path()),
        ]);
        // RFC 8705 §5: a client calling an `mtls_endpoint_aliases` URL may name it in `aud`.
        if let Some(base) = &state.mtls_base_url {
            let base = base.trim_end_matches('/');
            audiences.push(format!("{base}{}", super::TOKEN_PATH));
            audiences.push(format!("{base}{}", req.path()));
        }
    }
    let context = AuthContext {
        audiences,
        certificate,
    };
    let client = state
        .clients
        .authenticate(&credentials, &context)
        .await
        .map_err(|e| OAuthFailure::from_client_auth(e, basic))?;
    Ok((form, client))
}

/// A body over the size limit on an OAuth endpoint (actix answers 413 in plain text
/// before the handler runs): the same status with the RFC 6749 §5.2 error shape,
/// `{"error":"invalid_request","error_description":"request body too large"}`, never
/// cached. Installed with `ErrorHandlers` for `413` only.
pub(crate) fn too_large<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let (req, _) = res.into_parts();
    let failure = OAuthFailure {
        error: OAuthError::new(ErrorCode::InvalidRequest, "request body too large"),
        status: StatusCode::PAYLOAD_TOO_LARGE,
        basic_challenge: false,
    };
    let res = ServiceResponse::new(req, failure.error_response()).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}

/// `405 Method Not Allowed` with `Allow: POST`, for every other method on a POST endpoint.
pub(crate) async fn post_only() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "POST"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "error": "invalid_request", "error_description": "use POST" }))
}

#[cfg(test)]
mod tests {
    use actix_web::http::header;
    use actix_web::{HttpResponse, ResponseError};
    use storage::StorageError;

    use super::OAuthFailure;
    use crate::error::Failure;
    use crate::tokens::TokenError;

    async fn json(res: HttpResponse) -> serde_json::Value {
        let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    #[tokio::test]
    async fn a_busy_database_is_503_temporarily_unavailable_with_retry_after() {
        let failure = OAuthFailure::from(TokenError::from(StorageError::Unavailable(
            "pool timed out".into(),
        )));
        let res = failure.error_response();
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers().get(header::RETRY_AFTER).unwrap(), "1");
        assert_eq!(
            res.headers().get(header::CACHE_CONTROL).unwrap(),
            "no-store"
        );
        let body = json(res).await;
        assert_eq!(body["error"], "temporarily_unavailable");
        assert_eq!(body["error_description"], "try again later");
    }

    #[tokio::test]
    async fn a_locked_full_or_lost_database_is_503_temporarily_unavailable() {
        use storage::diesel::result::{DatabaseErrorKind, Error};
        for message in [
            "database is locked",
            "database or disk is full",
            "canceling statement due to lock timeout",
            "terminating connection due to administrator command",
        ] {
            let e = StorageError::Query(Error::DatabaseError(
                DatabaseErrorKind::Unknown,
                Box::new(message.to_owned()),
            ));
            let res = OAuthFailure::from(TokenError::from(e)).error_response();
            assert_eq!(res.status(), 503, "{message}");
            assert_eq!(res.headers().get(header::RETRY_AFTER).unwrap(), "1");
            let body = json(res).await;
            assert_eq!(body["error"], "temporarily_unavailable", "{message}");
            assert!(!body.to_string().contains(message), "{body}");
        }
        // /authorize sends the same code to a trusted redirect URI (RFC 6749 §4.1.2.1).
        let e = StorageError::Query(Error::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new("database or disk is full".to_owned()),
        ));
        let error = super::authorization_error(crate::flow::AuthorizeError::Failed(e.into()));
        assert_eq!(error.code, domain::ErrorCode::TemporarilyUnavailable);
        // An error page for a transient failure says when to come back.
        let page = crate::http::pages::error(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "try again",
        );
        assert_eq!(page.headers().get(header::RETRY_AFTER).unwrap(), "1");
    }

    #[tokio::test]
    async fn other_failures_are_500_server_error_without_their_cause() {
        let res =
            OAuthFailure::from(Failure::internal("no current ES256 signing key")).error_response();
        assert_eq!(res.status(), 500);
        assert!(res.headers().get(header::RETRY_AFTER).is_none());
        let body = json(res).await;
        assert_eq!(body["error"], "server_error");
        assert_eq!(body["error_description"], "internal error");
    }

    #[tokio::test]
    async fn grant_errors_keep_their_code_and_description() {
        let res = OAuthFailure::from(TokenError::InvalidGrant("the user is no longer active"))
            .error_response();
        assert_eq!(res.status(), 400);
        let body = json(res).await;
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(body["error_description"], "the user is no longer active");
    }
}
