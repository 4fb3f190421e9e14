//! The public HTTP pages of idp: one route table, one file per endpoint.

/// The application served on the public listener.
pub(crate) use runtime::base_app as app;
