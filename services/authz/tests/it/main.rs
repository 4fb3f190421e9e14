//! authz integration tests: the binary's command line and the in-process application.

mod app;
mod cli;
