//! idp integration tests: the binary's command line, users, the login / consent / logout
//! pages against a fake authz `LoginFlow`, the `Sessions` gRPC API, and the pages in a real
//! headless Chromium.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod account;
// admin API (issue 18, idpadmin2)
mod account_browser;
mod admin_api;
mod audit_events;
mod audit_store;
mod browser;
mod cli;
mod consent;
mod demo_seed;
mod device;
mod fake_authz;
mod fuzz;
mod grpc_mtls;
mod harness;
mod login;
// email, sign-up and password reset (issue 21)
mod browser_mail;
mod mail;
mod mailbox;
mod password_reset;
mod signup;
mod smtp_server;
// end of issue 21
mod session_digests;
mod sessions_api;
mod throttle;
mod upstream;
mod upstream_fakes;
mod users;
