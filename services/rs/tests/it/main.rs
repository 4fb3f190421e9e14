//! rs integration tests: the binary's command line and the in-process application.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod app;
mod cli;
mod quota;
