//! Logs (tracing) and metrics (prometheus-client, one explicit registry per service instance).

mod labels;
mod metrics;

use std::io::{BufWriter, IsTerminal};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

pub use labels::{EXPIRY_WEEKS, JournalSnapshot, TargetLabels, WebhookOutcome};
pub use metrics::Metrics;

/// kube-client's own lines, errors only, whatever `RUST_LOG` says (the more specific directive
/// wins): it logs an answer it cannot parse whole at WARN, and every `Status` at TRACE
/// (kube-client 5.0.0, `src/client/mod.rs`), and a Secret's answer holds its token. Its errors
/// say only a status or a transport error (`src/client/builder.rs`).
const QUIET_KUBE_CLIENT: &str = "kube_client::client=error";

/// `TOKEN_ROTATOR_LOG_FORMAT=json` for JSON lines, anything else for text; level from `RUST_LOG`
/// (else `default_level`). Logs go to stderr so a command's own output on stdout stays clean.
///
/// Lines are written by a thread of their own, so a request never waits on stderr, and the lines
/// that pile up meanwhile go out in one write. Never lossy: when that thread falls behind, the
/// logging caller waits. Keep the guard until the process ends: dropping it writes what is left.
#[must_use = "dropping the guard stops the log writer"]
pub fn init_logging(default_level: &str) -> WorkerGuard {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default_level))
        .add_directive(QUIET_KUBE_CLIENT.parse().expect("a valid directive"));
    let json = std::env::var("TOKEN_ROTATOR_LOG_FORMAT").is_ok_and(|v| v == "json");
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("log-writer")
        .finish(BufWriter::new(std::io::stderr()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only for a person at a terminal: escape codes in `kubectl logs` or a file are noise.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
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
    guard
}
