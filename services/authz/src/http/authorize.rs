//! The authorization endpoint (RFC 6749 §3.1, §4.1.1-§4.1.2; OpenID Connect Core
//! §3.1.2), GET and POST.
//!
//! Until `client_id` and `redirect_uri` are known to belong together (an exact match with
//! a registered redirect URI), every problem is shown on an error page and nothing is
//! redirected (RFC 6749 §4.1.2.1, RFC 9700 §4.1). After that every response goes to the
//! redirect URI, by query or `form_post`, with `state` and `iss` (RFC 9207 §2) on
//! successes and errors alike.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use domain::{CodeChallenge, ErrorCode, GrantType, OAuthError, Prompt, ResponseMode, ScopeSet};

use super::oauth::{Form, authorization_error, failure_status};
use super::pages::{self, SESSION_COOKIE, set_cookie};
use crate::AppState;
use crate::error::Failure;
use crate::flow::{AuthorizationRequest, MAX_PARAM_LEN, Outcome, ReplyTo, SessionCookie, Step};

/// Why a request is refused.
enum Refusal {
    /// Shown on an error page: the redirect URI is not trusted.
    Page(StatusCode, String),
    /// Sent to the client's redirect URI.
    Redirect(ReplyTo, OAuthError),
}

fn page(message: impl Into<String>) -> Refusal {
    Refusal::Page(StatusCode::BAD_REQUEST, message.into())
}

/// `GET /authorize`: parameters in the query (RFC 6749 §3.1).
pub(crate) async fn get(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let params = Form::from_urlencoded(req.query_string().as_bytes());
    handle(&req, &params, &state).await
}

/// `POST /authorize`: parameters in an `application/x-www-form-urlencoded` body (OpenID
/// Connect Core §3.1.2.1).
pub(crate) async fn post(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    match Form::parse(&req, &body) {
        Ok(params) => handle(&req, &params, &state).await,
        Err(_) => pages::error(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The authorization request must be sent as application/x-www-form-urlencoded.",
        ),
    }
}

async fn handle(req: &HttpRequest, params: &Form, state: &AppState) -> HttpResponse {
    // PAR / JAR: the parameters the request really carries.
    let (params, pushed) = match resolve(params, state).await {
        Ok(resolved) => resolved,
        Err(page) => return page,
    };
    let params = &params;
    match validate(params, state, pushed).await {
        Err(Refusal::Page(status, message)) => {
            let title = if status.is_server_error() {
                "The sign-in request cannot be handled now"
            } else {
                "The sign-in request is invalid"
            };
            pages::error(status, title, &message)
        }
        Err(Refusal::Redirect(reply_to, error)) => {
            respond(state, &reply_to, Err(error), SessionCookie::Keep, None)
        }
        Ok(request) => {
            let session = pages::cookie(req, SESSION_COOKIE);
            // The TCP peer, never X-Forwarded-For / Forwarded: a client could forge those.
            let peer = req.peer_addr().map(|a| a.ip());
            let outcome = state
                .flow
                .authorize(&request, session.as_deref(), peer)
                .await;
            reply(state, &request.reply_to, outcome, None)
        }
    }
}

// PAR (RFC 9126) and JAR (RFC 9101)
/// An error page for a `request_uri` or request object that cannot be used: the redirect
/// URI is inside it, so nothing can be redirected (RFC 9101 §6.2, RFC 9126 §4). The page
/// names the error code.
fn refused(code: domain::ErrorCode, message: &str) -> HttpResponse {
    metrics::counter!("authorize_errors_total", "error" => code.as_str()).increment(1);
    pages::error(
        StatusCode::BAD_REQUEST,
        "The sign-in request is invalid",
        &format!("{code}: {message}"),
    )
}

/// The parameters of the request (RFC 9126 §4, RFC 9101 §5):
/// - `request_uri` of a pushed request: its stored parameters, once, for the `client_id`
///   that pushed it (`invalid_request_uri` otherwise); returned with `pushed = true`;
/// - `request` (by value): the verified request object's parameters, which replace the
///   query's (RFC 9101 §6.3: only the object's parameters are used; its `client_id`
///   must be the outer one);
/// - otherwise the parameters as sent. Other `request_uri`s (other origins) are left
///   to [`validate`], which answers `request_uri_not_supported`.
async fn resolve(params: &Form, state: &AppState) -> Result<(Form, bool), HttpResponse> {
    let bad = |e: String| {
        pages::error(
            StatusCode::BAD_REQUEST,
            "The sign-in request is invalid",
            &e,
        )
    };
    let request_uri = params.get("request_uri").map_err(bad)?;
    let request = params.get("request").map_err(bad)?;
    if request_uri.is_none() && request.is_none() {
        return Ok((Form::from_pairs(params.pairs().to_vec()), false));
    }
    if request_uri.is_some() && request.is_some() {
        return Err(refused(
            domain::ErrorCode::InvalidRequest,
            "use request or request_uri, not both",
        ));
    }
    let Some(client_id) = params.get("client_id").map_err(bad)? else {
        return Err(refused(
            domain::ErrorCode::InvalidRequest,
            "The request has no client_id.",
        ));
    };
    let unavailable = |e: storage::StorageError| {
        let status = failure_status(&Failure::from(e));
        pages::error(
            status,
            "The sign-in request cannot be handled now",
            "Try again in a moment.",
        )
    };
    if let Some(uri) = request_uri {
        if !uri.starts_with(crate::par::REQUEST_URI_PREFIX) {
            return Ok((Form::from_pairs(params.pairs().to_vec()), false));
        }
        return match state.pushed.take(uri, client_id).await {
            Ok(pairs) => Ok((Form::from_pairs(pairs), true)),
            Err(crate::par::TakeError::Invalid) => Err(refused(
                domain::ErrorCode::InvalidRequestUri,
                "the request_uri is unknown, expired, already used or not this client's",
            )),
            Err(crate::par::TakeError::Storage(e)) => Err(unavailable(e)),
        };
    }
    let request = request.unwrap_or_default();
    let client = state
        .clients
        .find(client_id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| {
            refused(
                domain::ErrorCode::InvalidRequest,
                "The application (client_id) is not registered here.",
            )
        })?;
    match super::jar::verify(state, &client, request, state.pushed.now()).await {
        Ok(pairs) => Ok((Form::from_pairs(pairs), false)),
        Err(message) => Err(refused(domain::ErrorCode::InvalidRequestObject, &message)),
    }
}

/// PAR (RFC 9126 §2.1): checks the parameters of a pushed request exactly as
/// `/authorize` would, answering what it would have answered as a JSON error (RFC 9126
/// §2.3).
pub(super) async fn check_pushed(
    params: &Form,
    state: &AppState,
) -> Result<(), super::oauth::OAuthFailure> {
    use super::oauth::OAuthFailure;
    match validate(params, state, true).await {
        Ok(_) => Ok(()),
        Err(Refusal::Page(status, message)) if status.is_server_error() => {
            Err(OAuthFailure::bad(domain::ErrorCode::ServerError, message))
        }
        Err(Refusal::Page(_, message)) => Err(OAuthFailure::invalid_request(message)),
        Err(Refusal::Redirect(_, error)) => Err(OAuthFailure::from(error)),
    }
}

/// Parses the request into an [`AuthorizationRequest`]: first the client and its exact
/// redirect URI (errors → page), then everything else (errors → redirect). `pushed`: the
/// parameters come from a pushed request (or are being pushed), which satisfies
/// `require_pushed_authorization_requests` (RFC 9126 §5, §6).
async fn validate(
    params: &Form,
    state: &AppState,
    pushed: bool,
) -> Result<AuthorizationRequest, Refusal> {
    let client_id = params
        .get("client_id")
        .map_err(page)?
        .ok_or_else(|| page("The request has no client_id."))?;
    let client = state
        .clients
        .find(client_id)
        .await
        .map_err(|e| {
            let status = failure_status(&Failure::from(e));
            let message = if status == StatusCode::SERVICE_UNAVAILABLE {
                "The service is busy. Try again in a moment."
            } else {
                "Something went wrong on our side."
            };
            Refusal::Page(status, message.into())
        })?
        .ok_or_else(|| page("The application (client_id) is not registered here."))?;
    let redirect_uri = params
        .get("redirect_uri")
        .map_err(page)?
        .ok_or_else(|| page("The request has no redirect_uri."))?;
    if domain::find_redirect_uri(&client.redirect_uris, redirect_uri).is_none() {
        return Err(page(
            "The redirect_uri is not registered for this application, so the result cannot be sent back to it.",
        ));
    }
    // From here on the redirect URI is trusted.
    let state_param = params.get("state").ok().flatten().map(str::to_owned);
    let mut reply_to = ReplyTo {
        redirect_uri: redirect_uri.to_owned(),
        mode: ResponseMode::Query,
        state: state_param,
    };
    let fail = |reply_to: &ReplyTo, code: ErrorCode, description: String| {
        Refusal::Redirect(reply_to.clone(), OAuthError::new(code, description))
    };
    let invalid = |reply_to: &ReplyTo, description: String| {
        fail(reply_to, ErrorCode::InvalidRequest, description)
    };
    reply_to.mode = match params.get("response_mode") {
        Ok(raw) => ResponseMode::parse(raw).map_err(|e| invalid(&reply_to, e))?,
        Err(e) => return Err(invalid(&reply_to, e)),
    };
    if let Err(e) = params.get("state") {
        return Err(invalid(&reply_to, e));
    }
    // Every other parameter at most once (RFC 6749 §3.1).
    let one = |name: &str| params.get(name).map_err(|e| invalid(&reply_to, e));
    if one("request")?.is_some() {
        return Err(fail(
            &reply_to,
            ErrorCode::RequestNotSupported,
            "request objects are not supported".into(),
        ));
    }
    if one("request_uri")?.is_some() {
        return Err(fail(
            &reply_to,
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported".into(),
        ));
    }
    // PAR (RFC 9126 §5, §6): globally or for this client, only pushed requests.
    if !pushed && (state.pushed.required || client.require_pushed_authorization_requests) {
        return Err(invalid(
            &reply_to,
            "this client must push its authorization requests to the pushed authorization \
             request endpoint first (RFC 9126)"
                .into(),
        ));
    }
    match one("response_type")? {
        None => return Err(invalid(&reply_to, "response_type is required".into())),
        Some("code") => {}
        Some(other) => {
            return Err(fail(
                &reply_to,
                ErrorCode::UnsupportedResponseType,
                format!("response_type {other:?} is not supported; use code"),
            ));
        }
    }
    if !client.grant_types.contains(&GrantType::AuthorizationCode) {
        return Err(fail(
            &reply_to,
            ErrorCode::UnauthorizedClient,
            "this client may not use the authorization code flow".into(),
        ));
    }
    let code_challenge =
        CodeChallenge::parse(one("code_challenge")?, one("code_challenge_method")?)
            .map_err(|e| invalid(&reply_to, e.to_string()))?;
    let scope = match one("scope")? {
        None => {
            return Err(fail(
                &reply_to,
                ErrorCode::InvalidScope,
                "scope is required".into(),
            ));
        }
        Some(raw) => ScopeSet::parse(raw)
            .map_err(|e| fail(&reply_to, ErrorCode::InvalidScope, e.to_string()))?,
    };
    if !scope.is_subset(&client.scopes) {
        return Err(fail(
            &reply_to,
            ErrorCode::InvalidScope,
            format!(
                "not allowed for this client: {}",
                scope.difference(&client.scopes)
            ),
        ));
    }
    let prompt = Prompt::parse(one("prompt")?).map_err(|e| invalid(&reply_to, e))?;
    let max_age = domain::parse_max_age(one("max_age")?).map_err(|e| invalid(&reply_to, e))?;
    let bounded = |name: &str| -> Result<String, Refusal> {
        let value = one(name)?.unwrap_or_default();
        if value.len() > MAX_PARAM_LEN {
            return Err(invalid(
                &reply_to,
                format!("{name} is longer than {MAX_PARAM_LEN} characters"),
            ));
        }
        Ok(value.to_owned())
    };
    let nonce = Some(bounded("nonce")?).filter(|n| !n.is_empty());
    let login_hint = bounded("login_hint")?;
    // upstream sign-in: Keycloak's kc_idp_hint, handed to idp's login page.
    let idp_hint = bounded("kc_idp_hint")?;
    let words = |s: String| {
        s.split(' ')
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let ui_locales = words(bounded("ui_locales")?);
    let acr_values = words(bounded("acr_values")?);
    if reply_to
        .state
        .as_ref()
        .is_some_and(|s| s.len() > MAX_PARAM_LEN)
    {
        return Err(invalid(
            &reply_to,
            format!("state is longer than {MAX_PARAM_LEN} characters"),
        ));
    }
    let hinted_subject = match one("id_token_hint")? {
        None => None,
        Some(hint) => {
            let claims = state.tokens.verified_id_token(hint).ok_or_else(|| {
                invalid(
                    &reply_to,
                    "id_token_hint is not an ID token issued by this server".into(),
                )
            })?;
            Some(
                claims
                    .get("sub")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            )
        }
    };
    Ok(AuthorizationRequest {
        client,
        reply_to,
        nonce,
        scope,
        code_challenge,
        prompt,
        max_age,
        login_hint,
        ui_locales,
        acr_values,
        hinted_subject,
        idp_hint,
    })
}

/// Answers the browser once the redirect URI is trusted: off to idp, or the
/// authorization response (RFC 6749 §4.1.2 / §4.1.2.1 with RFC 9207 `iss`) in the
/// request's response mode; with the cookie changes of `outcome`, and `clear_flow` (the
/// name of a flow cookie that is no longer needed) when the flow is over.
pub(crate) fn reply(
    state: &AppState,
    reply_to: &ReplyTo,
    outcome: Outcome,
    clear_flow: Option<&str>,
) -> HttpResponse {
    let step = outcome.step.map_err(authorization_error);
    respond(state, reply_to, step, outcome.session, clear_flow)
}

/// [`reply`] with the error already in its wire form.
fn respond(
    state: &AppState,
    reply_to: &ReplyTo,
    step: Result<Step, OAuthError>,
    session: SessionCookie,
    clear_flow: Option<&str>,
) -> HttpResponse {
    let mut cookies = Vec::new();
    match &session {
        SessionCookie::Keep => {}
        SessionCookie::Set(value) => cookies.push(set_cookie(
            SESSION_COOKIE,
            value,
            "/",
            state.flow.session_ttl(),
            state.secure_cookies,
        )),
        SessionCookie::Clear => {
            cookies.push(set_cookie(SESSION_COOKIE, "", "/", 0, state.secure_cookies));
        }
    }
    let mut params: Vec<(&str, String)> = Vec::new();
    match step {
        Ok(Step::Idp { location, flow }) => {
            if let Some(flow) = flow {
                cookies.push(set_cookie(
                    &flow.name,
                    &flow.value,
                    super::AUTHORIZE_PATH,
                    state.flow.request_ttl(),
                    state.secure_cookies,
                ));
            }
            let mut res = HttpResponse::SeeOther();
            res.insert_header((header::LOCATION, location))
                .insert_header((header::CACHE_CONTROL, "no-store"));
            for c in cookies {
                res.append_header((header::SET_COOKIE, c));
            }
            return res.finish();
        }
        Ok(Step::Code(code)) => {
            metrics::counter!("authorization_codes_issued_total").increment(1);
            params.push(("code", code));
        }
        Err(error) => {
            metrics::counter!("authorize_errors_total", "error" => error.code.as_str())
                .increment(1);
            params.push(("error", error.code.as_str().to_owned()));
            if !error.description.is_empty() {
                params.push(("error_description", error.description));
            }
        }
    }
    if let Some(s) = &reply_to.state {
        params.push(("state", s.clone()));
    }
    params.push(("iss", state.issuer.clone()));
    if let Some(name) = clear_flow {
        cookies.push(set_cookie(
            name,
            "",
            super::AUTHORIZE_PATH,
            0,
            state.secure_cookies,
        ));
    }
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut res = match reply_to.mode {
        ResponseMode::Query => HttpResponse::SeeOther(),
        ResponseMode::FormPost => HttpResponse::Ok(),
    };
    res.insert_header((header::CACHE_CONTROL, "no-store"));
    for c in cookies {
        res.append_header((header::SET_COOKIE, c));
    }
    match reply_to.mode {
        ResponseMode::Query => res
            .insert_header((
                header::LOCATION,
                domain::with_query(&reply_to.redirect_uri, &pairs),
            ))
            .finish(),
        ResponseMode::FormPost => pages::form_post(res, &reply_to.redirect_uri, &pairs),
    }
}
