//! Webhooks posted the whole time a fault runs, each alert its own, to both replicas; what each
//! was answered. Afterwards every alert answered 200 must be in the journal, once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::pair::Pair;
use crate::process::{Serve, WEBHOOK_TOKEN};

/// Alertmanager's shortest deadline for a notification: `max(group_interval,
/// notify.MinTimeout = 10s)` (prometheus/alertmanager `dispatch/dispatch.go`).
pub const DEADLINE: Duration = Duration::from_secs(10);

/// One webhook and its answer: the status code, or `None` if none came within [`DEADLINE`].
pub async fn post(client: &reqwest::Client, replica: &Serve, body: Vec<u8>) -> Option<u16> {
    client
        .post(replica.url("/v1/alertmanager"))
        .bearer_auth(WEBHOOK_TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .timeout(DEADLINE)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// A resolved alert for a target with no rotation: journaled, and it starts nothing (so the
/// flood adds no side effect of its own to count).
pub fn resolved(fingerprint: &str) -> Vec<u8> {
    let mut body: serde_json::Value =
        serde_json::from_slice(&Pair::alert("flood@alphagov.co.uk", fingerprint)).unwrap();
    body["status"] = "resolved".into();
    body["alerts"][0]["status"] = "resolved".into();
    body["alerts"][0]["endsAt"] = "2026-11-24T11:00:00Z".into();
    serde_json::to_vec(&body).unwrap()
}

/// What one posted webhook was answered, and how long the answer took.
pub struct Answer {
    pub fingerprint: String,
    pub status: Option<u16>,
    pub took: Duration,
}

pub struct Flood {
    stop: watch::Sender<bool>,
    posters: JoinSet<Vec<Answer>>,
}

impl Flood {
    /// One poster per replica, each posting a new alert every `every`.
    pub fn start(pair: &Arc<Pair>, every: Duration) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut posters = JoinSet::new();
        for i in 0..2 {
            let (pair, stopped) = (Arc::clone(pair), stopped.clone());
            posters.spawn(async move {
                let client = reqwest::Client::new();
                let mut answers = Vec::new();
                for n in 0u64.. {
                    if *stopped.borrow() {
                        break;
                    }
                    let fingerprint = format!("f{i}{n:014x}");
                    let sent = Instant::now();
                    let status = post(&client, &pair.replicas[i], resolved(&fingerprint)).await;
                    answers.push(Answer {
                        fingerprint,
                        status,
                        took: sent.elapsed(),
                    });
                    tokio::time::sleep(every).await;
                }
                answers
            });
        }
        Self { stop, posters }
    }

    /// Stops posting; every answer.
    pub async fn stop(self) -> Vec<Answer> {
        self.stop.send_replace(true);
        self.posters
            .join_all()
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}

/// Every alert answered 200 is journaled exactly once; returns how many were.
pub fn assert_acknowledged_journaled(
    answers: &[Answer],
    journaled: &HashMap<String, i64>,
) -> usize {
    let acknowledged: Vec<&Answer> = answers.iter().filter(|a| a.status == Some(200)).collect();
    let lost: Vec<&str> = acknowledged
        .iter()
        .filter(|a| journaled.get(&a.fingerprint) != Some(&1))
        .map(|a| a.fingerprint.as_str())
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged alerts not journaled once: {:?}; the journal holds {} fingerprints, e.g. {:?}",
        lost.len(),
        acknowledged.len(),
        &lost[..lost.len().min(20)],
        journaled.len(),
        journaled.iter().take(5).collect::<Vec<_>>()
    );
    acknowledged.len()
}
