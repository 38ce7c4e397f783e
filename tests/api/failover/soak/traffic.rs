//! Alertmanager's side of the soak. Each target's alert is sent as two clustered Alertmanagers
//! send it (the recorded HA pair, `fixtures/alertmanager/14-…` and `15-…`: the same
//! notification from each, ~2 s apart, differing only in `externalURL`), sent again later the
//! same day (a repeat after `repeat_interval`: the same alert, same `startsAt`), and resolved
//! the next day by both. Each delivery goes to either replica, as a Service in front of both
//! would pick, and to the other when that one does not acknowledge it, until one does, as
//! Alertmanager retries a failed notification.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinSet;

use super::super::flood::DEADLINE;
use super::super::ha::{CAPTURED_FINGERPRINT, CAPTURED_USER, capture};
use super::super::pair::Pair;
use crate::process::WEBHOOK_TOKEN;

/// The two Alertmanagers' captures of one notification.
const FROM: [&str; 2] = [
    "14-ha-duplicate-from-replica-a",
    "15-ha-duplicate-from-replica-b",
];
/// How long a delivery is retried before the run counts it lost (Alertmanager gives up at
/// its next flush; well past a takeover either way).
const GIVE_UP: Duration = Duration::from_secs(60);

/// One notification to send, and when in the day.
pub struct Delivery {
    pub at: Duration,
    pub fingerprint: String,
    pub resolved: bool,
    /// The replica tried first.
    to: usize,
    body: Vec<u8>,
}

/// What became of one delivery.
pub struct Answer {
    pub fingerprint: String,
    pub resolved: bool,
    pub acknowledged: bool,
    /// Alerts the service said were new to it.
    pub new: u64,
    /// Posts until one was acknowledged (more than one: a replica was down or refused).
    pub tries: u32,
}

/// A target of the soak: its API user and its alert's fingerprint (Alertmanager's form).
#[derive(Clone)]
pub struct Target {
    pub user: String,
    pub fingerprint: String,
}

impl Target {
    /// The `n`th target of the run.
    pub fn nth(day: u32, n: usize) -> Self {
        Self {
            user: format!("soak-{day}-{n:03}@alphagov.co.uk"),
            fingerprint: format!("{:08x}{n:08x}", 0x50a0_0000 + day),
        }
    }
}

/// A day's deliveries: today's targets firing (both Alertmanagers, then a repeat), yesterday's
/// resolved (both). Times are seeded from `rng`, spread over the first two thirds of the day.
pub fn plan(
    rng: &mut fastrand::Rng,
    today: &[Target],
    yesterday: &[Target],
    day: Duration,
) -> Vec<Delivery> {
    let mut plan = Vec::new();
    for target in today {
        let at = day.mul_f64(0.02 + 0.5 * rng.f64());
        both(&mut plan, rng, target, at, false);
        let repeat = at + day.mul_f64(0.1 + 0.2 * rng.f64());
        let from = rng.usize(0..2);
        plan.push(Delivery {
            at: repeat,
            fingerprint: target.fingerprint.clone(),
            resolved: false,
            to: rng.usize(0..2),
            body: body(from, target, false),
        });
    }
    for target in yesterday {
        let at = day.mul_f64(0.05 + 0.6 * rng.f64());
        both(&mut plan, rng, target, at, true);
    }
    plan
}

/// The notification from both Alertmanagers: replica B's copy up to 2 s after A's (the
/// captures are 2.08 s apart).
fn both(
    plan: &mut Vec<Delivery>,
    rng: &mut fastrand::Rng,
    target: &Target,
    at: Duration,
    resolved: bool,
) {
    let later = at + Duration::from_millis(rng.u64(0..2000));
    for (from, at) in [(0, at), (1, later)] {
        plan.push(Delivery {
            at,
            fingerprint: target.fingerprint.clone(),
            resolved,
            to: rng.usize(0..2),
            body: body(from, target, resolved),
        });
    }
}

/// The capture from Alertmanager `from`, made about `target`.
fn body(from: usize, target: &Target, resolved: bool) -> Vec<u8> {
    let text = capture(FROM[from])
        .replace(CAPTURED_USER, &target.user)
        .replace(CAPTURED_FINGERPRINT, &target.fingerprint);
    if !resolved {
        return text.into_bytes();
    }
    // As capture 08 (a single alert resolved): both statuses say so, and `endsAt` is when.
    let mut body: Value = serde_json::from_str(&text).unwrap();
    body["status"] = "resolved".into();
    body["alerts"][0]["status"] = "resolved".into();
    body["alerts"][0]["endsAt"] = "2026-11-25T10:11:34.82Z".into();
    serde_json::to_vec(&body).unwrap()
}

/// Sends the day's deliveries, each at its time from now; what each was answered.
pub async fn run(pair: Arc<Pair>, plan: Vec<Delivery>) -> Vec<Answer> {
    let start = tokio::time::Instant::now();
    let client = reqwest::Client::new();
    let mut sends = JoinSet::new();
    for delivery in plan {
        let (pair, client) = (Arc::clone(&pair), client.clone());
        sends.spawn(async move {
            tokio::time::sleep_until(start + delivery.at).await;
            deliver(&client, &pair, delivery).await
        });
    }
    sends.join_all().await
}

/// Posts until a replica acknowledges, the other one after each failure.
async fn deliver(client: &reqwest::Client, pair: &Pair, delivery: Delivery) -> Answer {
    let started = Instant::now();
    let mut tries = 0;
    loop {
        let replica = &pair.replicas[(delivery.to + tries as usize) % 2];
        tries += 1;
        let sent = client
            .post(replica.url("/v1/alertmanager"))
            .bearer_auth(WEBHOOK_TOKEN)
            .header("content-type", "application/json")
            .body(delivery.body.clone())
            .timeout(DEADLINE)
            .send()
            .await;
        let acknowledged = match sent {
            Ok(response) if response.status() == 200 => Some(
                response
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["new"].as_u64())
                    .unwrap_or(0),
            ),
            _ => None,
        };
        if acknowledged.is_some() || started.elapsed() > GIVE_UP {
            return Answer {
                fingerprint: delivery.fingerprint,
                resolved: delivery.resolved,
                acknowledged: acknowledged.is_some(),
                new: acknowledged.unwrap_or(0),
                tries,
            };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
