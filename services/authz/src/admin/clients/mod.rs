//! `/admin/v1/clients`: the client registry (Hydra's `/admin/clients`, Keycloak's
//! `/admin/realms/{realm}/clients`).

pub(crate) mod create;
pub(crate) mod delete;
pub(crate) mod get;
pub(crate) mod grants;
pub(crate) mod list;
mod model;
pub(crate) mod revoke_grant;
pub(crate) mod revoke_grants;
pub(crate) mod rotate_secret;
pub(crate) mod update;

pub(crate) use model::{ClientInput, ClientView};

/// The collection.
pub(crate) const PATH: &str = "/admin/v1/clients";
/// One client.
pub(crate) const ITEM_PATH: &str = "/admin/v1/clients/{client_id}";
/// A client's secret.
pub(crate) const SECRET_PATH: &str = "/admin/v1/clients/{client_id}/secret";
/// A client's grants.
pub(crate) const GRANTS_PATH: &str = "/admin/v1/clients/{client_id}/grants";
/// One grant of a client.
pub(crate) const GRANT_PATH: &str = "/admin/v1/clients/{client_id}/grants/{grant_id}";
