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
pub mod status;
pub mod tokens;
