//! CORS (WHATWG Fetch §3.2, the CORS protocol) for browser-based clients (OAuth 2.0 for
//! Browser-Based Applications, draft-ietf-oauth-browser-based-apps §6.3.4.1): the client
//! endpoints (token, userinfo, revocation; PAR reuses it) answer browser JavaScript of an
//! origin the client the request is about allows ([`Client::allows_origin`]: its redirect
//! URIs' origins and its `allowed_origins`), as node-oidc-provider's `clientBasedCORS`
//! and Keycloak's web origins do.
//!
//! - A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) carries no
//!   client identity, so it is answered for an origin that some registered client allows
//!   with the endpoint's methods, the request headers an OAuth client sends and
//!   `Access-Control-Max-Age`; other origins get no CORS header. (node-oidc-provider and
//!   Keycloak answer every origin here; the stricter answer costs one cached set.)
//! - The actual request: once the client is known (the authenticating client or
//!   `client_id`; at userinfo the access token's client), an allowed origin gets
//!   `Access-Control-Allow-Origin: <origin>` and `Vary: Origin` on the response, errors
//!   included; a disallowed one is refused with `invalid_request` and no CORS headers
//!   (node-oidc-provider's answer too), so that a page of another origin cannot spend a
//!   code or revoke a token with a form post the browser sends without a preflight.
//! - `Access-Control-Allow-Credentials` is never sent: these endpoints take no cookies.
//!
//! Discovery and the JWKS are public documents and answer `Access-Control-Allow-Origin: *`
//! (in `well_known/`).

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::AppState;
use crate::clients::{Client, origin_of};

/// How long a browser may cache a preflight answer, seconds (Chromium caps it at 7200).
pub(crate) const MAX_AGE: &str = "600";
/// The request headers a browser client may send: client authentication, DPoP proofs
/// (RFC 9449 §5), the form's content type, and `X-Requested-With`, which Swagger UI's
/// OAuth 2.0 client (the admin API's `/admin/docs`, issue 18) adds to its token request
/// (admin2: without it the preflight fails and "Authorize" reports "Failed to fetch"). It
/// changes nothing at these endpoints; the origin still has to be one a client allows.
pub(crate) const ALLOW_HEADERS: &str = "Authorization, Content-Type, DPoP, X-Requested-With";

/// The `Origin` request header (RFC 6454 §7), when the request has one.
pub(crate) fn origin(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("null"))
}

/// The CORS decision for `client`: `Ok(None)` without an `Origin` header (not a CORS
/// request), `Ok(Some(origin))` when `client` allows it, `Err(description)` otherwise.
pub(crate) fn check(req: &HttpRequest, client: &Client) -> Result<Option<String>, String> {
    match origin(req) {
        None => Ok(None),
        Some(o) if client.allows_origin(o) => Ok(Some(o.to_owned())),
        Some(o) => Err(format!(
            "origin {o} is not allowed for client {}",
            client.id
        )),
    }
}

/// Adds the actual response's CORS headers for an allowed `origin`:
/// `Access-Control-Allow-Origin: <origin>` and `Vary: Origin` (Fetch §3.2.5; the answer
/// differs per origin, so caches must key on it).
pub(crate) fn allow(res: &mut HttpResponse, origin: &str) {
    let Ok(value) = HeaderValue::from_str(origin) else {
        return;
    };
    let headers = res.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// Answers a CORS preflight for an endpoint serving `methods` (Fetch §3.2.2): always 204
/// with `Allow`; when it is a preflight (`Access-Control-Request-Method`) of an origin
/// some registered client allows ([`crate::clients::Clients::any_allows_origin`]), also the origin,
/// methods, headers and max age. Which client the actual request is about is checked
/// then ([`check`]); an origin no client allows gets no CORS header here already.
async fn preflight(req: &HttpRequest, state: &AppState, methods: &'static str) -> HttpResponse {
    let mut res = HttpResponse::build(StatusCode::NO_CONTENT);
    res.insert_header((header::ALLOW, methods))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    let requested = req
        .headers()
        .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let origin = origin(req).filter(|o| origin_of(o).as_deref() == Some(*o));
    let (true, Some(origin)) = (requested, origin) else {
        return res.finish();
    };
    match state.clients.any_allows_origin(origin).await {
        Ok(true) => {
            res.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.to_owned()))
                .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, methods))
                .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, MAX_AGE))
                .insert_header((header::VARY, "Origin"));
        }
        Ok(false) => {}
        // Without CORS headers the browser does not send the request; it may try again.
        Err(e) => tracing::warn!(error = %e, "CORS preflight: clients unavailable"),
    }
    res.finish()
}

/// `OPTIONS` of a POST-only client endpoint (token, revocation, PAR).
pub(crate) async fn preflight_post(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    preflight(&req, &state, "POST").await
}

/// `OPTIONS` of the userinfo endpoint (GET and POST, OpenID Connect Core §5.3).
pub(crate) async fn preflight_get_post(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> HttpResponse {
    preflight(&req, &state, "GET, POST").await
}

/// The route guard of preflights.
pub(crate) fn options() -> actix_web::Route {
    actix_web::web::method(Method::OPTIONS)
}
