//! idp integration tests: the binary's command line.

mod cli;
