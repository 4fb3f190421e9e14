//! `GET /avatars/{user_id}`: a user's profile picture (the `picture` claim's target), a
//! PNG with an `ETag`, cacheable for a day (`picture` URLs carry `?v=<etag>`, so a new
//! picture is a new URL); `If-None-Match` with the current tag is `304`. `404` without one.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::http::error_page;
use crate::{AppState, IdpError};

/// `GET /avatars/{user_id}`.
pub(crate) async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, IdpError> {
    let id = path.into_inner();
    let Some((png, etag)) = state.account.avatar(&id).await? else {
        return Ok(error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such picture.",
        ));
    };
    let tag = format!("\"{etag}\"");
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut builder = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    builder
        .insert_header((
            header::ETAG,
            HeaderValue::from_str(&tag).map_err(|_| IdpError::Task("etag".into()))?,
        ))
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; sandbox",
        ));
    if matches {
        return Ok(builder.finish());
    }
    Ok(builder.content_type("image/png").body(png))
}
