//! The Device Authorization Grant (RFC 8628) up to the user's decision: the device
//! authorization request (§3.1-§3.2) stores a device code and a user code (both as
//! digests); idp's verification page (§3.3) reads the request by its user code and
//! approves or denies it over `authz.v1.LoginFlow`. The device's polling and the token
//! response (§3.4-§3.5) are in [`crate::grants`]. Transport-neutral: the HTTP and gRPC
//! edges call these functions and map [`FlowError`](crate::flow::FlowError) and
//! [`PollError`] to the wire.

mod model;
pub(crate) mod repo;
mod service;

pub(crate) use model::PollError;
pub(crate) use service::Devices;
