//! The engine's half of the journal: rotations, their guards and audit, the outbox and threads
//! (the rest of what the engine keeps is in `upkeep`).

use token_rotator::store::StoreError;
use token_rotator::store::outbox;
use token_rotator::store::rotations::{self, Field};
use token_rotator::store::threads::{self, ThreadKey};

use super::{Backend, ms, new_rotation, start, step};

pub(super) async fn one_active_rotation_per_target(backend: Backend) {
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

pub(super) async fn a_phase_moves_only_from_the_phase_read(backend: Backend) {
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

pub(super) async fn fields_retries_and_waits_round_trip(backend: Backend) {
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

pub(super) async fn the_outbox_delivers_and_gives_up(backend: Backend) {
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

pub(super) async fn a_thread_cursor_never_goes_back(backend: Backend) {
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
    let events = threads::events_after(db, thread.id, 0, 60).await.unwrap();
    assert_eq!(events.len(), 1);
    let none = threads::events_after(db, thread.id, 0, 0).await.unwrap();
    assert!(none.is_empty(), "at most the limit, on every backend");
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
