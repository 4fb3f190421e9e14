//! `POST /admin/v1/users`: creates a user (201 with `Location` and `ETag`). The password is
//! hashed with argon2id on the blocking pool, never stored or shown in clear; the write and
//! its `user.created` audit event share one transaction.

use actix_web::{HttpResponse, web};
use admin_api::scope::UsersWrite;
use admin_api::{Admin, AdminError, AdminJson, Problem};
use config::Secret;
use serde::Deserialize;
use tracing::instrument;
use utoipa::ToSchema;

use super::{ProfileInput, UserView, answer};
use crate::AppState;
use crate::admin::error::on_field;
use crate::users::NewUser;

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateInput {
    /// Login name: 1-64 characters of `a-z 0-9 . _ - @ +` (stored lower-case; unique).
    username: String,
    /// The password (at least `passwords.min_length` characters). Never shown again.
    #[schema(value_type = String, format = Password)]
    password: Secret<String>,
    /// `email` (stored lower-case; unique).
    email: Option<String>,
    /// `email_verified` (default `false`).
    #[serde(default)]
    email_verified: bool,
    /// `name`.
    name: Option<String>,
    /// `given_name`.
    given_name: Option<String>,
    /// `family_name`.
    family_name: Option<String>,
    /// `picture`: an http or https URL.
    picture: Option<String>,
    /// `locale`: a BCP 47 language tag such as `en-GB`.
    locale: Option<String>,
}

/// Creates a user.
#[utoipa::path(
    post,
    path = "/admin/v1/users",
    operation_id = "users_create",
    tag = "users",
    request_body = CreateInput,
    security(("admin" = ["admin:users:write"])),
    responses(
        (status = 201, description = "Created", body = UserView,
         headers(("Location" = String, description = "The new user"),
                 ("ETag" = String, description = "Its revision"))),
        (status = 400, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:users:write", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Username or email in use", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    )
)]
#[instrument(skip_all)]
pub(crate) async fn handle(
    admin: Admin<UsersWrite>,
    state: web::Data<AppState>,
    body: AdminJson<CreateInput>,
) -> Result<HttpResponse, AdminError> {
    let result: Result<HttpResponse, AdminError> = async {
        let input = body.into_inner()?;
        let username =
            crate::users::normalize_username(&input.username).map_err(on_field("username"))?;
        let profile = ProfileInput {
            email: input.email,
            email_verified: input.email_verified,
            name: input.name,
            given_name: input.given_name,
            family_name: input.family_name,
            picture: input.picture,
            locale: input.locale,
        }
        .into_profile()?;
        let user = state
            .users
            .create_by(
                &crate::admin::caller(&admin),
                NewUser { username, profile },
                input.password.expose().clone(),
            )
            .await
            .map_err(on_field("password"))?;
        let location = format!("/admin/v1/users/{}", user.id);
        let mut created = HttpResponse::Created();
        created.insert_header(("Location", location));
        Ok(answer(created, &user))
    }
    .await;
    crate::admin::audit_refusal(&state, &admin, audit::Action::UserCreated, None, result).await
}
