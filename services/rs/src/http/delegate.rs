//! `GET /api/v1/delegate`: a route that calls a downstream service on the caller's behalf.
//! Any valid token; rs exchanges it (RFC 8693) for a token for the downstream audience,
//! with itself as the actor, and calls `/api/v1/downstream` with that token.

use actix_web::http::header::{AUTHORIZATION, CACHE_CONTROL};
use actix_web::{HttpRequest, HttpResponse, web};
use guard::Principal;
use tracing::instrument;

use crate::RsError;
use crate::exchange::Exchanger;

/// The caller (`sub`, `client_id`) and what the downstream route saw (`downstream`: its
/// `sub`, `client_id`, `scopes`, `aud` and `act` chain). 502 `exchange_failed` or
/// `downstream_failed` when either step fails.
#[instrument(skip_all)]
pub(crate) async fn get(
    req: HttpRequest,
    principal: Principal,
    exchanger: web::Data<Exchanger>,
) -> Result<HttpResponse, RsError> {
    // The guard accepted the request, so it carries a Bearer (or DPoP) access token.
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(_, t)| t.trim())
        .unwrap_or_default();
    let exchanged = exchanger.exchange(token).await?;
    let downstream = exchanger.call_downstream(&exchanged).await?;
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "sub": principal.sub,
            "client_id": principal.client_id,
            "downstream": downstream,
        })))
}
