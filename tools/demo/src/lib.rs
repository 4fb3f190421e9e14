//! The demo of the platform, a client of authz, idp and rs like any relying party: it talks
//! to them over HTTP only and is never linked into them.
//!
//! - [`walk`]: `demo walk` goes through every main flow against a running system (`make
//!   demo` or the compose demo profile) and reports each step, with a summary and an exit
//!   code (0 all passed, 1 some failed, 2 usage or configuration error).
//! - [`app`]: `demo app`, the demo web application: the relying party behind the demo
//!   clients' redirect URIs.
//! - [`device`]: `demo device`, a TV-style client of the device authorization grant
//!   (RFC 8628).
//! - [`browser`]: the scripted browser of the walk and of the end-to-end tests.
//! - [`cli`]: the command line (the e2e tests parse compose's `demo app` command with it).
//! - [`seeded`]: the public demo credentials that `authz serve --demo` and `idp serve
//!   --demo` seed.

pub mod app;
pub mod browser;
pub mod cli;
pub mod device;
pub mod seeded;
mod support;
pub mod walk;

/// Exit code of a usage or configuration error (clap's own usage errors exit 2 as well).
pub const EXIT_USAGE: u8 = 2;
