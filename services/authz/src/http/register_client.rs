//! dcr: the client configuration endpoint (RFC 7592 §2): `GET`, `PUT` and `DELETE
//! /register/{client_id}` with the client's registration access token as Bearer token.
//! An unknown client and a wrong token get the same 401 `invalid_token` (RFC 7592 §2.1).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use super::oauth::{OAuthFailure, bearer};
use super::register::{client_uri, require_json};
use crate::AppState;

fn answer(result: Result<HttpResponse, OAuthFailure>) -> HttpResponse {
    result.unwrap_or_else(|failure| failure.error_response())
}

fn json(body: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

/// `GET /register/{client_id}` (RFC 7592 §2.1): the registered metadata.
pub(crate) async fn get(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    answer(
        async {
            let token = bearer(&req)?;
            let mut body = state.registrations.read(&path, token).await?;
            body["registration_client_uri"] = client_uri(&state, &path).into();
            Ok(json(body))
        }
        .await,
    )
}

/// `PUT /register/{client_id}` (RFC 7592 §2.2): replaces the metadata and answers with a
/// new registration access token; the old one stops working.
pub(crate) async fn put(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    answer(
        async {
            let token = bearer(&req)?;
            require_json(&req)?;
            let registration = state.registrations.update(&path, token, &body).await?;
            Ok(json(registration.to_json(&client_uri(&state, &path))))
        }
        .await,
    )
}

/// `DELETE /register/{client_id}` (RFC 7592 §2.3): 204; the client and everything issued
/// to it are gone.
pub(crate) async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    answer(
        async {
            let token = bearer(&req)?;
            state.registrations.delete(&path, token).await?;
            Ok(HttpResponse::NoContent()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish())
        }
        .await,
    )
}
