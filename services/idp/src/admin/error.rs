//! idp's errors as admin API problems: the one mapping of [`IdpError`] at this edge.

use admin_api::AdminError;

use crate::IdpError;

impl From<IdpError> for AdminError {
    fn from(e: IdpError) -> Self {
        match e {
            IdpError::NotFound(detail) => AdminError::NotFound(detail),
            IdpError::Conflict(detail) => AdminError::Conflict(detail),
            IdpError::Invalid(detail) => AdminError::InvalidBody {
                field: None,
                detail,
            },
            IdpError::Busy(detail) | IdpError::Unavailable(detail) => {
                AdminError::Unavailable(detail)
            }
            IdpError::Storage(e) if e.is_transient() => AdminError::Unavailable(e.to_string()),
            other => AdminError::Internal(other.to_string()),
        }
    }
}

/// An [`IdpError::Invalid`] about the value of `field` names it; everything else maps as
/// above.
pub(crate) fn on_field(field: &'static str) -> impl FnOnce(IdpError) -> AdminError {
    move |e| match e {
        IdpError::Invalid(detail) => AdminError::invalid(field, detail),
        other => other.into(),
    }
}
