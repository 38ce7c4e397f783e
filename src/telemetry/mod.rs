//! Logs (tracing) and metrics (prometheus-client, one explicit registry per service instance).

mod labels;
mod metrics;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub use labels::{JournalSnapshot, TargetLabels, WebhookOutcome};
pub use metrics::Metrics;

/// `TOKEN_ROTATOR_LOG_FORMAT=json` for JSON lines, anything else for text; level from `RUST_LOG`
/// (else `default_level`). Logs go to stderr so a command's own output on stdout stays clean.
pub fn init_logging(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let json = std::env::var("TOKEN_ROTATOR_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only for a person at a terminal: escape codes in `kubectl logs` or a file are noise.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // `try_init`: a second call (tests, demo inside a test) keeps the first subscriber.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
}
