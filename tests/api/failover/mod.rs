//! Two `serve` processes on one PostgreSQL journal, with the simulators: the leader killed at
//! each phase boundary, the leader cut off from PostgreSQL, the Lease election, and an HA flood
//! of one alert split across both. The simulators answer slowly (every call takes `STEP`), so
//! each phase lasts long enough to be seen and killed in. `TOKEN_ROTATOR_FAILOVER_LEASE` sets the
//! lease (default 2s here; `bench/failover.sh` runs the default 10s and prints the takeover times).
//!
//! Faults of the database itself: PostgreSQL stopped, restarted and replaced under them
//! ([`outage`]), every statement slowed ([`slow`]), and both Alertmanagers delivering to both
//! replicas at once ([`ha`]); `bench/pg-faults.sh` runs their longer forms.
//!
//! A week compressed ([`soak`]): faults at 5 % upstream, a failover a day, the replicas' and
//! the journal's resources sampled daily; `bench/soak.sh` runs its long form.

mod cut;
mod flood;
mod ha;
mod outage;
pub(crate) mod pair;
mod server;
mod severed;
mod slow;
mod soak;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::kill::PHASES;
use crate::process::{Spawned, kill};
use crate::world::NAMESPACE;
use cut::{Proxy, spawn_logged};
use pair::{Pair, pair, pair_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_killed_at_each_phase_boundary_the_standby_finishes_with_one_mint() {
    let pair = pair(crate::postgres::database().await, [None, None]).await;
    let mut children: [Option<Spawned>; 2] = [Some(pair.replicas[0].spawn()), None];
    pair.replicas[0].ready().await;
    children[1] = Some(pair.replicas[1].spawn());
    pair.replicas[1].ready().await;
    let mut takeovers = Vec::new();
    for (round, phase) in PHASES.into_iter().enumerate() {
        let user = format!("failover-{round}@alphagov.co.uk");
        pair.seed(&user);
        let leader = pair.leader(Duration::from_secs(30)).await;
        let standby = 1 - leader;
        // Intake on the standby: it journals; the leader acts.
        assert!(
            pair.replicas[standby]
                .post_webhook(Pair::alert(&user, &format!("{round:016x}")))
                .await
        );
        // `distributed` and `verified` move on within one pass with no call in between (the
        // Deployments were baselined before the write; the grace starts at once): a kill seen
        // in the next phase instead is the same boundary's other side.
        let window: &[&str] = match phase {
            "distributed" => &["distributed", "rolled_out"],
            "verified" => &["verified", "grace"],
            _ => &[phase],
        };
        let phase = pair
            .wait_for_phase(standby, &user, window, Duration::from_secs(30))
            .await;
        let killed_at = Instant::now();
        kill(children[leader].as_mut().unwrap());
        children[leader] = None;
        assert_eq!(pair.leader(Duration::from_secs(30)).await, standby);
        let took_over = killed_at.elapsed();
        pair.wait_for_phase(standby, &user, &["done"], Duration::from_secs(60))
            .await;
        println!(
            "killed the leader in {phase}: standby led after {:.2}s, done after {:.2}s",
            took_over.as_secs_f64(),
            killed_at.elapsed().as_secs_f64()
        );
        takeovers.push(took_over);
        pair.assert_rotated_once(&user);
        children[leader] = Some(pair.replicas[leader].spawn());
        pair.replicas[leader].ready().await;
    }
    for child in children.iter_mut().flatten() {
        kill(child);
    }
    let slowest = takeovers.iter().max().unwrap();
    println!("slowest takeover {:.2}s", slowest.as_secs_f64());
}

/// The Lease election: the leader SIGKILLed mid-rotation (its Lease is left held, and expires),
/// then the new leader stopped with SIGTERM (it releases its Lease, and the restarted replica
/// leads at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_kubernetes_lease_the_standby_takes_over_and_finishes_with_one_mint() {
    let pair = pair_with(
        crate::postgres::database().await,
        [None, None],
        "leader_election = \"kubernetes\"\nleader_lease_name = \"token-rotator-test\"",
    )
    .await;
    let mut children = [Some(pair.replicas[0].spawn()), None];
    pair.replicas[0].ready().await;
    assert_eq!(pair.leader(Duration::from_secs(30)).await, 0);
    children[1] = Some(pair.replicas[1].spawn());
    pair.replicas[1].ready().await;
    let holder = pair
        .kubernetes
        .lease_holder(NAMESPACE, "token-rotator-test")
        .unwrap();
    let user = "lease@alphagov.co.uk";
    pair.seed(user);
    assert!(
        pair.replicas[1]
            .post_webhook(Pair::alert(user, "000000000001ea5e"))
            .await
    );
    pair.wait_for_phase(1, user, &["issued"], Duration::from_secs(30))
        .await;
    let killed_at = Instant::now();
    kill(children[0].as_mut().unwrap());
    assert_eq!(pair.leader(Duration::from_secs(30)).await, 1);
    println!(
        "Lease: standby led {:.2}s after the leader was killed",
        killed_at.elapsed().as_secs_f64()
    );
    pair.wait_for_phase(1, user, &["done"], Duration::from_secs(60))
        .await;
    pair.assert_rotated_once(user);
    let new_holder = pair
        .kubernetes
        .lease_holder(NAMESPACE, "token-rotator-test")
        .unwrap();
    assert_ne!(holder, new_holder);

    // A graceful stop hands over without waiting for the Lease to expire.
    children[0] = Some(pair.replicas[0].spawn());
    pair.replicas[0].ready().await;
    let stopped_at = Instant::now();
    let mut leader = children[1].take().unwrap();
    let pid = leader.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    leader.wait().unwrap();
    assert_eq!(pair.leader(Duration::from_secs(30)).await, 0);
    println!(
        "Lease: after SIGTERM the other replica led {:.2}s later",
        stopped_at.elapsed().as_secs_f64()
    );
    assert!(
        pair.kubernetes
            .lease_holder(NAMESPACE, "token-rotator-test")
            .is_some()
    );
    kill(children[0].as_mut().unwrap());
    // What docs/operations.md tells operators to grant for this election, and nothing more.
    let verbs: std::collections::BTreeSet<(String, String)> = pair
        .kubernetes
        .requests()
        .into_iter()
        .filter(|r| r.group == "coordination.k8s.io")
        .map(|r| (r.resource, r.verb))
        .collect();
    let granted = [
        ("leases", "create"),
        ("leases", "get"),
        ("leases", "update"),
    ]
    .map(|(r, v)| (r.to_owned(), v.to_owned()));
    assert_eq!(verbs, granted.into_iter().collect());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_postgres_stops_acting_before_the_standby_starts() {
    let db = crate::postgres::database().await;
    let proxy = Proxy::in_front_of(&db.url).await;
    let pair = pair(db, [Some(proxy.port), None]).await;
    // Replica 0 (behind the proxy) starts first and leads.
    let (mut zero, zero_log) = spawn_logged(&pair.replicas[0]);
    pair.replicas[0].ready().await;
    assert_eq!(pair.leader(Duration::from_secs(30)).await, 0);
    let (mut one, one_log) = spawn_logged(&pair.replicas[1]);
    pair.replicas[1].ready().await;
    let user = "partition@alphagov.co.uk";
    pair.seed(user);
    assert!(
        pair.replicas[1]
            .post_webhook(Pair::alert(user, "0000000000000a0a"))
            .await
    );
    pair.wait_for_phase(1, user, &["issued"], Duration::from_secs(30))
        .await;

    let cut_at = Instant::now();
    proxy.freeze();
    let stepped_down = zero_log.wait_for("stepping down", Duration::from_secs(60));
    let took_over = one_log.wait_for("leading epoch", Duration::from_secs(60));
    println!(
        "cut off: the leader stepped down after {:.2}s, the standby led after {:.2}s",
        (stepped_down - cut_at).as_secs_f64(),
        (took_over - cut_at).as_secs_f64()
    );
    assert!(
        stepped_down < took_over,
        "the old leader must stop acting before the new one starts"
    );
    pair.wait_for_phase(1, user, &["done"], Duration::from_secs(60))
        .await;
    pair.assert_rotated_once(user);
    kill(&mut zero);
    kill(&mut one);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_webhooks_split_across_both_replicas_make_one_rotation() {
    let pair = Arc::new(pair(crate::postgres::database().await, [None, None]).await);
    let mut children = [pair.replicas[0].spawn(), pair.replicas[1].spawn()];
    pair.replicas[0].ready().await;
    pair.replicas[1].ready().await;
    let user = "flood@alphagov.co.uk";
    pair.seed(user);
    let body = Pair::alert(user, "00000000f1f1f1f1");
    let mut posts = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (pair, body) = (Arc::clone(&pair), body.clone());
        posts.spawn(async move { pair.replicas[i % 2].post_webhook(body).await });
    }
    let acked = posts.join_all().await.into_iter().filter(|ok| *ok).count();
    assert_eq!(acked, 200, "every delivery acknowledged, on either replica");
    pair.wait_for_phase(0, user, &["done"], Duration::from_secs(60))
        .await;
    let rotations: Vec<Value> = pair.replicas[1]
        .rotations()
        .await
        .into_iter()
        .filter(|r| r["api_user"] == user)
        .collect();
    assert_eq!(rotations.len(), 1, "{rotations:#?}");
    pair.assert_rotated_once(user);
    // The metric agrees with /readyz: one leader, one standby.
    let leader = pair.leader(Duration::from_secs(10)).await;
    for (i, replica) in pair.replicas.iter().enumerate() {
        let metrics = replica
            .client
            .get(replica.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let expected = format!("token_rotator_leader {}", u8::from(i == leader));
        assert!(metrics.contains(&expected), "replica {i}: no {expected:?}");
    }
    for child in &mut children {
        kill(child);
    }
}
