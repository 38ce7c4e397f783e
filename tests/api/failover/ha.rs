//! Both Alertmanager replicas delivering to both token-rotator replicas at once: the recorded
//! HA-duplicate pair (`fixtures/alertmanager/14-…` and `15-…`: one notification, sent by each
//! Alertmanager, differing only in `externalURL`) replayed to both replicas concurrently, for
//! many targets. Each alert is journaled once, exactly one delivery is told it was new, and
//! each target is rotated once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use token_rotator::fixtures::CAPTURES;

use super::pair::pair;
use crate::process::kill;

/// What the captures name; each target's copy has its own.
pub(super) const CAPTURED_USER: &str = "ha-slow@alphagov.co.uk";
pub(super) const CAPTURED_FINGERPRINT: &str = "30d9d6d0682dd42d";

pub(super) fn capture(name: &str) -> String {
    let capture = CAPTURES
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no capture {name}"));
    String::from_utf8(capture.body()).unwrap()
}

/// `TOKEN_ROTATOR_HA_TARGETS` targets (default 10), each sent `TOKEN_ROTATOR_HA_COPIES` times
/// (default 3) by each Alertmanager to each replica.
fn count(var: &str, default: usize) -> usize {
    std::env::var(var).map_or(default, |v| v.parse().expect("a number"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ha_duplicates_to_both_replicas_at_once_journal_each_alert_once_and_rotate_once() {
    let pair = Arc::new(pair(crate::postgres::database().await, [None, None]).await);
    let mut children = [pair.replicas[0].spawn(), pair.replicas[1].spawn()];
    pair.replicas[0].ready().await;
    pair.replicas[1].ready().await;
    let (targets, copies) = (
        count("TOKEN_ROTATOR_HA_TARGETS", 10),
        count("TOKEN_ROTATOR_HA_COPIES", 3),
    );
    let from = [
        capture("14-ha-duplicate-from-replica-a"),
        capture("15-ha-duplicate-from-replica-b"),
    ];
    assert!(
        from.iter()
            .all(|b| b.contains(CAPTURED_USER) && b.contains(CAPTURED_FINGERPRINT))
    );
    let users: Vec<String> = (0..targets)
        .map(|t| format!("ha-{t}@alphagov.co.uk"))
        .collect();
    let started = Instant::now();
    let mut told_new: HashMap<String, u64> = HashMap::new();
    // Ten targets at a time: each replica takes at most 256 connections at once (by design,
    // `web::settings`), and ten targets' copies stay below that.
    for (wave, some) in users.chunks(10).enumerate() {
        let mut posts = tokio::task::JoinSet::new();
        for (i, user) in some.iter().enumerate() {
            pair.seed(user);
            let fingerprint = format!("{:016x}", 0x4a00 + wave * 10 + i);
            for body in &from {
                let body = body
                    .replace(CAPTURED_USER, user)
                    .replace(CAPTURED_FINGERPRINT, &fingerprint);
                for replica in 0..2 {
                    for _ in 0..copies {
                        let (pair, body, fingerprint) = (
                            Arc::clone(&pair),
                            body.clone().into_bytes(),
                            fingerprint.clone(),
                        );
                        posts.spawn(async move {
                            let new = deliver(&pair.replicas[replica], body).await;
                            (fingerprint, new)
                        });
                    }
                }
            }
        }
        for (fingerprint, new) in posts.join_all().await {
            *told_new.entry(fingerprint).or_default() += new;
        }
    }
    let journaled = pair.journaled().await;
    for t in 0..targets {
        let fingerprint = format!("{:016x}", 0x4a00 + t);
        assert_eq!(
            journaled.get(&fingerprint),
            Some(&1),
            "{fingerprint} journaled"
        );
        assert_eq!(
            told_new.get(&fingerprint),
            Some(&1),
            "{fingerprint}: deliveries told new"
        );
    }
    for user in &users {
        pair.wait_for_phase(0, user, &["done"], Duration::from_secs(120))
            .await;
    }
    let rotations = pair.replicas[0].rotations().await;
    for user in &users {
        let theirs = rotations.iter().filter(|r| r["api_user"] == *user).count();
        assert_eq!(theirs, 1, "{user}: {theirs} rotations");
        pair.assert_rotated_once(user);
        assert_eq!(pair.secret_writes(user), 1, "{user}: Secret written again");
    }
    println!(
        "HA duplicates: {targets} targets × 2 Alertmanagers × 2 replicas × {copies} = {} \
         deliveries at once; {targets} alerts journaled, {targets} rotations, all done in {:.1}s",
        targets * 4 * copies,
        started.elapsed().as_secs_f64()
    );
    for child in &mut children {
        kill(child);
    }
}

/// Posts one delivery on a connection of its own; how many of its alerts were new.
async fn deliver(replica: &crate::process::Serve, body: Vec<u8>) -> u64 {
    let response = reqwest::Client::new()
        .post(replica.url("/v1/alertmanager"))
        .bearer_auth(crate::process::WEBHOOK_TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: serde_json::Value = response.json().await.unwrap();
    answer["new"].as_u64().unwrap()
}
