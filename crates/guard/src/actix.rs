//! The actix-web edge: the [`Principal`] and [`Scoped`] extractors, the [`Protect`]
//! middleware for whole scopes or routes, and the RFC 6750 §3 responses.

use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, web};
use futures_util::future::{LocalBoxFuture, Ready, ready};

use crate::{Guard, GuardError, Principal};

/// The scopes a route requires, for [`Scoped`]. Declare one with
/// [`required_scopes!`](crate::required_scopes).
pub trait RequiredScopes {
    /// Every one of these must have been granted (RFC 6750 §3.1 `insufficient_scope`
    /// otherwise).
    const SCOPES: &'static [&'static str];
}

/// Declares a marker type for [`Scoped`]:
/// `guard::required_scopes!(pub ItemsRead = ["items:read"]);`.
#[macro_export]
macro_rules! required_scopes {
    ($(#[$meta:meta])* $vis:vis $name:ident = [$($scope:literal),+ $(,)?]) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        $vis struct $name;
        impl $crate::RequiredScopes for $name {
            const SCOPES: &'static [&'static str] = &[$($scope),+];
        }
    };
}

/// A [`Principal`] whose token grants every scope of `S`: extracting it answers 403
/// `insufficient_scope` otherwise (after the 400/401/503 of [`Principal`]).
pub struct Scoped<S: RequiredScopes> {
    principal: Principal,
    scopes: PhantomData<fn() -> S>,
}

impl<S: RequiredScopes> Scoped<S> {
    /// The principal.
    pub fn into_inner(self) -> Principal {
        self.principal
    }
}

impl<S: RequiredScopes> std::ops::Deref for Scoped<S> {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}

impl<S: RequiredScopes> std::fmt::Debug for Scoped<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Scoped").field(&self.principal).finish()
    }
}

fn find_guard(req: &HttpRequest) -> Option<Guard> {
    req.app_data::<Guard>().cloned().or_else(|| {
        req.app_data::<web::Data<Guard>>()
            .map(|g| g.get_ref().clone())
    })
}

fn not_configured() -> actix_web::Error {
    tracing::error!("guard extractor used without a Guard in the application data");
    let error = GuardError::NotConfigured;
    let response = plain_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "internal error",
    );
    actix_web::error::InternalError::from_response(error, response).into()
}

fn plain_error(status: StatusCode, code: &str, description: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "error": code, "error_description": description }))
}

/// `"…"` with `\` and `"` escaped (RFC 9110 §5.6.4 quoted-string).
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

impl Guard {
    /// The RFC 6750 §3 response for a refusal:
    ///
    /// - no token: 401, `WWW-Authenticate: Bearer realm="…"` without an error code (§3.1);
    /// - `invalid_request`: 400; `invalid_token`: 401; `insufficient_scope`: 403 with
    ///   `scope="…"` naming the required scopes; each with `error` and `error_description`
    ///   in the challenge and the same as a JSON body;
    /// - unavailable: 503 with `Retry-After`, never a pass.
    ///
    /// Every answer has `Cache-Control: no-store`.
    pub fn reject(&self, error: &GuardError) -> HttpResponse {
        let realm = format!("Bearer realm={}", quoted(self.realm()));
        let challenge = |status: StatusCode, code: &str, description: &str, scope: Option<&str>| {
            let mut value = format!(
                "{realm}, error={}, error_description={}",
                quoted(code),
                quoted(description)
            );
            if let Some(scope) = scope {
                value.push_str(&format!(", scope={}", quoted(scope)));
            }
            HttpResponse::build(status)
                .insert_header((WWW_AUTHENTICATE, value))
                .insert_header((CACHE_CONTROL, "no-store"))
                .json(serde_json::json!({ "error": code, "error_description": description }))
        };
        match error {
            GuardError::MissingToken => HttpResponse::Unauthorized()
                .insert_header((WWW_AUTHENTICATE, realm))
                .insert_header((CACHE_CONTROL, "no-store"))
                .finish(),
            GuardError::InvalidRequest(description) => challenge(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                description,
                None,
            ),
            GuardError::InvalidToken(problem) => challenge(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                problem.description(),
                None,
            ),
            GuardError::InsufficientScope(scope) => challenge(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                "the request requires higher privileges than provided by the access token",
                Some(scope),
            ),
            GuardError::Unavailable => {
                let mut response = plain_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the access token cannot be checked now; try again later",
                );
                response.headers_mut().insert(
                    RETRY_AFTER,
                    actix_web::http::header::HeaderValue::from_static("1"),
                );
                response
            }
            GuardError::Config(_)
            | GuardError::NoRuntime
            | GuardError::HttpClient(_)
            | GuardError::NotConfigured => plain_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal error",
            ),
        }
    }

    /// The `WWW-Authenticate` value (RFC 6750 §3) for a refusal, for edges that render
    /// their own body (problem details) around it: `Bearer realm="…"` alone without a token,
    /// with `error`, `error_description` (and `scope` for `insufficient_scope`) otherwise;
    /// `None` for refusals that are not the token's fault (503, 500).
    pub fn challenge(&self, error: &GuardError) -> Option<String> {
        let realm = format!("Bearer realm={}", quoted(self.realm()));
        let with = |code: &str, description: &str| {
            format!(
                "{realm}, error={}, error_description={}",
                quoted(code),
                quoted(description)
            )
        };
        match error {
            GuardError::MissingToken => Some(realm),
            GuardError::InvalidRequest(description) => Some(with("invalid_request", description)),
            GuardError::InvalidToken(problem) => Some(with("invalid_token", problem.description())),
            GuardError::InsufficientScope(scope) => Some(format!(
                "{}, scope={}",
                with(
                    "insufficient_scope",
                    "the request requires higher privileges than provided by the access token"
                ),
                quoted(scope)
            )),
            GuardError::Unavailable
            | GuardError::Config(_)
            | GuardError::NoRuntime
            | GuardError::HttpClient(_)
            | GuardError::NotConfigured => None,
        }
    }

    /// The decision for a request whose Bearer token can only be in the `Authorization`
    /// header (RFC 6750 §2.1; JSON APIs, whose bodies are not forms): a token that is valid
    /// and grants every one of `required`, counted in `guard_requests_total` like the
    /// extractors. The caller renders a refusal, e.g. with [`Guard::challenge`].
    pub async fn authorize_header<S: AsRef<str>>(
        &self,
        req: &HttpRequest,
        required: &[S],
    ) -> Result<Principal, GuardError> {
        let token = crate::token::from_header_only(req);
        self.authorize(token, required).await
    }

    fn to_actix_error(&self, error: GuardError) -> actix_web::Error {
        let response = self.reject(&error);
        actix_web::error::InternalError::from_response(error, response).into()
    }

    /// Middleware that lets a request through only with a valid token granting every one
    /// of `scopes` (none: any valid token), and puts its [`Principal`] in the request
    /// extensions for the handler's [`Principal`] extractor.
    pub fn protect<S: AsRef<str>>(&self, scopes: &[S]) -> Protect {
        Protect {
            guard: self.clone(),
            scopes: scopes.iter().map(|s| s.as_ref().to_owned()).collect(),
        }
    }
}

/// Authenticates from the request (header or form body) and checks `required`.
fn authorize_request(
    req: &HttpRequest,
    payload: &mut Payload,
    required: &'static [&'static str],
) -> LocalBoxFuture<'static, Result<Principal, actix_web::Error>> {
    let Some(guard) = find_guard(req) else {
        return Box::pin(ready(Err(not_configured())));
    };
    let token = crate::token::extract(req, payload);
    Box::pin(async move {
        let token = token.await;
        guard
            .authorize(token, required)
            .await
            .map_err(|e| guard.to_actix_error(e))
    })
}

/// RFC 6750: the request's Bearer token, verified. Fails with the RFC 6750 §3 response
/// (400/401, or 503 when tokens cannot be checked). Behind [`Protect`] it is the principal
/// the middleware verified.
impl FromRequest for Principal {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if let Some(principal) = req.extensions().get::<Principal>().cloned() {
            return Box::pin(ready(Ok(principal)));
        }
        authorize_request(req, payload, &[])
    }
}

impl<S: RequiredScopes + 'static> FromRequest for Scoped<S> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let wrap = |principal| Scoped {
            principal,
            scopes: PhantomData,
        };
        if let Some(principal) = req.extensions().get::<Principal>().cloned() {
            // Authenticated by `Protect` already: only the scope decision is left.
            let Some(guard) = find_guard(req) else {
                return Box::pin(ready(Err(not_configured())));
            };
            let decided = crate::check_scopes(principal, S::SCOPES);
            if let Err(e) = &decided {
                crate::record(e.result_label(), "none");
            }
            return Box::pin(ready(
                decided.map(wrap).map_err(|e| guard.to_actix_error(e)),
            ));
        }
        let fut = authorize_request(req, payload, S::SCOPES);
        Box::pin(async move { fut.await.map(wrap) })
    }
}

/// The middleware built by [`Guard::protect`].
#[derive(Clone)]
pub struct Protect {
    guard: Guard,
    scopes: Arc<[String]>,
}

impl<S, B> Transform<S, ServiceRequest> for Protect
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = ProtectService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ProtectService {
            service: Rc::new(service),
            guard: self.guard.clone(),
            scopes: Arc::clone(&self.scopes),
        }))
    }
}

/// The service [`Protect`] wraps around a scope or route.
pub struct ProtectService<S> {
    service: Rc<S>,
    guard: Guard,
    scopes: Arc<[String]>,
}

impl<S, B> Service<ServiceRequest> for ProtectService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let guard = self.guard.clone();
        let scopes = Arc::clone(&self.scopes);
        let token = {
            let (http, payload) = req.parts_mut();
            crate::token::extract(http, payload)
        };
        Box::pin(async move {
            match guard.authorize(token.await, &scopes).await {
                Ok(principal) => {
                    req.extensions_mut().insert(principal);
                    service
                        .call(req)
                        .await
                        .map(ServiceResponse::map_into_left_body)
                }
                Err(e) => {
                    let response = guard.reject(&e);
                    Ok(req.into_response(response).map_into_right_body())
                }
            }
        })
    }
}
