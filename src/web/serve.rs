//! The HTTP server loop of every listener, bounded so that no client can hold one for long:
//! - HTTP/1 only. Alertmanager, Prometheus, the kubelet's probes, Slack and browsers (over plain
//!   HTTP) all speak HTTP/1.1 to us; telling HTTP/2 apart first means waiting for a 24-byte
//!   preface with no deadline, and a client that sent half of one (or nothing) was kept for ever.
//!   An HTTP/2 preface is a malformed HTTP/1 request here: the connection is closed at once.
//! - A header-read timeout: a request head (the first, or the next on a kept-alive connection)
//!   must arrive within it, so a silent or slow-loris client is cut off.
//! - An idle timeout: a connection on which no byte moves either way is closed ([`watched`]).
//! - A connection cap: at the cap the listener accepts nothing more until a connection ends
//!   (the rest wait in the kernel's queue), so a flood of one listener never spends the file
//!   descriptors the others need.
//! - A small read buffer, so enormous heads are refused (431).
//!
//! Shuts down gracefully: in-flight requests finish (within a bound), new connections are not
//! taken.
//!
//! [`watched`]: super::watched

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::HttpSettings;
use super::watched::Watched;

/// Room for a request head (hyper refuses more with 431).
const MAX_BUF: usize = 64 * 1024;
/// How long in-flight requests get after shutdown begins.
const DRAIN: Duration = Duration::from_secs(15);
/// After a failed accept (out of file descriptors, say), wait this long rather than spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// At most one warning about failed accepts this often, with how many were not logged.
const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(10);

/// One listener's bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Limits {
    /// `[http]`'s bounds with the cap of one listener.
    pub fn of(http: &HttpSettings, max_connections: usize) -> Self {
        Self {
            header_read_timeout: http.header_read_timeout,
            idle_timeout: http.idle_timeout,
            max_connections,
        }
    }
}

/// Descriptors the process needs besides its listeners' connections: the journal's files and
/// pool, the clients' connections to upstreams, the runtime's own.
const OWN_FILES: u64 = 64;

/// When the open-files limit is below every listener's cap together (and the process's own
/// files), a flood of one listener could still spend the descriptors another needs: says so.
pub fn warn_if_caps_exceed_open_files(caps: &[(&'static str, usize)]) {
    let needed = caps.iter().map(|(_, cap)| *cap as u64).sum::<u64>() + OWN_FILES;
    let Some(limit) = open_files_limit() else {
        return;
    };
    if limit < needed {
        let caps: Vec<String> = caps.iter().map(|(l, c)| format!("{l} {c}")).collect();
        tracing::warn!(
            limit,
            needed,
            caps = %caps.join(", "),
            "the open-files limit (ulimit -n) is below the listeners' connection caps and the \
             service's own files: raise it, or lower the caps in [http]"
        );
    }
}

/// The soft limit on open files, from `/proc/self/limits` (Linux); `None` elsewhere or unlimited.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Serves `router` on `listener` (named `name` in logs) within `limits` until `shutdown`.
pub async fn serve(
    name: &'static str,
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_BUF);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut failures = AcceptFailures::new(name);
    tokio::pin!(shutdown);
    loop {
        // A free slot first: at the cap, connections wait unaccepted (costing us nothing).
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    let _ = failures.failed(&e, Instant::now());
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (io, activity) = Watched::new(stream);
        let service = TowerToHyperService::new(router.clone());
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .into_owned();
        let connection = graceful.watch(connection);
        let idle = limits.idle_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            tokio::select! {
                ended = connection => if let Err(e) = ended {
                    tracing::debug!(error = %e, "connection ended with an error");
                },
                () = activity.stalled(idle) => {
                    tracing::debug!(listener = name, after = ?idle, "closed a connection on which nothing moved");
                }
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN) => {
            tracing::warn!(listener = name, "connections still open after {DRAIN:?}; closing anyway");
        }
    }
    Ok(())
}

/// Failed accepts, warned about at most once per [`ACCEPT_WARN_EVERY`]: out of file
/// descriptors, the accept fails every [`ACCEPT_BACKOFF`], and a warning each time would bury
/// the log.
struct AcceptFailures {
    listener: &'static str,
    last_warned: Option<Instant>,
    /// Failures since the last warning, told with the next one (successes in between do not
    /// reset it, so failing and succeeding by turns still warns at most once per period).
    untold: u64,
}

impl AcceptFailures {
    fn new(listener: &'static str) -> Self {
        Self {
            listener,
            last_warned: None,
            untold: 0,
        }
    }

    /// Counts a failure at `now`; warns if one is due. Returns the failures told with the
    /// warning, if any.
    fn failed(&mut self, error: &std::io::Error, now: Instant) -> Option<u64> {
        let due = self
            .last_warned
            .is_none_or(|at| now.duration_since(at) >= ACCEPT_WARN_EVERY);
        if due {
            tracing::warn!(
                listener = self.listener,
                error = %error,
                failed_since_last_warning = self.untold,
                "accept failed; new connections wait (warned at most every {ACCEPT_WARN_EVERY:?})"
            );
            self.last_warned = Some(now);
            Some(std::mem::take(&mut self.untold))
        } else {
            self.untold += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_files_limit_is_read() {
        if cfg!(target_os = "linux") {
            assert!(open_files_limit().is_some_and(|n| n > 0));
        }
    }

    #[test]
    fn failed_accepts_are_warned_about_once_per_period_with_a_count() {
        let mut failures = AcceptFailures::new("test");
        let error = std::io::Error::from_raw_os_error(24); // EMFILE
        let start = Instant::now();
        let mut warnings = Vec::new();
        // 30 s of failing every 50 ms, as the loop does out of file descriptors: 600 failures.
        for n in 0..600 {
            if let Some(untold) = failures.failed(&error, start + ACCEPT_BACKOFF * n) {
                warnings.push(untold);
            }
        }
        assert_eq!(
            warnings,
            vec![0, 199, 199],
            "one warning per 10 s, each with the count"
        );
    }
}
