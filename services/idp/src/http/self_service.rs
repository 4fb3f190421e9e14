//! What the self-service pages (sign-up, "forgot password", reset, verification) share:
//! their on/off switch, the login page to go back to, the answer to a dead link, and
//! the notice pages.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use super::pages::{self, NoticePage};
use crate::{AppState, IdpError};

/// Longest `login_challenge` carried along (the login page's own limit).
const MAX_CHALLENGE: usize = 512;

/// 404 unless the flow is enabled: a disabled flow's pages do not exist.
pub(crate) fn enabled(on: bool) -> Result<(), IdpError> {
    if on {
        Ok(())
    } else {
        Err(IdpError::NotFound("This page does not exist.".to_owned()))
    }
}

/// The `login_challenge` a page was opened with, kept only when it is of a sane size and
/// alphabet (it is only carried back to the login page, never trusted).
pub(crate) fn carried_challenge(raw: Option<&str>) -> String {
    raw.map(str::trim)
        .filter(|c| {
            c.len() <= MAX_CHALLENGE
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
        })
        .unwrap_or_default()
        .to_owned()
}

/// The login page of `challenge`, if any.
pub(crate) fn back_to_login(state: &AppState, challenge: &str) -> Option<String> {
    (!challenge.is_empty()).then(|| format!("{}login{}", state.base, pages::flow_query(challenge)))
}

/// A notice page with `status`.
pub(crate) fn notice(
    status: StatusCode,
    title: &str,
    message: &str,
    link: Option<(&str, &str)>,
) -> Result<HttpResponse, IdpError> {
    let body = pages::render(&NoticePage {
        title,
        message,
        link,
    })?;
    Ok(pages::page_builder(status).body(body))
}

/// The one answer to a link that is unknown, altered, expired or already used (400): it
/// never says which.
pub(crate) fn dead_link(
    state: &AppState,
    again: &str,
    again_text: &str,
) -> Result<HttpResponse, IdpError> {
    metrics::counter!("idp_email_links_total", "result" => "invalid").increment(1);
    let href = format!("{}{again}", state.base);
    notice(
        StatusCode::BAD_REQUEST,
        "This link does not work",
        "This link is invalid, has expired or was already used. Links work once and only for a short time.",
        Some((&href, again_text)),
    )
}

/// The client's address (the TCP peer), for the rate limits.
pub(crate) fn peer(req: &HttpRequest) -> Option<std::net::IpAddr> {
    req.peer_addr().map(|a| a.ip())
}

/// Shown with 429 when a rate limit refuses a request.
pub(crate) const RATE_LIMITED: &str = "Too many requests for this address or from your network. Please wait a while before trying again.";
