//! authz's errors as admin API problems: the one mapping of [`AuthzError`] at this edge.

use admin_api::AdminError;

use crate::AuthzError;

impl From<AuthzError> for AdminError {
    fn from(e: AuthzError) -> Self {
        match e {
            AuthzError::NotFound(detail) => AdminError::NotFound(detail),
            AuthzError::Conflict(detail) => AdminError::Conflict(detail),
            AuthzError::Invalid(detail) => AdminError::InvalidBody {
                field: None,
                detail,
            },
            AuthzError::Storage(e) if e.is_transient() => AdminError::Unavailable(e.to_string()),
            other => AdminError::Internal(other.to_string()),
        }
    }
}
