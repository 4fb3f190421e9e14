//! idp integration tests: the binary's command line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod users;
