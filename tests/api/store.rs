//! The journal's contract, one suite run on both databases: each test body below is written once
//! and `store_suite!` runs it on SQLite (a file) and on PostgreSQL (a fresh database).

use std::time::Duration;

use jiff::Timestamp;
use token_rotator::config::Config;
use token_rotator::intake::{WebhookPayload, route};
use token_rotator::store::outbox::{self, Notice, NoticeKind};
use token_rotator::store::rotations::{self, Field, NewRotation, Transition};
use token_rotator::store::threads::{self, ThreadKey};
use token_rotator::store::{Journal, Journaled, StoreError, handovers, schedules, snapshot};

use crate::helpers::alert_body;
use crate::postgres;

/// A journal on one of the two databases, and what keeps that database alive.
pub struct Backend {
    pub url: String,
    _keep: Keep,
}

enum Keep {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Postgres(#[allow(dead_code)] postgres::TestDatabase),
}

pub async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    Backend {
        url: format!("sqlite://{}", dir.path().join("journal.db").display()),
        _keep: Keep::Dir(dir),
    }
}

pub async fn postgres() -> Backend {
    let db = postgres::database().await;
    Backend {
        url: db.url.clone(),
        _keep: Keep::Postgres(db),
    }
}

impl Backend {
    async fn open(&self) -> Journal {
        Journal::open(&self.url, Duration::from_secs(5))
            .await
            .unwrap()
    }
}

macro_rules! store_suite {
    ($($test:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::sqlite().await).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::postgres().await).await;
                }
            )*
        }
    };
}

store_suite!(
    ha_duplicates_are_one_alert,
    two_writers_racing_on_one_alert_journal_it_once,
    one_active_rotation_per_target,
    a_phase_moves_only_from_the_phase_read,
    fields_retries_and_waits_round_trip,
    the_outbox_delivers_and_gives_up,
    a_thread_cursor_never_goes_back,
    a_schedule_starts_once_per_due_time,
    a_handover_is_collected_once,
    the_snapshot_and_last_alerts_read_both_dialects,
);

fn delivery(body: &[u8]) -> token_rotator::intake::Delivery {
    let config = Config::builtin();
    route(WebhookPayload::parse(body).unwrap(), None, &config.policy)
}

fn labels(api_user: &str) -> Vec<(&'static str, String)> {
    vec![
        ("alertname", "SignonApiUserTokenExpirySoon".into()),
        ("environment", "production".into()),
        ("api_user", api_user.into()),
        ("application", "publisher".into()),
    ]
}

fn body_for(fingerprint: &str, api_user: &str) -> Vec<u8> {
    let labels = labels(api_user);
    let pairs: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
    alert_body(fingerprint, &pairs)
}

fn ms(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap()
}

fn new_rotation(id: &str, api_user: &str, phase: &'static str) -> NewRotation {
    NewRotation {
        id: id.into(),
        environment: "production".into(),
        api_user: api_user.into(),
        application: "publisher".into(),
        action: "rotate".into(),
        rule_name: Some("default".into()),
        action_detail: None,
        phase,
        trigger: "cli".into(),
        alertname: None,
        mode: "active",
        next_attempt_at: Some(ms(1_000)),
        outcome: None,
        reason: "test".into(),
        thread: None,
    }
}

/// Starts `new` at `at_ms`, or fails the test.
async fn start(db: &token_rotator::store::Db, new: NewRotation, at_ms: i64) {
    rotations::start(db, &new, None, ms(at_ms), &[])
        .await
        .unwrap();
}

fn step(from: &'static str, to: &'static str, next: Option<i64>) -> Transition {
    Transition {
        from,
        to,
        reason: format!("{from} to {to}"),
        trigger: "test".into(),
        next_attempt_at: next.map(ms),
        fields: vec![],
        notify: vec![Notice::new(
            NoticeKind::Outcome,
            serde_json::json!({"text": to}),
        )],
    }
}

async fn ha_duplicates_are_one_alert(backend: Backend) {
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
async fn two_writers_racing_on_one_alert_journal_it_once(backend: Backend) {
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

async fn one_active_rotation_per_target(backend: Backend) {
    let journal = backend.open().await;
    let db = journal.pool();
    let now = ms(1_000);
    rotations::start(db, &new_rotation("r1", "u", "planned"), None, now, &[])
        .await
        .unwrap();
    let second = rotations::start(db, &new_rotation("r2", "u", "planned"), None, now, &[]).await;
    assert!(
        matches!(second, Err(StoreError::Write(_))),
        "a second active rotation of one target must be refused, got {second:?}"
    );
    // Another target is independent; and once the first is done, the target is free again.
    rotations::start(db, &new_rotation("r3", "v", "planned"), None, now, &[])
        .await
        .unwrap();
    assert!(
        rotations::transition(db, "r1", &step("planned", "done", None), now, None)
            .await
            .unwrap()
    );
    rotations::start(db, &new_rotation("r2", "u", "planned"), None, now, &[])
        .await
        .unwrap();
    let active = rotations::active_rotation(db, "production", "u", "publisher")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(active.id, "r2");
    let done = rotations::last_done(db, "production", "u", "publisher")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.id, "r1");
    assert_eq!(done.finished_at_ms, Some(1_000));
    journal.close().await;
}

async fn a_phase_moves_only_from_the_phase_read(backend: Backend) {
    let journal = backend.open().await;
    let db = journal.pool();
    start(db, new_rotation("r1", "u", "planned"), 1_000).await;
    let moved = rotations::transition(
        db,
        "r1",
        &step("planned", "issued", Some(2_000)),
        ms(1_500),
        None,
    )
    .await
    .unwrap();
    assert!(moved);
    // A second engine that read `planned` too finds the row moved on, and writes nothing.
    let again = rotations::transition(
        db,
        "r1",
        &step("planned", "issued", Some(2_000)),
        ms(1_600),
        None,
    )
    .await
    .unwrap();
    assert!(!again);
    let audit = rotations::audit(db, "r1").await.unwrap();
    let phases: Vec<(Option<&str>, &str)> = audit
        .iter()
        .map(|a| (a.from_phase.as_deref(), a.to_phase.as_str()))
        .collect();
    assert_eq!(phases, [(None, "planned"), (Some("planned"), "issued")]);
    let queued = outbox::all_notifications(db).await.unwrap();
    assert_eq!(queued.len(), 1, "only the transition that happened is told");
    let row = rotations::rotation(db, "r1").await.unwrap().unwrap();
    assert_eq!(
        (row.phase.as_str(), row.next_attempt_at_ms),
        ("issued", Some(2_000))
    );
    journal.close().await;
}

async fn fields_retries_and_waits_round_trip(backend: Backend) {
    let journal = backend.open().await;
    let db = journal.pool();
    start(db, new_rotation("r1", "u", "planned"), 1_000).await;
    let fields = [
        Field::Text("old_token_id", Some("42".into())),
        Field::Int("old_token_expires_at_ms", Some(9_000)),
        Field::Blob("old_secret_sealed", Some(vec![0, 159, 255])),
    ];
    rotations::record(db, "r1", "planned", &fields, ms(1_100))
        .await
        .unwrap();
    // Written only while the row is still in the phase named.
    rotations::record(
        db,
        "r1",
        "issued",
        &[Field::Text("old_token_id", Some("x".into()))],
        ms(1_200),
    )
    .await
    .unwrap();
    let row = rotations::rotation(db, "r1").await.unwrap().unwrap();
    assert_eq!(row.old_token_id.as_deref(), Some("42"));
    assert_eq!(row.old_token_expires_at_ms, Some(9_000));
    assert_eq!(row.old_secret_sealed.as_deref(), Some(&[0u8, 159, 255][..]));

    rotations::retry_later(db, &row, "Signon answered 503", ms(5_000), ms(1_300))
        .await
        .unwrap();
    let row = rotations::rotation(db, "r1").await.unwrap().unwrap();
    assert_eq!(row.attempts, 1);
    assert_eq!(row.last_error.as_deref(), Some("Signon answered 503"));
    assert_eq!(rotations::next_due(db).await.unwrap(), Some(5_000));
    assert!(
        rotations::due_rotations(db, ms(4_999))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        rotations::due_rotations(db, ms(5_000)).await.unwrap().len(),
        1
    );

    rotations::wait_until(db, &row, "awaiting the mint Job", ms(7_000))
        .await
        .unwrap();
    let row = rotations::rotation(db, "r1").await.unwrap().unwrap();
    assert_eq!(row.attempts, 1, "a wait is not an attempt");
    assert_eq!(row.next_attempt_at_ms, Some(7_000));
    assert_eq!(rotations::audit(db, "r1").await.unwrap().len(), 2);
    journal.close().await;
}

async fn the_outbox_delivers_and_gives_up(backend: Backend) {
    let journal = backend.open().await;
    let db = journal.pool();
    outbox::enqueue(db, &serde_json::json!({"text": "one"}), ms(1_000))
        .await
        .unwrap();
    outbox::enqueue(db, &serde_json::json!({"text": "two"}), ms(1_000))
        .await
        .unwrap();
    let due = outbox::due_notifications(db, ms(1_000)).await.unwrap();
    assert_eq!(due.len(), 2);
    assert_eq!(rotations::next_due(db).await.unwrap(), Some(1_000));
    outbox::notification_attempted(db, due[0].id, ms(1_100), None, None)
        .await
        .unwrap();
    outbox::notification_failed(db, due[1].id, "HTTP 500")
        .await
        .unwrap();
    outbox::notification_abandoned(db, due[1].id, "channel_not_found")
        .await
        .unwrap();
    let all = outbox::all_notifications(db).await.unwrap();
    assert_eq!(all[0].delivered_at_ms, Some(1_100));
    assert_eq!(all[0].next_attempt_at_ms, None);
    assert_eq!(all[1].attempts, 2);
    assert_eq!(all[1].last_error.as_deref(), Some("channel_not_found"));
    assert!(
        outbox::due_notifications(db, ms(10_000))
            .await
            .unwrap()
            .is_empty()
    );
    journal.close().await;
}

async fn a_thread_cursor_never_goes_back(backend: Backend) {
    let journal = backend.open().await;
    let db = journal.pool();
    let key = ThreadKey {
        delivery_id: None,
        channel: "#platform".into(),
    };
    start(db, new_rotation("r1", "u", "planned").told_in(key), 1_000).await;
    let thread = threads::all(db).await.unwrap().remove(0);
    assert_eq!(threads::rotations(db, thread.id).await.unwrap().len(), 1);
    assert_eq!(threads::with_work(db, ms(1_000)).await.unwrap().len(), 1);
    threads::posted(db, thread.id, "C1", "1700000000.000100", "digest")
        .await
        .unwrap();
    let events = threads::events_after(db, thread.id, 0).await.unwrap();
    assert_eq!(events.len(), 1);
    threads::told(db, thread.id, events[0].id).await.unwrap();
    threads::told(db, thread.id, 0).await.unwrap();
    let thread = threads::all(db).await.unwrap().remove(0);
    assert_eq!(
        thread.audit_cursor, events[0].id,
        "a late, older cursor is ignored"
    );
    assert_eq!(thread.ts.as_deref(), Some("1700000000.000100"));
    journal.close().await;
}

async fn a_schedule_starts_once_per_due_time(backend: Backend) {
    let journal = backend.open().await;
    let db = journal.pool();
    let due = schedules::due(db, "synoptic", ms(5_000), ms(1_000))
        .await
        .unwrap();
    assert_eq!(due, ms(5_000));
    // Journaled at first sight: asking again keeps the first answer.
    assert_eq!(
        schedules::due(db, "synoptic", ms(9_000), ms(2_000))
            .await
            .unwrap(),
        ms(5_000)
    );
    let new = new_rotation("s1", "synoptic", "planned");
    assert!(
        schedules::start(db, "synoptic", due, ms(10_000), &new, ms(5_000))
            .await
            .unwrap()
    );
    let other = new_rotation("s2", "synoptic-2", "planned");
    assert!(
        !schedules::start(db, "synoptic", due, ms(10_000), &other, ms(5_001))
            .await
            .unwrap(),
        "the due time has moved on: a second pass starts nothing"
    );
    assert_eq!(
        schedules::all(db).await.unwrap(),
        [("synoptic".to_owned(), 10_000)]
    );
    assert_eq!(rotations::all_rotations(db).await.unwrap().len(), 1);
    journal.close().await;
}

async fn a_handover_is_collected_once(backend: Backend) {
    let journal = backend.open().await;
    let db = journal.pool();
    start(db, new_rotation("r1", "u", "awaiting_handover"), 1_000).await;
    let opened = handovers::open(db, "r1", "link", ms(1_000), ms(5_000))
        .await
        .unwrap();
    let again = handovers::open(db, "r1", "other", ms(1_100), ms(6_000))
        .await
        .unwrap();
    assert_eq!(
        again.id, opened.id,
        "a retried step finds the first handover"
    );
    assert_eq!(
        handovers::collect(db, "link", ms(2_000)).await.unwrap(),
        handovers::Collect::Token("r1".into())
    );
    assert_eq!(
        handovers::collect(db, "link", ms(2_100)).await.unwrap(),
        handovers::Collect::Collected(2_000)
    );
    assert_eq!(
        handovers::collect(db, "nope", ms(2_100)).await.unwrap(),
        handovers::Collect::Unknown
    );
    assert!(handovers::confirm(db, "link", ms(3_000)).await.unwrap());
    assert!(
        !handovers::confirm(db, "link", ms(5_000)).await.unwrap(),
        "past the window"
    );
    journal.close().await;
}

async fn the_snapshot_and_last_alerts_read_both_dialects(backend: Backend) {
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
