//! `/admin/v1/users`: the users of the identity provider. A user's entity tag is its
//! revision, `updated_at` (every write moves it forward).

pub(crate) mod create;
pub(crate) mod delete;
pub(crate) mod disable;
pub(crate) mod enable;
pub(crate) mod get;
pub(crate) mod list;
pub(crate) mod set_password;
pub(crate) mod update;

use actix_web::HttpResponse;
use admin_api::{AdminError, etag};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::users::{Profile, User, claim_text, locale};

/// The collection.
pub(crate) const PATH: &str = "/admin/v1/users";
/// One user, by id.
pub(crate) const ITEM_PATH: &str = "/admin/v1/users/{user_id}";
/// Disables a user.
pub(crate) const DISABLE_PATH: &str = "/admin/v1/users/{user_id}/disable";
/// Enables a user.
pub(crate) const ENABLE_PATH: &str = "/admin/v1/users/{user_id}/enable";
/// Sets a user's password.
pub(crate) const PASSWORD_PATH: &str = "/admin/v1/users/{user_id}/password";

/// A user as the API shows it: never the password or its hash. The same fields as
/// `idp users show --json`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserView {
    /// Stable, opaque id: the OIDC `sub`.
    pub(crate) id: String,
    /// Login name, lower-case.
    pub(crate) username: String,
    /// `email`, lower-case.
    pub(crate) email: Option<String>,
    /// `email_verified`.
    pub(crate) email_verified: bool,
    /// `name`.
    pub(crate) name: Option<String>,
    /// `given_name`.
    pub(crate) given_name: Option<String>,
    /// `family_name`.
    pub(crate) family_name: Option<String>,
    /// `picture` (URL).
    pub(crate) picture: Option<String>,
    /// `locale` (BCP 47).
    pub(crate) locale: Option<String>,
    /// Disabled users cannot sign in.
    pub(crate) disabled: bool,
    /// Creation time, Unix seconds.
    pub(crate) created_at: i64,
    /// Last change, Unix seconds (the revision of the `ETag`).
    pub(crate) updated_at: i64,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.clone(),
            username: u.username.clone(),
            email: u.profile.email.clone(),
            email_verified: u.profile.email_verified,
            name: u.profile.name.clone(),
            given_name: u.profile.given_name.clone(),
            family_name: u.profile.family_name.clone(),
            picture: u.profile.picture.clone(),
            locale: u.profile.locale.clone(),
            disabled: u.disabled,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// A user's profile claims (OpenID Connect Core 1.0 §5.1): a replace sets exactly these,
/// an absent or `null` claim is removed.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileInput {
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

impl ProfileInput {
    /// The checked claims; a bad value is a 400 `invalid-value` naming its field.
    pub(crate) fn into_profile(self) -> Result<Profile, AdminError> {
        let text = |key: &'static str, v: Option<String>| -> Result<Option<String>, AdminError> {
            Ok(v.map(|v| claim_text(key, &v))
                .transpose()
                .map_err(super::error::on_field(key))?
                .flatten())
        };
        let email = self
            .email
            .filter(|e| !e.trim().is_empty())
            .map(|e| crate::users::normalize_email(&e))
            .transpose()
            .map_err(super::error::on_field("email"))?;
        let picture = match self.picture.map(|p| p.trim().to_owned()) {
            Some(p) if p.is_empty() => None,
            Some(p) => match url::Url::parse(&p) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Some(p),
                _ => {
                    return Err(AdminError::invalid(
                        "picture",
                        "must be an http or https URL",
                    ));
                }
            },
            None => None,
        };
        Ok(Profile {
            email_verified: self.email_verified && email.is_some(),
            email,
            name: text("name", self.name)?,
            given_name: text("given_name", self.given_name)?,
            family_name: text("family_name", self.family_name)?,
            picture,
            locale: self
                .locale
                .map(|l| locale(&l))
                .transpose()
                .map_err(super::error::on_field("locale"))?
                .flatten(),
        })
    }
}

/// `200` (or `status`) with the user, its `ETag`, `Cache-Control: no-store`.
pub(crate) fn answer(mut response: actix_web::HttpResponseBuilder, user: &User) -> HttpResponse {
    response
        .insert_header(("ETag", etag(user.updated_at)))
        .insert_header(("Cache-Control", "no-store"))
        .json(UserView::from(user))
}

/// The user `id` (by id only), or 404.
pub(crate) async fn find(state: &AppState, id: &str) -> Result<User, AdminError> {
    state
        .users
        .by_id(id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no user {id}")))
}
