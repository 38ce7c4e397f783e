//! The command-line subcommands; each returns what `main` turns into an exit code.

#[cfg(feature = "sim")]
pub mod bench_e2e;
pub mod check_config;
#[cfg(feature = "sim")]
pub mod demo;
pub mod explain;
pub mod plan;
pub mod rotate;
pub mod serve;
/// The journal's read models live beside the status page that shares them.
pub use crate::report::{status, tokens};
