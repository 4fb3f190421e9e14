//! `GET /api/v1/me`: who the token speaks for. Any valid token.

use std::collections::BTreeSet;

use actix_web::HttpResponse;
use actix_web::http::header::CACHE_CONTROL;
use guard::{Actor, Principal};
use serde::Serialize;

/// The response body.
#[derive(Serialize)]
struct Me<'a> {
    sub: &'a str,
    client_id: &'a str,
    scopes: &'a BTreeSet<String>,
    aud: &'a [String],
    exp: i64,
    /// RFC 8693 §4.1 actors of an exchanged token, current first; omitted when none.
    #[serde(skip_serializing_if = "<[Actor]>::is_empty")]
    act: &'a [Actor],
}

/// The token's subject, client, scopes, audiences, expiry and actor chain.
pub(crate) async fn get(principal: Principal) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(Me {
            sub: &principal.sub,
            client_id: &principal.client_id,
            scopes: &principal.scopes,
            aud: &principal.aud,
            exp: principal.exp,
            act: &principal.act,
        })
}
