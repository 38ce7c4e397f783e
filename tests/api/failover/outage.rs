//! PostgreSQL going away under two replicas and coming back — stopped (`fast`, `immediate`) and
//! started again, or replaced by a copy of its data on the same address — in each phase of a
//! running rotation, under a flood of webhooks. While it is gone every webhook is answered 503;
//! afterwards every acknowledged alert is journaled, one leader finishes the rotation, and the
//! simulators saw one mint, at most one revoke and one Secret write.
//!
//! CI runs each phase once, the three faults in turn; `TOKEN_ROTATOR_PG_FAULTS=all` (see
//! `bench/pg-faults.sh`) runs every fault in every phase.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::flood::{self, Flood};
use super::pair::{Pair, pair};
use super::server::{Fault, Server};
use crate::kill::PHASES;
use crate::process::kill;

/// How long the server stays away: longer than the test lease (2 s), so the leader loses it.
fn outage() -> Duration {
    std::env::var("TOKEN_ROTATOR_PG_OUTAGE")
        .ok()
        .and_then(|s| humantime::parse_duration(&s).ok())
        .unwrap_or(Duration::from_millis(2500))
}

fn schedule() -> Vec<(&'static str, Fault)> {
    if std::env::var("TOKEN_ROTATOR_PG_FAULTS").is_ok_and(|v| v == "all") {
        Fault::ALL
            .into_iter()
            .flat_map(|fault| PHASES.map(|phase| (phase, fault)))
            .collect()
    } else {
        PHASES
            .into_iter()
            .enumerate()
            .map(|(i, phase)| (phase, Fault::ALL[i % Fault::ALL.len()]))
            .take(
                std::env::var("TOKEN_ROTATOR_PG_ROUNDS")
                    .map_or(PHASES.len(), |n| n.parse().unwrap()),
            )
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_gone_and_back_in_each_phase_loses_no_acknowledged_alert_and_repeats_no_side_effect()
 {
    let mut server = Server::start();
    let db = crate::postgres::database_on(&server.url()).await;
    let pair = Arc::new(pair(db, [None, None]).await);
    let mut children = [pair.replicas[0].spawn(), pair.replicas[1].spawn()];
    pair.replicas[0].ready().await;
    pair.replicas[1].ready().await;
    let two_leaders = Arc::new(AtomicUsize::new(0));
    let watcher = tokio::spawn(watch_roles(
        Arc::clone(&pair),
        Arc::clone(&two_leaders),
        Duration::from_millis(20),
    ));
    let flood = Flood::start(&pair, Duration::from_millis(20));
    let client = reqwest::Client::new();
    let mut refused_while_gone = 0;
    let (mut slowest_intake, mut slowest_leader) = (Duration::ZERO, Duration::ZERO);
    let mut users = Vec::new();

    for (round, (phase, fault)) in schedule().into_iter().enumerate() {
        let user = format!("outage-{round}@alphagov.co.uk");
        pair.seed(&user);
        let leader = pair.leader(Duration::from_secs(30)).await;
        let alert = Pair::alert(&user, &format!("{:016x}", 0xdb00 + round));
        assert_eq!(
            flood::post(&client, &pair.replicas[1 - leader], alert).await,
            Some(200)
        );
        let window: &[&str] = match phase {
            "distributed" => &["distributed", "rolled_out"],
            "verified" => &["verified", "grace"],
            _ => &[phase],
        };
        let seen = pair
            .wait_for_phase(leader, &user, window, Duration::from_secs(30))
            .await;

        let gone_at = Instant::now();
        server.take_away(fault);
        // Gone: nothing may be acknowledged, on either replica.
        while gone_at.elapsed() < outage() {
            for (i, replica) in pair.replicas.iter().enumerate() {
                let fingerprint = format!("9{round:03x}{:012x}", refused_while_gone);
                let status = flood::post(&client, replica, flood::resolved(&fingerprint)).await;
                assert_eq!(status, Some(503), "replica {i} while PostgreSQL is gone");
                refused_while_gone += 1;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let back_at = Instant::now();
        server.back();
        let intake_back = until_acknowledged(&client, &pair, round).await;
        pair.leader(Duration::from_secs(30)).await;
        let led = back_at.elapsed();
        pair.wait_for_phase(0, &user, &["done"], Duration::from_secs(60))
            .await;
        println!(
            "{fault:?} in {seen}: gone {:.2}s; after it came back intake answered 200 in {:.2}s, \
             one leader in {:.2}s, rotation done in {:.2}s; secret writes {}",
            (back_at - gone_at).as_secs_f64(),
            intake_back.as_secs_f64(),
            led.as_secs_f64(),
            back_at.elapsed().as_secs_f64(),
            pair.secret_writes(&user),
        );
        pair.assert_rotated_once(&user);
        assert_eq!(pair.secret_writes(&user), 1, "{user}: Secret written again");
        slowest_intake = slowest_intake.max(intake_back);
        slowest_leader = slowest_leader.max(led);
        users.push(user);
    }

    let answers = flood.stop().await;
    watcher.abort();
    let journaled = pair.journaled().await;
    let acknowledged = flood::assert_acknowledged_journaled(&answers, &journaled);
    let flood_journaled = answers
        .iter()
        .filter(|a| journaled.contains_key(&a.fingerprint))
        .count();
    let per_user = |list: Vec<token_rotator::sim::signon::SimToken>| {
        list.iter().filter(|t| users.contains(&t.api_user)).count()
    };
    println!(
        "{} faults; flood: {} webhooks, {acknowledged} acknowledged (all journaled once), \
         {flood_journaled} journaled; {refused_while_gone} probes while PostgreSQL was gone, all 503; \
         {} targets: {} mints, {} revokes, {} Secret writes; slowest: intake back {:.2}s, one leader {:.2}s",
        users.len(),
        answers.len(),
        users.len(),
        per_user(pair.signon.minted()),
        per_user(pair.signon.revoked()),
        users.iter().map(|u| pair.secret_writes(u)).sum::<usize>(),
        slowest_intake.as_secs_f64(),
        slowest_leader.as_secs_f64(),
    );
    assert_eq!(
        two_leaders.load(Ordering::Relaxed),
        0,
        "two replicas led at once"
    );
    for child in &mut children {
        kill(child);
    }
}

/// From the server's return until a webhook is acknowledged again.
async fn until_acknowledged(client: &reqwest::Client, pair: &Pair, round: usize) -> Duration {
    let back = Instant::now();
    for n in 0u64.. {
        let fingerprint = format!("a{round:03x}{n:012x}");
        if flood::post(client, &pair.replicas[0], flood::resolved(&fingerprint)).await == Some(200)
        {
            return back.elapsed();
        }
        assert!(
            back.elapsed() < Duration::from_secs(30),
            "intake never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    unreachable!()
}

/// Counts the moments both replicas said they lead, asking every `every`.
pub async fn watch_roles(pair: Arc<Pair>, both: Arc<AtomicUsize>, every: Duration) {
    loop {
        let (a, b) = tokio::join!(pair.replicas[0].role(), pair.replicas[1].role());
        if a.as_deref() == Some("leader") && b.as_deref() == Some("leader") {
            both.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(every).await;
    }
}
