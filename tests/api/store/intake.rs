//! The intake half of the journal: deliveries, dedupe, what the gauges read back, and the
//! engine taking journaled alerts in.

use jiff::Timestamp;
use token_rotator::store::rotations;
use token_rotator::store::{Journaled, snapshot};

use super::{Backend, body_for, delivery, ms, new_rotation, postgres, start};

pub(super) async fn ha_duplicates_are_one_alert(backend: Backend) {
    let journal = backend.open().await;
    let a = token_rotator::fixtures::CAPTURES[13].body(); // 14-ha-duplicate-from-replica-a
    let b = token_rotator::fixtures::CAPTURES[14].body(); // 15-ha-duplicate-from-replica-b
    let now = Timestamp::now();
    let (first, second) = tokio::join!(
        journal.record(delivery(&a), now),
        journal.record(delivery(&b), now)
    );
    let mut journaled = [
        first.unwrap().alerts[0].journaled,
        second.unwrap().alerts[0].journaled,
    ];
    journaled.sort_by_key(|j| *j == Journaled::Duplicate);
    assert_eq!(journaled, [Journaled::New, Journaled::Duplicate]);
    assert_eq!(journal.alerts().await.unwrap().len(), 1);
    let pending = rotations::pending_alerts(journal.pool(), 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].receiver, delivery(&a).receiver);
    journal.close().await;
}

/// Two journals on one database stand for two replicas: 50 deliveries of one alert split between
/// them, all at once, journal it once, and exactly one of them is told it was new.
pub(super) async fn two_writers_racing_on_one_alert_journal_it_once(backend: Backend) {
    let (one, two) = (
        std::sync::Arc::new(backend.open().await),
        std::sync::Arc::new(backend.open().await),
    );
    let body = body_for("f00d", "racer");
    let now = Timestamp::now();
    let mut writes = tokio::task::JoinSet::new();
    for i in 0..50 {
        let journal = std::sync::Arc::clone(if i % 2 == 0 { &one } else { &two });
        let delivery = delivery(&body);
        writes.spawn(async move { journal.record(delivery, now).await });
    }
    let receipts = writes.join_all().await;
    let new = receipts
        .into_iter()
        .map(|r| r.unwrap())
        .filter(|r| r.alerts[0].journaled == Journaled::New)
        .count();
    assert_eq!(new, 1);
    assert_eq!(one.alerts().await.unwrap().len(), 1);
    assert_eq!(two.alerts().await.unwrap().len(), 1);
    one.close().await;
    two.close().await;
}

pub(super) async fn the_snapshot_and_last_alerts_read_both_dialects(backend: Backend) {
    let journal = backend.open().await;
    let db = journal.pool();
    journal
        .record(delivery(&body_for("a1", "u")), ms(1_000))
        .await
        .unwrap();
    journal
        .record(delivery(&body_for("a2", "u")), ms(2_000))
        .await
        .unwrap();
    start(db, new_rotation("r1", "u", "planned"), 1_000).await;
    let last = rotations::last_alerts(db).await.unwrap();
    let key = (
        "production".to_owned(),
        "u".to_owned(),
        "publisher".to_owned(),
    );
    assert_eq!(last[&key], ("firing".to_owned(), 2_000));
    let snapshot = snapshot::read(db, ms(3_000)).await.unwrap();
    assert_eq!(snapshot.active, [("planned", 1, 2.0)]);
    assert_eq!(snapshot.alert_first_seen.len(), 1);
    assert_eq!(snapshot.alert_first_seen[0].1, 1.0);
    journal.close().await;
}

/// PostgreSQL only (SQLite's file cannot go away): every connection of the journal is ended by
/// the server, as in a restart or a failover. At most one delivery is refused (503, and
/// Alertmanager re-sends it); then the writer has connected again and journals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_lost_connection_costs_one_delivery_not_the_writer() {
    use sqlx::Connection;
    let backend = postgres().await;
    let journal = backend.open().await;
    journal
        .record(delivery(&body_for("before", "u")), ms(1_000))
        .await
        .unwrap();
    let mut admin = sqlx::PgConnection::connect(&backend.url).await.unwrap();
    let ended: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(!ended.is_empty());
    let mut refused = 0;
    for i in 0..3 {
        let fingerprint = format!("after-{i}");
        match journal
            .record(delivery(&body_for(&fingerprint, "u")), ms(2_000))
            .await
        {
            Ok(receipt) => assert_eq!(receipt.alerts[0].journaled, Journaled::New),
            Err(e) => {
                assert!(e.is_unavailable(), "{e}");
                refused += 1;
            }
        }
    }
    assert!(
        refused <= 1,
        "{refused} deliveries refused after one lost connection"
    );
    assert_eq!(journal.alerts().await.unwrap().len(), 4 - refused);
    journal.close().await;
}

/// 70 alerts taken in at once (two transactions of at most 64): each leaves the pending list,
/// and each that joins a rotation with a note adds exactly its audit line, in the alerts' order.
pub(super) async fn alerts_taken_in_together_each_leave_the_queue_and_audit_in_order(
    backend: Backend,
) {
    let journal = backend.open().await;
    let db = journal.pool();
    start(db, new_rotation("r1", "u", "planned"), 1_000).await;
    start(db, new_rotation("r2", "v", "planned"), 1_000).await;
    for n in 0..70 {
        let body = body_for(&format!("f{n:03}"), "u");
        journal
            .record(super::delivery(&body), ms(2_000))
            .await
            .unwrap();
    }
    let pending = rotations::pending_alerts(db, 100).await.unwrap();
    assert_eq!(pending.len(), 70);
    let handled: Vec<rotations::Handled> = pending
        .iter()
        .enumerate()
        .map(|(n, alert)| {
            let (rotation_id, note) = match n % 3 {
                0 => (Some("r1"), Some(format!("joined by alert {n}"))),
                1 => (Some("r2"), None),
                _ => (None, None),
            };
            rotations::Handled {
                alert_id: alert.id,
                rotation_id: rotation_id.map(str::to_owned),
                note: note.map(|reason| ("planned".to_owned(), reason, "alert".to_owned())),
            }
        })
        .collect();
    rotations::handle_alerts(db, &handled, ms(3_000))
        .await
        .unwrap();

    assert!(rotations::pending_alerts(db, 100).await.unwrap().is_empty());
    let lines: Vec<(i64, String)> = rotations::audit(db, "r1")
        .await
        .unwrap()
        .into_iter()
        .skip(1) // the rotation's own first line
        .map(|a| (a.at_ms, a.reason))
        .collect();
    let expected: Vec<(i64, String)> = (0..70)
        .filter(|n| n % 3 == 0)
        .map(|n| (3_000, format!("joined by alert {n}")))
        .collect();
    assert_eq!(lines, expected);
    assert_eq!(
        rotations::audit(db, "r2").await.unwrap().len(),
        1,
        "no note, no line"
    );
    journal.close().await;
}
