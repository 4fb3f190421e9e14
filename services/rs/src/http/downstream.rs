//! `GET /api/v1/downstream`: the downstream service of the token exchange demo. Its guard
//! requires the exchange audience (`exchange.audience`), so only an exchanged token gets
//! in; it answers who the token speaks for and the delegation chain (RFC 8693 §4.1).

use std::collections::BTreeSet;

use actix_web::HttpResponse;
use actix_web::http::header::CACHE_CONTROL;
use guard::{Actor, Principal};
use serde::Serialize;

/// The response body.
#[derive(Serialize)]
pub(crate) struct Seen<'a> {
    sub: &'a str,
    client_id: &'a str,
    scopes: &'a BTreeSet<String>,
    aud: &'a [String],
    /// The actors, current first (RFC 8693 §4.1).
    act: &'a [Actor],
}

/// The token's subject, client, scopes, audiences and actor chain.
pub(crate) async fn get(principal: Principal) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(Seen {
            sub: &principal.sub,
            client_id: &principal.client_id,
            scopes: &principal.scopes,
            aud: &principal.aud,
            act: &principal.act,
        })
}
