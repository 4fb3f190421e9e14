//! PAR: the pushed authorization request endpoint (RFC 9126 §2). The client authenticates
//! as at the token endpoint, sends the parameters of an authorization request (or a
//! request object, RFC 9101, in `request`), and gets a single-use, short-lived
//! `request_uri` for `/authorize`.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use domain::ErrorCode;

use super::oauth::{Form, OAuthFailure, authenticated_form};
use crate::AppState;

/// Client authentication parameters, which are not part of the authorization request.
const AUTHENTICATION_PARAMS: &[&str] =
    &["client_secret", "client_assertion", "client_assertion_type"];

/// `POST /par`: 201 `{"request_uri","expires_in"}` (RFC 9126 §2.2); 401 `invalid_client`;
/// 400 with the error `/authorize` would have given (RFC 9126 §2.3), or
/// `invalid_request_object` for a bad request object. Never cached.
pub(crate) async fn post(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    match push(&req, &body, &state).await {
        Ok(res) => res,
        Err(failure) => failure.error_response(),
    }
}

async fn push(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
) -> Result<HttpResponse, OAuthFailure> {
    let (form, client) = authenticated_form(req, body, state).await?;
    if form.one("request_uri")?.is_some() {
        return Err(OAuthFailure::invalid_request(
            "request_uri must not be pushed (RFC 9126 §2.1)",
        ));
    }
    let mut pairs: Vec<(String, String)> = match form.one("request")? {
        // RFC 9126 §3: with a request object only its parameters count.
        Some(request) => super::jar::verify(state, &client, request, state.pushed.now())
            .await
            .map_err(|m| OAuthFailure::bad(ErrorCode::InvalidRequestObject, m))?,
        None => form
            .pairs()
            .iter()
            .filter(|(k, _)| !AUTHENTICATION_PARAMS.contains(&k.as_str()))
            .cloned()
            .collect(),
    };
    let id = client.id.as_str();
    if pairs.iter().any(|(k, v)| k == "client_id" && v != id) {
        return Err(OAuthFailure::invalid_request(
            "client_id is not the authenticated client's",
        ));
    }
    if !pairs.iter().any(|(k, _)| k == "client_id") {
        pairs.push(("client_id".to_owned(), id.to_owned()));
    }
    let params = Form::from_pairs(pairs);
    super::authorize::check_pushed(&params, state).await?;
    let (request_uri, expires_in) = state
        .pushed
        .push(id, params.pairs())
        .await
        .map_err(OAuthFailure::from)?;
    metrics::counter!("pushed_authorization_requests_total").increment(1);
    Ok(HttpResponse::build(StatusCode::CREATED)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(serde_json::json!({ "request_uri": request_uri, "expires_in": expires_in })))
}
