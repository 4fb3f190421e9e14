//! `POST /account/avatar` (`multipart/form-data`: `csrf`, then the file `avatar`): the user
//! uploads a profile picture; `POST /account/avatar/delete` removes it. An upload larger
//! than `account.avatar_max_bytes` is `413`; a file that is not a PNG or JPEG picture, or
//! one with more than `account.avatar_max_dimension` pixels a side (decompression bombs
//! included), is `400`. The stored picture is a re-encoded square PNG (see the `account`
//! module), served at `/avatars/{user_id}`, and the `picture` claim points at it.

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Deserialize;
use tracing::instrument;

use super::{Form, back, page, posted, refused};
use crate::account::AvatarRefused;
use crate::{AppState, IdpError};

/// Longest non-file field read (the CSRF token).
const MAX_FIELD: usize = 512;

/// What the multipart body held.
#[derive(Default)]
struct Upload {
    csrf: Option<String>,
    file: Vec<u8>,
    /// The file went past the size limit (reading stopped there).
    oversized: bool,
}

/// Reads the form, keeping at most `max_file` + 1 bytes of the file.
async fn read(mut body: Multipart, max_file: usize) -> Result<Upload, IdpError> {
    let mut upload = Upload::default();
    while let Some(field) = body.next().await {
        let mut field =
            field.map_err(|_| IdpError::Invalid("The form could not be read.".into()))?;
        let name = field.name().unwrap_or_default().to_owned();
        let limit = if name == "avatar" {
            max_file
        } else {
            MAX_FIELD
        };
        let mut data = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk =
                chunk.map_err(|_| IdpError::Invalid("The form could not be read.".into()))?;
            if data.len() + chunk.len() > limit {
                if name == "avatar" {
                    upload.oversized = true;
                    return Ok(upload);
                }
                return Err(IdpError::Invalid("The form could not be read.".into()));
            }
            data.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "csrf" => upload.csrf = Some(String::from_utf8_lossy(&data).into_owned()),
            "avatar" => upload.file = data,
            _ => {}
        }
    }
    Ok(upload)
}

/// `POST /account/avatar`.
#[instrument(skip_all)]
pub(crate) async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Multipart,
) -> Result<HttpResponse, IdpError> {
    let upload = read(body, state.account.avatar_max_bytes()).await?;
    let found = match posted(&state, &req, Form::Avatar, upload.csrf.as_deref()).await? {
        Ok(found) => found,
        Err(redirect) => return Ok(redirect),
    };
    let refusal = if upload.oversized {
        Some(AvatarRefused::TooLarge(state.account.avatar_max_bytes()))
    } else if upload.file.is_empty() {
        Some(AvatarRefused::NotAnImage)
    } else {
        state.account.set_avatar(&found.1, upload.file).await?.err()
    };
    let Some(refusal) = refusal else {
        return Ok(back(&state, "avatar"));
    };
    let status = match refusal {
        AvatarRefused::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        AvatarRefused::NotAnImage | AvatarRefused::TooManyPixels(_) => StatusCode::BAD_REQUEST,
    };
    page::render(
        &state,
        &req,
        &found.0,
        &found.1,
        status,
        None,
        Some(&refusal.to_string()),
    )
    .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct Removal {
    #[serde(default)]
    csrf: Option<String>,
}

/// `POST /account/avatar/delete`.
#[instrument(skip_all)]
pub(crate) async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Removal>,
) -> Result<HttpResponse, IdpError> {
    let found = match posted(&state, &req, Form::Avatar, form.csrf.as_deref()).await? {
        Ok(found) => found,
        Err(redirect) => return Ok(redirect),
    };
    match state.account.remove_avatar(&found.1).await {
        Ok(()) => Ok(back(&state, "avatar-removed")),
        Err(e) => refused(&state, &req, &found, e).await,
    }
}
