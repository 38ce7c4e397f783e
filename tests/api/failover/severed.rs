//! PostgreSQL gone without a word — its host lost, so no connection of ours is ever closed or
//! refused — and its address taken over by a server that answers (a promoted standby behind
//! the same address). Every connection open at that moment waits forever for an answer; each
//! part of the service must give its own up and connect again: intake answers 200 again on both
//! replicas, one leader finishes the rotation with one mint, and no acknowledged alert is lost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cut::Proxy;
use super::flood::{self, Flood};
use super::pair::{Pair, pair};
use crate::process::kill;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_to_a_vanished_server_are_given_up_and_intake_comes_back() {
    let db = crate::postgres::database().await;
    let proxy = Proxy::in_front_of(&db.url).await;
    let pair = Arc::new(pair(db, [Some(proxy.port), Some(proxy.port)]).await);
    let mut children = [pair.replicas[0].spawn(), pair.replicas[1].spawn()];
    pair.replicas[0].ready().await;
    pair.replicas[1].ready().await;
    let leader = pair.leader(Duration::from_secs(30)).await;
    let user = "severed@alphagov.co.uk";
    pair.seed(user);
    let client = reqwest::Client::new();
    let alert = Pair::alert(user, "00000000005e7e7d");
    assert_eq!(
        flood::post(&client, &pair.replicas[1 - leader], alert).await,
        Some(200)
    );
    pair.wait_for_phase(leader, user, &["issued"], Duration::from_secs(30))
        .await;
    // Every connection of both replicas (each has journaled a webhook, so its writer has one).
    let flood = Flood::start(&pair, Duration::from_millis(20));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let severed_at = Instant::now();
    proxy.sever();

    let mut back = [Duration::ZERO; 2];
    for (i, replica) in pair.replicas.iter().enumerate() {
        for n in 0u64.. {
            let fingerprint = format!("5e{i}{n:013x}");
            if flood::post(&client, replica, flood::resolved(&fingerprint)).await == Some(200) {
                break;
            }
            assert!(
                severed_at.elapsed() < Duration::from_secs(40),
                "replica {i} never acknowledged a webhook again"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        back[i] = severed_at.elapsed();
    }
    pair.leader(Duration::from_secs(30)).await;
    let led = severed_at.elapsed();
    pair.wait_for_phase(0, user, &["done"], Duration::from_secs(60))
        .await;
    let answers = flood.stop().await;
    let acknowledged = flood::assert_acknowledged_journaled(&answers, &pair.journaled().await);
    pair.assert_rotated_once(user);
    assert_eq!(pair.secret_writes(user), 1, "{user}: Secret written again");
    println!(
        "severed: intake acknowledged again after {:.2}s and {:.2}s, one leader after {:.2}s, \
         rotation done after {:.2}s; {} webhooks, {acknowledged} acknowledged and journaled",
        back[0].as_secs_f64(),
        back[1].as_secs_f64(),
        led.as_secs_f64(),
        severed_at.elapsed().as_secs_f64(),
        answers.len()
    );
    for child in &mut children {
        kill(child);
    }
}

/// The engine's own statements, not only the intake's: one in flight when the server vanished
/// waits for an answer that never comes. It must fail within the journal's bound, and the next
/// statement must reach the server now at the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_in_flight_when_the_server_vanished_fails_and_the_next_connects_afresh() {
    use sqlx::Connection;
    use token_rotator::store::{Journal, rotations};

    let db = crate::postgres::database().await;
    let proxy = Proxy::in_front_of(&db.url).await;
    let url = super::pair::with_port(&db.url, proxy.port);
    let journal = Journal::open(&url, Duration::from_secs(5)).await.unwrap();
    let pool = journal.pool().clone();
    rotations::all_rotations(&pool).await.unwrap();
    // A read the server holds (another session has the table locked), so it is surely in
    // flight when the server vanishes.
    let mut locker = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE rotations IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    let reading = tokio::spawn({
        let pool = pool.clone();
        async move { rotations::all_rotations(&pool).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.sever();
    let started = Instant::now();
    sqlx::raw_sql("COMMIT").execute(&mut locker).await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(30), reading)
        .await
        .expect("a read on a vanished server is given up, not waited on for good")
        .unwrap();
    let error = outcome.expect_err("no rows come from a server that is gone");
    assert!(
        error.to_string().contains("no answer from PostgreSQL"),
        "{error}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(5),
        "given up too soon: {waited:?}"
    );
    // The pool's idle connections were severed too: an acquire that finds one gives it up at
    // the pool's acquire timeout (its ping never answers) and a later one connects afresh.
    let mut given_up = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = rotations::all_rotations(&pool).await {
        given_up += 1;
        assert!(
            Instant::now() < deadline,
            "the journal never read again: {e}"
        );
    }
    let tx = pool.write_tx().await.expect("a write connects too");
    tx.commit().await.expect("committed");
    println!(
        "severed: a statement in flight given up {:.1}s after the server vanished; \
         {given_up} dead idle connection(s) given up before the journal read again, {:.1}s after",
        waited.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
