//! Pure OAuth 2.1 / OpenID Connect types and rules shared by the services: no I/O, no
//! framework types.

mod authorize;
pub mod basic;
mod client;
pub mod device;
mod error;
mod pkce;
pub mod random;
mod redirect;
mod scope;
pub mod secret;

pub use authorize::{Prompt, ResponseMode, authentication_is_fresh_enough, parse_max_age};
pub use client::{AccessTokenFormat, ClientId, GrantType, TokenEndpointAuthMethod};
pub use error::{ErrorCode, OAuthError};
pub use pkce::{CodeChallenge, PkceError};
pub use redirect::{find_redirect_uri, redirect_uri_matches, with_query};
pub use scope::{Scope, ScopeError, ScopeSet};
pub use secret::constant_time_eq;
