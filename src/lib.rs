//! token-rotator: turns "this API token expires soon" alerts into finished, verified rotations.
//!
//! The flow (see `DESIGN.md`): Alertmanager → [`web`] intake → [`store`] journal → engine. This
//! crate is the library; `main.rs` is only the command line around it.

pub mod adapters;
pub mod app;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod domain;
pub mod engine;
// Recorded Alertmanager webhooks: test data and the demo's replay, not the product's.
#[cfg(any(test, feature = "sim"))]
pub mod fixtures;
pub mod intake;
pub mod leader;
pub mod notifier;
pub mod phase;
pub mod policy;
pub mod reconcile;
pub mod report;
pub mod secrets;
// Only tests, the demo and the benchmark link the simulators; the image is built without them.
#[cfg(feature = "sim")]
pub mod sim;
pub mod store;
pub mod telemetry;
pub mod web;

/// Installs ring as rustls's process-wide crypto provider. reqwest is built without a provider
/// (so aws-lc never links), which means one must be installed before any client is built; call
/// this first in `main` and in every test that builds a client. Idempotent.
pub fn install_crypto_provider() {
    // `Err` only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
