//! `/admin/v1/clients`: the client registry (Hydra's `/admin/clients`, Keycloak's
//! `/admin/realms/{realm}/clients`).

pub(crate) mod create;
pub(crate) mod delete;
pub(crate) mod get;
pub(crate) mod list;
mod model;
pub(crate) mod update;

pub(crate) use model::{ClientInput, ClientView};

/// The collection.
pub(crate) const PATH: &str = "/admin/v1/clients";
/// One client.
pub(crate) const ITEM_PATH: &str = "/admin/v1/clients/{client_id}";
