//! The token endpoint's user grants: `authorization_code` (RFC 6749 §4.1.3, RFC 7636
//! §4.5-§4.6, OpenID Connect Core §3.1.3), `refresh_token` (RFC 6749 §6, Core §12) and
//! the device code (RFC 8628 §3.4-§3.5), and the revocation of grants (code replay,
//! refresh token reuse, RFC 7009, logout).
//!
//! A redeemed code becomes a *grant*: the family of every token issued from it. Refresh
//! tokens are opaque, stored as digests and rotated on every use; presenting a rotated one
//! again revokes the grant (RFC 9700 §4.14.2), as does presenting a redeemed code again
//! (RFC 6749 §4.1.2). Revoking a grant denylists its JWT access tokens and deletes its
//! opaque ones. Transport-neutral: the HTTP edge calls these functions and maps
//! [`crate::tokens::TokenError`] to the wire.

pub(crate) mod claims;
mod consents;
mod introspect;
// device grant (RFC 8628)
mod device;
mod model;
mod redeem;
mod refresh;
pub(crate) mod repo;
mod revoke;
mod service;

pub(crate) use consents::Consents;
pub(crate) use model::TokenResponse;
pub(crate) use service::Grants;
