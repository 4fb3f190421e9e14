//! `/admin/v1/users/{subject}/…`: what a user granted through authz — remembered consents
//! (Keycloak's user "Consents" tab) and "sign this user out of every app".

pub(crate) mod consents;
pub(crate) mod revoke_consent;
pub(crate) mod sign_out;

/// A user's consents.
pub(crate) const CONSENTS_PATH: &str = "/admin/v1/users/{subject}/consents";
/// One consent.
pub(crate) const CONSENT_PATH: &str = "/admin/v1/users/{subject}/consents/{client_id}";
/// Revoking everything of a user.
pub(crate) const SIGN_OUT_PATH: &str = "/admin/v1/users/{subject}/sign-out";
