//! The one integration-test binary: runs the real `sluice` binary on real
//! files in temp directories.

// A test that unwraps fails with the panic; its helpers may unwrap too.
#![allow(clippy::unwrap_used)]

mod bad_input;
mod checks;
mod config;
mod delta;
mod docker;
mod examples;
mod formats;
mod http;
mod lake;
mod metrics;
mod pipeline;
mod publish;
mod reference;
mod s3;
mod state;
mod traces;
mod util;
