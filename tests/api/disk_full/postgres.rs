//! The journal's disk full on PostgreSQL, for real: the test's database lives in a TABLESPACE on
//! a small tmpfs, which is then filled to ENOSPC. PostgreSQL refuses a statement whose rows need
//! a page the table's file cannot grow by, with SQLSTATE 53100 `disk_full` ("could not extend
//! file"; <https://www.postgresql.org/docs/current/errcodes-appendix.html>), rolls that
//! transaction back and goes on serving everything else.
//!
//! Only the data is on the tmpfs: the WAL stays in the cluster's data directory, on the normal
//! disk. A full WAL disk makes the server PANIC and stop
//! (<https://www.postgresql.org/docs/current/disk-full.html>): that is PostgreSQL going away,
//! which `tests/api/failover/outage.rs` covers.
//!
//! A cluster of the test's own (`.ci/postgres`), since the test adds a tablespace to it; root to
//! mount the tmpfs, or it skips saying so.

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use token_rotator::engine::{EngineError, Phase};
use token_rotator::store::StoreError;

use super::{Tmpfs, alert};
use crate::helpers::TestApp;
use crate::world::{Sims, World, WorldOptions};

/// Alerts acknowledged before the fill and left for the engine to take in on the full disk: in
/// one transaction, each marked handled and joined to the rotation under way, far more than the
/// room left in the tables' last pages.
const BEFORE: u64 = 150;

/// A database on `server` whose every file, its catalogs' too, is in a tablespace on `disk`;
/// returns its URL.
async fn database_on(server: &str, disk: &Tmpfs) -> String {
    let mut admin = PgConnection::connect(server).await.unwrap();
    // A tablespace's directory must exist, be empty and belong to the user the server runs as
    // (<https://www.postgresql.org/docs/current/manage-ag-tablespaces.html>): `postgres` when
    // `.ci/postgres` runs as root, whoever owns the data directory in general.
    let data: String = sqlx::query_scalar("SHOW data_directory")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    let owner = std::fs::metadata(&data).unwrap().uid();
    let location = disk.path().join("tablespace");
    std::fs::create_dir(&location).unwrap();
    std::os::unix::fs::chown(&location, Some(owner), None).unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLESPACE on_tmpfs LOCATION '{}'",
        location.display()
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::query("CREATE DATABASE journal TABLESPACE on_tmpfs")
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    match server.rsplit_once('/') {
        Some((base, _)) => format!("{base}/journal"),
        None => panic!("{server} has no database part"),
    }
}

/// The grace of the test's rotation, in real time (see `follow_real_time`).
const PG_GRACE: Duration = Duration::from_secs(2);

/// Runs the engine until every rotation has ended, in real time: retries wait out their delays
/// rather than the clock being moved past them.
async fn run_to_the_end(world: &World) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match world.engine.run_until_idle().await {
            Ok(()) => {}
            // A short lease can lapse on a loaded machine; the next pass leads again.
            Err(EngineError::Store(StoreError::Fenced { .. })) => leads(world).await,
            Err(e) => panic!("{e}"),
        }
        if world
            .rotations()
            .await
            .iter()
            .all(|r| r.next_attempt_at_ms.is_none())
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still running: {:#?}",
            world.rotations().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the world's replica leads (it elects itself through the journal).
async fn leads(world: &World) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, body) = world.app.get_text("/readyz").await;
        if body.contains("\"role\":\"leader\"") {
            return;
        }
        assert!(Instant::now() < deadline, "never led: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Posts new alerts for `user` one after another until `refusals` have been refused (or a bound
/// is reached): the fingerprints acknowledged (200, a row that still found room), and the bodies
/// of the 503s.
async fn post_until_refused(
    app: &TestApp,
    user: &str,
    first: u64,
    refusals: usize,
) -> (Vec<String>, Vec<String>) {
    let mut answers = super::Answers::default();
    for n in first..first + 2000 {
        if answers.refused.len() == refusals {
            break;
        }
        answers.post(app, user, n).await;
    }
    (answers.acknowledged, answers.refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_full_disk_refuses_the_engine_and_webhooks_loses_nothing_and_recovers() {
    let Some(disk) = Tmpfs::mount_open("32m") else {
        return;
    };
    // Declared after the disk, so stopped before it is unmounted.
    let server = crate::postgres::own_cluster();
    let url = database_on(&server.url, &disk).await;
    let world = Sims::start()
        .await
        .world_with(
            None,
            WorldOptions {
                database_url: Some(url),
                grace: PG_GRACE,
                ..WorldOptions::default()
            },
        )
        .await;
    leads(&world).await;
    let user = "pg-full-disk@alphagov.co.uk";
    let old = world.seed(user, "Publishing API");
    let first = world
        .app
        .post_webhook(alert(user, "00000000000f0001"))
        .await;
    assert_eq!(first.status(), 200);
    world.run_until(Phase::Grace).await;
    let mut acknowledged = vec!["00000000000f0001".to_owned()];
    for n in 0..BEFORE {
        let fingerprint = format!("{:016x}", 0xbef0_0000 + n);
        let response = world.app.post_webhook(alert(user, &fingerprint)).await;
        assert_eq!(response.status(), 200);
        acknowledged.push(fingerprint);
    }

    tokio::task::block_in_place(|| disk.fill());
    // Full, but nothing has been refused yet: `/readyz` does not guess.
    let (status, body) = world.app.get_text("/readyz").await;
    assert_eq!(status, 200, "{body}");

    // The engine's write first, no webhook arriving: taking the alerts in is refused.
    // The grace ends in real time: the clock of a replica elected through PostgreSQL may not
    // run an hour ahead of the database's.
    tokio::time::sleep(PG_GRACE).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        let refused = world.engine.tick().await.expect_err("a write found room");
        let EngineError::Store(error) = &refused;
        if error.is_disk_full() {
            break refused;
        }
        // The test's short lease can lapse between two renewals on a loaded machine (a renewal
        // only reads, so the full disk is not why): lead again and try again.
        assert!(
            matches!(error, StoreError::Fenced { .. }) && Instant::now() < deadline,
            "{refused}"
        );
        leads(&world).await;
    };
    println!("the engine's write on the full disk: {refused}");
    let (status, body) = world.app.get_text("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("journal disk full"), "{body}");

    // Then webhooks: each journaled in a page that still had room, or refused saying why.
    let (during, refused) = post_until_refused(&world.app, user, 0xd15c_0000, 20).await;
    assert_eq!(refused.len(), 20, "only {} refused", refused.len());
    for body in &refused {
        let error: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            error["detail"],
            "journal unavailable: its disk is full; nothing was recorded; try again later",
            "{body}"
        );
    }
    acknowledged.extend(during.iter().cloned());
    let (status, body) = world.app.get_text("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("journal disk full"), "{body}");

    // Space freed, no restart: the same server, connections and process go on.
    disk.free();
    let freed = Instant::now();
    let fingerprint = "00000000000f0002";
    let after = world.app.post_webhook(alert(user, fingerprint)).await;
    assert_eq!(after.status(), 200, "{}", after.text().await.unwrap());
    acknowledged.push(fingerprint.into());
    let webhook_after = freed.elapsed();
    let (status, body) = world.app.get_text("/readyz").await;
    assert_eq!(status, 200, "{body}");
    let ready_after = freed.elapsed();
    run_to_the_end(&world).await;
    println!(
        "PostgreSQL, data on a full tmpfs: {} acknowledged before the fill; the engine's write \
         refused; {} webhooks acknowledged and {} refused during it; space freed: webhook 200 \
         after {:.3}s, /readyz 200 after {:.3}s, rotation done after {:.3}s",
        BEFORE + 1,
        during.len(),
        refused.len(),
        webhook_after.as_secs_f64(),
        ready_after.as_secs_f64(),
        freed.elapsed().as_secs_f64()
    );

    let journaled =
        super::assert_done_once_and_nothing_lost(&world, user, &old, &acknowledged).await;
    println!(
        "{} acknowledged in all, {} journaled, 0 lost",
        acknowledged.len(),
        journaled
    );
}
