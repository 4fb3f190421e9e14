//! The UserInfo endpoint (OpenID Connect Core §5.3), GET and POST, with Bearer token
//! usage and errors per RFC 6750.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use domain::{ErrorCode, ScopeSet};

use super::cors;
use super::oauth::{Form, failure_status, retry_after};
use crate::AppState;
use crate::error::Failure;
use crate::grants::claims::scoped_claims;
use crate::idp::IdpError;

/// An RFC 6750 §3 refusal: status, `WWW-Authenticate: Bearer` with the error (none when
/// the request carried no token at all, §3.1), never cached.
fn refuse(status: StatusCode, error: Option<(ErrorCode, &str)>) -> HttpResponse {
    let mut challenge = r#"Bearer realm="authz""#.to_owned();
    let mut body = serde_json::Map::new();
    if let Some((code, description)) = error {
        challenge.push_str(&format!(
            r#", error="{}", error_description="{description}""#,
            code.as_str()
        ));
        if code == ErrorCode::InsufficientScope {
            challenge.push_str(r#", scope="openid""#);
        }
        body.insert("error".into(), code.as_str().into());
        body.insert("error_description".into(), description.into());
        metrics::counter!("userinfo_errors_total", "error" => code.as_str()).increment(1);
    }
    let mut res = HttpResponse::build(status);
    res.insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        res.insert_header((header::WWW_AUTHENTICATE, challenge));
    }
    retry_after(&mut res, status);
    if body.is_empty() {
        res.finish()
    } else {
        res.json(body)
    }
}

fn invalid_request(description: &str) -> HttpResponse {
    refuse(
        StatusCode::BAD_REQUEST,
        Some((ErrorCode::InvalidRequest, description)),
    )
}

/// The access token of the request: the `Authorization: Bearer` header (RFC 6750 §2.1)
/// or, on POST, the `access_token` form parameter (§2.2); never both, never the query
/// (§2.3 is not offered: URLs end up in logs).
fn bearer(req: &HttpRequest, body: &[u8]) -> Result<Option<String>, String> {
    let header = match req.headers().get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let value = value
                .to_str()
                .map_err(|_| "malformed Authorization header".to_owned())?;
            match value.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                    let token = token.trim();
                    if token.is_empty() {
                        return Err("malformed Authorization header".to_owned());
                    }
                    Some(token.to_owned())
                }
                _ => None,
            }
        }
    };
    let query = Form::from_urlencoded(req.query_string().as_bytes());
    if !matches!(query.get("access_token"), Ok(None)) {
        return Err("send the access token in the Authorization header, not in the URL".to_owned());
    }
    let form = if req.method() == actix_web::http::Method::POST && !body.is_empty() {
        let form = Form::parse(req, body)
            .map_err(|_| "the body must be application/x-www-form-urlencoded".to_owned())?;
        form.get("access_token")?.map(str::to_owned)
    } else {
        None
    };
    match (header, form) {
        (Some(_), Some(_)) => Err("the access token must be sent in one place only".to_owned()),
        (h, f) => Ok(h.or(f)),
    }
}

/// `GET|POST /userinfo` (OpenID Connect Core §5.3): `sub` and the standard claims of the
/// token's scopes (§5.4), for an active access token of this server that carries `openid`.
/// A disabled or deleted user makes the token invalid. A browser request of an origin the
/// token's client allows gets the CORS headers; another origin is refused with
/// `invalid_request` ([`cors`]).
pub(crate) async fn handle(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let mut origin = None;
    let mut res = answer(&req, &body, &state, &mut origin).await;
    if let Some(origin) = origin {
        cors::allow(&mut res, &origin);
    }
    res
}

async fn answer(
    req: &HttpRequest,
    body: &web::Bytes,
    state: &web::Data<AppState>,
    origin: &mut Option<String>,
) -> HttpResponse {
    let token = match bearer(req, body) {
        Ok(Some(token)) => token,
        Ok(None) => return refuse(StatusCode::UNAUTHORIZED, None),
        Err(description) => return invalid_request(&description),
    };
    let info = match state.tokens.introspect(&token).await {
        Ok(info) => info,
        Err(failure) => return refuse(failure_status(&failure), None),
    };
    let (true, Some(sub)) = (info.active, info.sub) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            Some((
                ErrorCode::InvalidToken,
                "the access token is invalid, expired or revoked",
            )),
        );
    };
    if cors::origin(req).is_some() {
        let client = match info.client_id.as_deref() {
            Some(id) => state.clients.find(id).await,
            None => Ok(None),
        };
        let client = match client {
            Ok(client) => client,
            Err(e) => return refuse(failure_status(&Failure::from(e)), None),
        };
        let Some(client) = client else {
            return refuse(
                StatusCode::UNAUTHORIZED,
                Some((ErrorCode::InvalidToken, "the token's client is gone")),
            );
        };
        match cors::check(req, &client) {
            Ok(allowed) => *origin = allowed,
            Err(description) => return invalid_request(&description),
        }
    }
    let scope = ScopeSet::parse(info.scope.as_deref().unwrap_or_default()).unwrap_or_default();
    if !scope.contains("openid") {
        return refuse(
            StatusCode::FORBIDDEN,
            Some((
                ErrorCode::InsufficientScope,
                "the access token was not issued for OpenID Connect (no openid scope)",
            )),
        );
    }
    let user = match state.idp.user_claims(&sub, &scope).await {
        Ok(user) => user,
        Err(IdpError::UserGone) => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                Some((ErrorCode::InvalidToken, "the user is no longer active")),
            );
        }
        Err(e) => return refuse(failure_status(&Failure::from(e)), None),
    };
    let mut claims = scoped_claims(&user, &scope);
    claims.insert("sub".into(), sub.into());
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(claims)
}
