//! The authorization code flow up to the code (RFC 6749 §4.1.1-§4.1.2, OpenID Connect
//! Core §3.1.2): login and consent delegated to idp over `authz.v1.LoginFlow`, authz's own
//! browser session for SSO and `prompt=none`, remembered consent, and single-use codes.
//!
//! A request that needs a page is stored as a pending request, bound to the browser by a
//! flow cookie (`authz_flow_<request id>`, holding a secret whose digest is stored) and
//! announced to idp by a single-use challenge (stored as a digest, expiring with the
//! request). idp answers the challenge over gRPC ([`challenges`]); the browser then comes
//! back to the resume URL given at start (`/authorize/resume?request=<id>`, [`resume`]),
//! where authz checks the flow cookie and either asks for consent (a new challenge) or
//! finishes: a code, or the error idp chose. Transport-neutral: the HTTP and gRPC edges
//! call these functions and map [`error`]'s enums to the wire.

mod admission;
mod challenges;
mod error;
mod model;
pub(crate) mod repo;
mod resume;
mod service;

pub(crate) use error::{AuthorizeError, FlowError, ResumeError};
pub(crate) use model::{
    AuthorizationRequest, Login, MAX_PARAM_LEN, Outcome, PendingRequest, ReplyTo, SessionCookie,
    Step, flow_cookie_name,
};
pub(crate) use service::Flow;
