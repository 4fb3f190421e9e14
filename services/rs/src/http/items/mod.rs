//! `/api/v1/items`.

pub(crate) mod create;
pub(crate) mod list;

/// Needed to create items.
pub(crate) const WRITE: &str = "items:write";

guard::required_scopes!(
    /// The scopes of `GET /api/v1/items`.
    pub(crate) ItemsRead = ["items:read"]
);
