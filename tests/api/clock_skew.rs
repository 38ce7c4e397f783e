//! One replica's clock an hour off. Every deadline in the journal (a grace's end, a retry, a
//! revoke) is compared with the acting replica's clock, so a replica an hour ahead would revoke
//! an hour early: it must not lead while its clock and the database's disagree, and says why. The
//! Lease is never judged by its timestamps: a holder whose clock is an hour behind keeps it while
//! it renews.

use std::sync::Arc;
use std::time::Duration;

use token_rotator::adapters::kubernetes::Cluster;
use token_rotator::adapters::kubernetes::lease::LeaseWrite;
use token_rotator::clock::{Clock, SkewedClock, SystemClock};
use token_rotator::leader::{Leadership, Role};
use token_rotator::sim::kubernetes::KubernetesSim;
use token_rotator::store::Journal;
use token_rotator::telemetry::Metrics;
use tokio::sync::watch;

use crate::world::NAMESPACE;

const LEASE: Duration = Duration::from_secs(1);
const HOUR_MS: i64 = 3_600_000;

async fn journal(url: &str) -> Journal {
    Journal::open(url, Duration::from_secs(5)).await.unwrap()
}

/// Whether `leadership` leads at some moment within `within`.
async fn leads_within(leadership: &Leadership, within: Duration) -> bool {
    tokio::time::timeout(within, leadership.leading())
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_an_hour_off_never_leads_until_its_clock_is_put_right() {
    token_rotator::install_crypto_provider();
    let database = crate::postgres::database().await;
    let journal = journal(&database.url).await;
    let db = journal.pool();
    let metrics = Arc::new(Metrics::new());
    let (stop_good, good_stopped) = watch::channel(false);
    let (stop_ahead, ahead_stopped) = watch::channel(false);
    let good = Leadership::postgres(
        &database.url,
        db,
        LEASE,
        "good".into(),
        Arc::clone(&metrics),
        Arc::new(SystemClock),
        good_stopped,
    )
    .unwrap();
    assert!(leads_within(&good, Duration::from_secs(10)).await);

    let clock = Arc::new(SkewedClock::new(HOUR_MS));
    let ahead = Leadership::postgres(
        &database.url,
        db,
        LEASE,
        "ahead".into(),
        Arc::clone(&metrics),
        Arc::clone(&clock) as Arc<dyn Clock>,
        ahead_stopped,
    )
    .unwrap();
    // The leader gone, nobody acts: better no rotation than a revoke an hour early.
    stop_good.send_replace(true);
    assert!(
        !leads_within(&ahead, 4 * LEASE).await,
        "a replica an hour ahead took over"
    );
    assert!(ahead.ensure().await.is_err(), "it would act");
    let problem = ahead.clock_problem().expect("it says why");
    assert!(
        problem.contains("3600.0s ahead of the database's"),
        "{problem}"
    );

    // Put right, it leads, and says nothing more about its clock.
    clock.set(0);
    let put_right = std::time::Instant::now();
    assert!(
        leads_within(&ahead, 4 * LEASE).await,
        "never led once right"
    );
    println!(
        "clock put right: led after {:.2}s",
        put_right.elapsed().as_secs_f64()
    );
    assert_eq!(ahead.clock_problem(), None);

    // Gone wrong while leading (an hour behind now): it stops acting within half a lease.
    clock.set(-HOUR_MS);
    let skewed = std::time::Instant::now();
    let stepped_down = tokio::time::timeout(LEASE, ahead.lost()).await;
    assert!(stepped_down.is_ok(), "still leading an hour behind");
    println!(
        "clock set an hour behind while leading: stepped down after {:.2}s",
        skewed.elapsed().as_secs_f64()
    );
    assert_eq!(ahead.role(), Role::Standby);
    let problem = ahead.clock_problem().unwrap();
    assert!(problem.contains("behind the database's"), "{problem}");
    stop_ahead.send_replace(true);
}

/// client-go's rule: a standby takes a Lease only when it has seen it unchanged for a whole
/// lease by its own clock. A holder an hour behind writes `renewTime`s that look an hour stale;
/// a standby comparing them with its own time would take the Lease from a live leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_renewed_by_a_clock_an_hour_behind_is_not_taken_while_it_is_renewed() {
    token_rotator::install_crypto_provider();
    let database = crate::postgres::database().await;
    let journal = journal(&database.url).await;
    let kubernetes = KubernetesSim::new();
    let running = kubernetes.start().await.unwrap();
    let cluster = || Cluster::for_url(&running.url(), NAMESPACE, Duration::from_secs(5)).unwrap();
    let name = "token-rotator-skew";

    // The other replica, an hour behind, holds the Lease and renews it every L/5.
    let behind = cluster();
    let stale = || jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    let LeaseWrite::Written(mut held) = behind
        .write_lease_at(name, None, Some("behind"), 1, stale())
        .await
        .unwrap()
    else {
        panic!("the Lease was free");
    };
    let renewing = tokio::spawn(async move {
        for _ in 0..20 {
            tokio::time::sleep(LEASE / 5).await;
            match behind
                .write_lease_at(name, Some(&held), Some("behind"), 1, stale())
                .await
                .unwrap()
            {
                LeaseWrite::Written(lease) => held = lease,
                LeaseWrite::Conflict => return false,
            }
        }
        true
    });

    let (stop, stopped) = watch::channel(false);
    let standby = Leadership::kubernetes(
        cluster(),
        name.into(),
        journal.pool(),
        LEASE,
        "standby".into(),
        Arc::new(Metrics::new()),
        Arc::new(SystemClock),
        stopped,
    );
    // Four seconds of renewals, each an hour stale by the standby's clock.
    assert!(
        renewing.await.unwrap(),
        "the Lease was taken from its live holder"
    );
    assert_eq!(standby.role(), Role::Standby);
    assert_eq!(
        kubernetes.lease_holder(NAMESPACE, name).as_deref(),
        Some("behind")
    );
    // Renewals stopped: after a lease of silence by its own clock, the standby takes it.
    let silent = std::time::Instant::now();
    assert!(leads_within(&standby, 4 * LEASE).await);
    println!(
        "renewals stopped: the standby led after {:.2}s (lease {LEASE:?})",
        silent.elapsed().as_secs_f64()
    );
    assert_eq!(
        kubernetes.lease_holder(NAMESPACE, name).as_deref(),
        Some("standby")
    );
    stop.send_replace(true);
}

/// `/readyz` of a replica an hour ahead: still ready (it takes webhooks), a standby, and says
/// why it will not lead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_of_a_replica_an_hour_ahead_says_its_clock_keeps_it_from_leading() {
    use token_rotator::adapters::Observer;

    let database = crate::postgres::database().await;
    let url = database.url.clone();
    let sims = crate::world::Sims::start().await;
    let metrics = Arc::new(Metrics::new());
    let mut parts = sims.parts(
        false,
        vec![],
        Observer::new(Arc::clone(&metrics)),
        &crate::world::WorldOptions::default(),
    );
    parts.clock = Arc::new(SkewedClock::new(HOUR_MS));
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        engine: Some(parts),
        metrics: Some(metrics),
        configure: Some(Box::new(move |config| {
            config.database_url = url;
            config.leader_lease = LEASE;
        })),
        ..crate::helpers::Options::default()
    })
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = app.get_text("/readyz").await;
        assert_eq!(status, 200, "{body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["role"], "standby", "{body}");
        if let Some(problem) = body["clock"]["problem"].as_str() {
            assert!(problem.contains("3600.0s ahead"), "{problem}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never said why: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
