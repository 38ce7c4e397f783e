//! Simulators of the systems token-rotator talks to: real axum servers on loopback, speaking
//! the same wire format as the real thing. `demo` and the tests share them; nothing in them is
//! used by `serve`.
//!
//! Each can be told to misbehave on its next calls (an HTTP status, or a hang longer than any
//! client timeout), or on every call, so tests can show what the engine does about it.

pub mod alertmanager;
pub mod gitlab;
pub mod kubernetes;
pub mod rails;
pub mod signon;
pub mod slack;
pub mod synoptic;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::task::JoinHandle;

/// What a simulator does instead of answering normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// That HTTP status (429 comes with `Retry-After: 1`).
    Status(u16),
    /// HTTP 429 with `Retry-After` of this many seconds.
    RetryAfter(u64),
    /// Slack's way: HTTP 200 with `{"ok": false, "error": <code>}`.
    SlackError(&'static str),
    /// HTTP 200 with a body that is not the JSON promised.
    Malformed,
    /// Answer normally, but only after this long.
    Slow(Duration),
    /// Answer only after this long (clients time out first).
    Hang(Duration),
    /// That HTTP status with this JSON body: an answer a system documents but a simulator
    /// does not otherwise give (an internal error reported inside a 200).
    Json(u16, &'static str),
}

/// Faults per operation name: queued ones apply once each, a standing one to every call.
#[derive(Default)]
pub struct Faults {
    queued: Mutex<BTreeMap<&'static str, VecDeque<Fault>>>,
    standing: Mutex<BTreeMap<&'static str, Fault>>,
    calls: Mutex<BTreeMap<&'static str, u32>>,
    /// Every call of every operation fails this often, in a seeded mix of ways.
    random: Mutex<Option<(f64, fastrand::Rng)>>,
    injected: Mutex<u32>,
}

impl Faults {
    /// The next `times` calls of `operation` fail with `fault`.
    pub fn next(&self, operation: &'static str, fault: Fault, times: usize) {
        let mut queued = self.queued.lock().expect("lock never poisoned");
        let queue = queued.entry(operation).or_default();
        queue.extend(std::iter::repeat_n(fault, times));
    }

    /// Every call of `operation` fails with `fault` until `clear`.
    pub fn always(&self, operation: &'static str, fault: Fault) {
        self.standing
            .lock()
            .expect("lock never poisoned")
            .insert(operation, fault);
    }

    /// From now on, a share `rate` of all calls fail: 5xx, 429, malformed answers, answers
    /// slower than usual, or no answer before the client's timeout (`hang`). Seeded.
    pub fn at_rate(&self, rate: f64, seed: u64) {
        *self.random.lock().expect("lock never poisoned") =
            Some((rate, fastrand::Rng::with_seed(seed)));
    }

    /// How many requests all operations received, failed or not.
    pub fn all_calls(&self) -> u32 {
        self.calls
            .lock()
            .expect("lock never poisoned")
            .values()
            .sum()
    }

    /// How many faults were injected at random.
    pub fn injected(&self) -> u32 {
        *self.injected.lock().expect("lock never poisoned")
    }

    fn random_fault(&self) -> Option<Fault> {
        let mut random = self.random.lock().expect("lock never poisoned");
        let (rate, rng) = random.as_mut()?;
        if rng.f64() >= *rate {
            return None;
        }
        let fault = match rng.u8(0..10) {
            0..=2 => Fault::Status(503),
            3 => Fault::Status(500),
            4..=5 => Fault::Status(429),
            6 => Fault::Malformed,
            7..=8 => Fault::Slow(Duration::from_millis(150)),
            _ => Fault::Hang(Duration::from_millis(1500)),
        };
        *self.injected.lock().expect("lock never poisoned") += 1;
        Some(fault)
    }

    pub fn clear(&self, operation: &'static str) {
        self.standing
            .lock()
            .expect("lock never poisoned")
            .remove(operation);
        self.queued
            .lock()
            .expect("lock never poisoned")
            .remove(operation);
    }

    /// How many requests `operation` received, failed or not.
    pub fn calls(&self, operation: &'static str) -> u32 {
        self.calls
            .lock()
            .expect("lock never poisoned")
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    /// Counts the call and takes the fault due for it, if any (queued, standing, then random).
    pub fn due(&self, operation: &'static str) -> Option<Fault> {
        *self
            .calls
            .lock()
            .expect("lock never poisoned")
            .entry(operation)
            .or_default() += 1;
        let queued = self
            .queued
            .lock()
            .expect("lock never poisoned")
            .get_mut(operation)
            .and_then(VecDeque::pop_front);
        queued
            .or_else(|| {
                self.standing
                    .lock()
                    .expect("lock never poisoned")
                    .get(operation)
                    .copied()
            })
            .or_else(|| self.random_fault())
    }

    /// Counts the call, then applies a fault if one is due: `Some(response)` replaces the answer,
    /// marked [`Injected`].
    pub async fn check(&self, operation: &'static str) -> Option<Response> {
        let mut response = self.answer_for(operation).await?;
        response.extensions_mut().insert(Injected);
        Some(response)
    }

    async fn answer_for(&self, operation: &'static str) -> Option<Response> {
        let fault = self.due(operation)?;
        match fault {
            Fault::Status(429) => Some(rate_limited(1)),
            Fault::RetryAfter(seconds) => Some(rate_limited(seconds)),
            Fault::Status(code) => {
                let status =
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                Some((status, format!("simulated {code} for {operation}")).into_response())
            }
            Fault::Malformed => Some(
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    "{\"half an answ",
                )
                    .into_response(),
            ),
            Fault::Slow(delay) => {
                tokio::time::sleep(delay).await;
                None
            }
            Fault::SlackError(code) => {
                Some(axum::Json(serde_json::json!({"ok": false, "error": code})).into_response())
            }
            Fault::Hang(duration) => {
                tokio::time::sleep(duration).await;
                Some((StatusCode::GATEWAY_TIMEOUT, "simulated hang").into_response())
            }
            Fault::Json(code, body) => {
                let status =
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                Some(
                    (
                        status,
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        body,
                    )
                        .into_response(),
                )
            }
        }
    }
}

/// Marks an answer a fault gave instead of the simulator: nothing was done, whatever its status
/// says (a `Malformed` answer is a 200), so a record of what was done leaves it out.
#[derive(Debug, Clone, Copy)]
pub struct Injected;

/// HTTP 429 as Slack sends it, with `Retry-After`.
fn rate_limited(seconds: u64) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [("retry-after", seconds.to_string())],
        axum::Json(serde_json::json!({"ok": false, "error": "ratelimited"})),
    )
        .into_response()
}

/// A simulator listening on loopback; it stops when dropped.
pub struct Running {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A delay before every answer: a fixed part plus a uniform jitter, as a real upstream's latency
/// (`bench-e2e --profile realistic`); none unless set. Counts the requests it delayed.
#[derive(Default)]
pub struct Latency {
    profile: Mutex<Option<(Duration, Duration)>>,
    rng: Mutex<Option<fastrand::Rng>>,
    calls: std::sync::atomic::AtomicU64,
}

impl Latency {
    /// Every answer from now on waits `fixed` plus up to `jitter`.
    pub fn set(&self, fixed: Duration, jitter: Duration, seed: u64) {
        *self.profile.lock().expect("lock never poisoned") = Some((fixed, jitter));
        *self.rng.lock().expect("lock never poisoned") = Some(fastrand::Rng::with_seed(seed));
    }

    /// The requests answered.
    pub fn calls(&self) -> u64 {
        self.calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The mean delay of the profile (zero without one).
    pub fn mean(&self) -> Duration {
        self.profile
            .lock()
            .expect("lock never poisoned")
            .map_or(Duration::ZERO, |(fixed, jitter)| fixed + jitter / 2)
    }

    async fn wait(&self) {
        self.calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let profile = *self.profile.lock().expect("lock never poisoned");
        let Some((fixed, jitter)) = profile else {
            return;
        };
        let share = self
            .rng
            .lock()
            .expect("lock never poisoned")
            .as_mut()
            .map_or(0.0, |rng| rng.f64());
        tokio::time::sleep(fixed + jitter.mul_f64(share)).await;
    }
}

/// `router` with `latency` before each answer.
pub fn delayed(router: Router, latency: std::sync::Arc<Latency>) -> Router {
    router.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let latency = std::sync::Arc::clone(&latency);
            async move {
                latency.wait().await;
                next.run(request).await
            }
        },
    ))
}

pub async fn serve(router: Router) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "simulator stopped");
        }
    });
    Ok(Running { addr, task })
}
