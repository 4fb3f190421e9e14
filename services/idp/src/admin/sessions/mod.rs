//! `/admin/v1/users/{user_id}/sessions`: a user's browser sessions at idp.

pub(crate) mod end;
pub(crate) mod end_all;
pub(crate) mod list;

/// A user's sessions.
pub(crate) const PATH: &str = "/admin/v1/users/{user_id}/sessions";
/// One session of a user.
pub(crate) const ITEM_PATH: &str = "/admin/v1/users/{user_id}/sessions/{session_id}";
