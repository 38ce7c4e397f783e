//! The command-line subcommands; each returns what `main` turns into an exit code.

pub mod bench_e2e;
pub mod check_config;
pub mod demo;
pub mod explain;
pub mod plan;
pub mod rotate;
pub mod serve;
/// The journal's read models live beside the status page that shares them.
pub use crate::report::{status, tokens};
