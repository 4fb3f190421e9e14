//! Integration tests of the `pki` library and command (one test binary per crate).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod pki;
