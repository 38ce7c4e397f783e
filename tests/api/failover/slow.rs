//! A slow database: every statement of both replicas delayed 50–500 ms by the proxy between
//! them and PostgreSQL, while rotations run and webhooks flood in. Intake answers every
//! webhook within Alertmanager's deadline (200 only once journaled, or 503), and the leader
//! keeps its lease: the epoch never moves, and no two replicas act.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::cut::{Proxy, spawn_logged};
use super::flood::{self, DEADLINE, Flood};
use super::outage::watch_roles;
use super::pair::{Pair, pair_leased};
use crate::process::{Serve, kill};

/// A proof of leadership is one statement, and must come back within `0.3 × lease` of the last
/// (`src/leader`: a proof every `L/5`, stepping down `L/2` after the last): 4 s leaves room for
/// a 500 ms statement on a busy 2-core VM; the default (10 s), which `bench/pg-faults.sh`
/// runs, leaves more.
fn lease() -> String {
    std::env::var("TOKEN_ROTATOR_FAILOVER_LEASE").unwrap_or_else(|_| "4s".into())
}

/// The statement delay's range, from `TOKEN_ROTATOR_PG_DELAY` (`FROM-TO` in ms) or 50–500 ms.
fn delay() -> (Duration, Duration) {
    let range = std::env::var("TOKEN_ROTATOR_PG_DELAY").unwrap_or_else(|_| "50-500".into());
    let (from, to) = range
        .split_once('-')
        .expect("TOKEN_ROTATOR_PG_DELAY is FROM-TO in milliseconds");
    let ms = |s: &str| Duration::from_millis(s.trim().parse().expect("milliseconds"));
    (ms(from), ms(to))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_statement_slowed_intake_answers_in_time_and_the_leader_keeps_its_lease() {
    let db = crate::postgres::database().await;
    let proxy = Proxy::in_front_of(&db.url).await;
    let via = [Some(proxy.port), Some(proxy.port)];
    let pair = Arc::new(pair_leased(db, via, "", &lease()).await);
    let mut children = [pair.replicas[0].spawn(), pair.replicas[1].spawn()];
    pair.replicas[0].ready().await;
    pair.replicas[1].ready().await;
    let leader = pair.leader(Duration::from_secs(30)).await;
    let held = epoch(&pair.replicas[leader]).await.unwrap();

    let (from, to) = delay();
    proxy.slow(from, to);
    let slowed_at = Instant::now();
    let two_leaders = Arc::new(AtomicUsize::new(0));
    let watcher = tokio::spawn(watch_roles(
        Arc::clone(&pair),
        Arc::clone(&two_leaders),
        Duration::from_millis(200),
    ));
    let flood = Flood::start(&pair, Duration::from_millis(50));
    let client = reqwest::Client::new();
    let users: Vec<String> = (0..count("TOKEN_ROTATOR_PG_SLOW_ROTATIONS", 1))
        .map(|i| format!("slow-{i}@alphagov.co.uk"))
        .collect();
    for (i, user) in users.iter().enumerate() {
        pair.seed(user);
        let alert = Pair::alert(user, &format!("{:016x}", 0x5100 + i));
        // Alertmanager re-sends what is not acknowledged; so does this, within its deadline.
        let mut status = None;
        for _ in 0..5 {
            status = flood::post(&client, &pair.replicas[1 - leader], alert.clone()).await;
            if status == Some(200) {
                break;
            }
        }
        assert_eq!(status, Some(200), "{user}'s alert never acknowledged");
    }
    // Asked every 250 ms: each read is a statement on the same slow database, and a closer
    // poll would compete with the engine for the replica's connections.
    for user in &users {
        let deadline = Instant::now() + Duration::from_secs(180);
        while pair
            .rotation(leader, user)
            .await
            .is_none_or(|r| r["phase"] != "done")
        {
            assert!(
                Instant::now() < deadline,
                "{user}'s rotation never finished"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let answers = flood.stop().await;
    watcher.abort();
    let took = slowed_at.elapsed();

    let late: Vec<_> = answers.iter().filter(|a| a.status.is_none()).collect();
    assert!(
        late.is_empty(),
        "{} webhooks unanswered within {DEADLINE:?}",
        late.len()
    );
    let odd: Vec<_> = answers
        .iter()
        .filter_map(|a| a.status.filter(|s| ![200, 503].contains(s)))
        .collect();
    assert!(odd.is_empty(), "answers other than 200 or 503: {odd:?}");
    let acknowledged = flood::assert_acknowledged_journaled(&answers, &pair.journaled().await);
    let mut times: Vec<Duration> = answers.iter().map(|a| a.took).collect();
    times.sort();
    for user in &users {
        pair.assert_rotated_once(user);
        assert_eq!(pair.secret_writes(user), 1, "{user}: Secret written again");
    }
    assert_eq!(
        two_leaders.load(Ordering::Relaxed),
        0,
        "two replicas led at once"
    );
    assert_eq!(
        epoch(&pair.replicas[leader]).await,
        Some(held),
        "the leader lost its lease to a slow database"
    );
    println!(
        "slowed {}–{} ms: {} rotations done in {:.1}s; {} webhooks, {acknowledged} acknowledged, \
         {} answered 503; answer p50 {:.2}s, max {:.2}s; epoch {held} held throughout",
        from.as_millis(),
        to.as_millis(),
        users.len(),
        took.as_secs_f64(),
        answers.len(),
        answers.iter().filter(|a| a.status == Some(503)).count(),
        times[times.len() / 2].as_secs_f64(),
        times.last().unwrap().as_secs_f64(),
    );
    for child in &mut children {
        kill(child);
    }
}

fn count(var: &str, default: usize) -> usize {
    std::env::var(var).map_or(default, |v| v.parse().expect("a number"))
}

/// The epoch `/readyz` says this replica leads under, if it leads and answers.
async fn epoch(replica: &Serve) -> Option<i64> {
    let response = replica
        .client
        .get(replica.url("/readyz"))
        .timeout(DEADLINE)
        .send()
        .await
        .ok()?;
    let body: serde_json::Value = response.json().await.ok()?;
    body["epoch"].as_i64()
}

/// A standby that takes over across a link where every statement takes 330 ms: its proofs of
/// leadership (one statement every `L/5` = 400 ms, each due within `L/2` = 1 s of the last)
/// fit, so it must go on leading. The first proof on a new connection used to need a second
/// round trip (the statement prepared, then run: 400 + 2 × 330 ms > 1 s), and the new leader
/// stepped down a second after every takeover, over and over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_across_a_slow_link_keeps_leading_after_taking_over() {
    let db = crate::postgres::database().await;
    let proxy = Proxy::in_front_of(&db.url).await;
    let pair = pair_leased(db, [None, Some(proxy.port)], "", "2s").await;
    // Replica 0, on a direct link, migrates the journal and leads first.
    let mut zero = pair.replicas[0].spawn();
    pair.replicas[0].ready().await;
    assert_eq!(pair.leader(Duration::from_secs(30)).await, 0);
    proxy.slow(Duration::from_millis(330), Duration::from_millis(330));
    let (mut one, one_log) = spawn_logged(&pair.replicas[1]);
    pair.replicas[1].ready().await;
    kill(&mut zero);
    let led = one_log.wait_for("leading epoch", Duration::from_secs(30));
    let stepped_down = one_log.seen("stepping down", Duration::from_secs(6));
    assert_eq!(
        stepped_down.map(|at| at - led),
        None,
        "the new leader stepped down after taking over"
    );
    kill(&mut one);
}
