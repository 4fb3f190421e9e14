//! End-to-end tests: the real authz, idp and rs processes, started with `cargo run`, driven
//! over HTTP and gRPC like a deployment.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod account;
// admin API (issue 18, idpadmin2)
mod admin_api;
// admin2: Swagger UI in Chromium
mod admin_docs;
mod code_flow;
mod demo;
mod deployments;
mod docs;
mod exchange;
mod foundation;
mod github;
mod guard;
mod harness;
mod keys;
mod logout;
mod m2m;
mod pair;
// dcr: Dynamic Client Registration, PAR, private_key_jwt (issue 17)
mod registration;
mod reliability;
mod spa;
mod telemetry;
mod tls;
mod upstream;
