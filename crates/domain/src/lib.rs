//! Pure OAuth 2.1 / OpenID Connect types and rules shared by the services: no I/O, no
//! framework types.

mod client;
mod error;
mod scope;
mod secret;

pub use client::{AccessTokenFormat, ClientId, GrantType, TokenEndpointAuthMethod};
pub use error::{ErrorCode, OAuthError};
pub use scope::{Scope, ScopeError, ScopeSet};
pub use secret::constant_time_eq;
