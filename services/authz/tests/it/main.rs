//! authz integration tests: the binary's command line and the in-process application.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod abuse;
mod admin_api;
// admin2: a client's grants
mod admin_grants;
mod app;
mod audit_events;
mod cli;
// clientauth
mod client_auth;
mod code_flow;
mod consents;
mod cors;
mod demo_seed;
mod device;
mod flow_env;
mod fuzz;
mod grpc_mtls;
mod keys;
mod layering;
mod logout;
mod oauth;
// PAR and JAR
mod par;
mod pending_requests;
mod refresh_grace;
// dcr
mod registration;
mod token_exchange;
