//! The journal beside the rotations: scheduled targets' due times, handovers, retention,
//! rekeying, the token inventory and the nightly sweep.

use super::{Backend, ms, new_rotation, start, step};
use token_rotator::store::rotations::{self, Field};
use token_rotator::store::{StoreError, handovers, schedules};

pub(super) async fn a_schedule_starts_once_per_due_time(backend: Backend) {
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

pub(super) async fn a_handover_is_collected_once(backend: Backend) {
    let journal = backend.open().await;
    let db = journal.pool();
    start(db, new_rotation("r1", "u", "awaiting_handover"), 1_000).await;
    let opened = handovers::open(db, "r1", "first", ms(1_000), ms(5_000))
        .await
        .unwrap();
    assert_ne!(
        opened.id, "first",
        "the journal keeps the id's hash, not the id"
    );
    // A retried step (the first try's message never went out) replaces an unused link.
    let again = handovers::open(db, "r1", "link", ms(1_100), ms(5_000))
        .await
        .unwrap();
    assert_ne!(again.id, opened.id);
    assert_eq!(
        handovers::collect(db, "first", ms(1_200)).await.unwrap(),
        handovers::Collect::Unknown,
        "the replaced link gives nothing"
    );
    assert_eq!(
        handovers::peek(db, "link", ms(1_500)).await.unwrap(),
        handovers::Collect::Token("r1".into()),
        "a look spends nothing"
    );
    // Confirmed before anyone collected it: refused in the same update that would confirm it.
    assert_eq!(
        handovers::confirm(db, "link", ms(1_600)).await.unwrap(),
        handovers::Confirm::NotCollected
    );
    let row = handovers::of_rotation(db, "r1").await.unwrap().unwrap();
    assert_eq!(
        (row.collected_at_ms, row.confirmed_at_ms),
        (None, None),
        "a confirm before collection changes nothing"
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
    let spent = handovers::open(db, "r1", "third", ms(2_200), ms(9_000))
        .await
        .unwrap();
    assert_eq!(spent.id, again.id, "a collected link is never replaced");
    assert_eq!(
        handovers::confirm(db, "link", ms(3_000)).await.unwrap(),
        handovers::Confirm::Confirmed
    );
    assert_eq!(
        handovers::confirm(db, "link", ms(3_100)).await.unwrap(),
        handovers::Confirm::Already(3_000),
        "a second confirm changes nothing"
    );
    assert_eq!(
        handovers::confirm(db, "nope", ms(3_100)).await.unwrap(),
        handovers::Confirm::Unknown
    );
    // Past the window, an unconfirmed link is refused whether collected or not.
    start(db, new_rotation("r2", "v", "awaiting_handover"), 1_000).await;
    handovers::open(db, "r2", "late", ms(1_000), ms(5_000))
        .await
        .unwrap();
    assert_eq!(
        handovers::confirm(db, "late", ms(5_000)).await.unwrap(),
        handovers::Confirm::Expired,
        "past the window"
    );
    journal.close().await;
}

pub(super) async fn retention_prunes_what_finished_long_ago_but_a_targets_last_done(
    backend: Backend,
) {
    let journal = backend.open().await;
    let db = journal.pool();
    // Target u: done twice; target v: failed; target w: still running.
    for (id, user, end) in [
        ("u1", "u", "done"),
        ("u2", "u", "done"),
        ("v1", "v", "failed"),
    ] {
        start(db, new_rotation(id, user, "planned"), 1_000).await;
        let at = if id == "u2" { 3_000 } else { 2_000 };
        assert!(
            rotations::transition(db, id, &step("planned", end, None), ms(at), None)
                .await
                .unwrap()
        );
    }
    start(db, new_rotation("w1", "w", "planned"), 1_000).await;
    let pruned = token_rotator::store::retention::prune(db, 10_000)
        .await
        .unwrap();
    assert_eq!(pruned.rotations, 2, "{pruned:?}");
    let left: Vec<String> = rotations::all_rotations(db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, ["u2", "w1"], "u's last done and the running one stay");
    assert!(rotations::audit(db, "u1").await.unwrap().is_empty());
    assert!(!rotations::audit(db, "u2").await.unwrap().is_empty());
    journal.close().await;
}

pub(super) async fn rekey_reseals_with_the_new_key_what_the_old_one_sealed(backend: Backend) {
    use secrecy::ExposeSecret;
    use token_rotator::secrets::Keys;
    let journal = backend.open().await;
    let db = journal.pool();
    start(db, new_rotation("r1", "u", "issued"), 1_000).await;
    let old = Keys::new([1; 32], [2; 32]);
    let sealed = old.seal(&"the-new-token".into(), "r1/new");
    rotations::record(
        db,
        "r1",
        "issued",
        &[Field::Blob("new_token_sealed", Some(sealed))],
        ms(1_100),
    )
    .await
    .unwrap();
    // A handover link waiting for Slack is sealed with the same key.
    use base64::Engine as _;
    use token_rotator::store::outbox::{self, DirectBody, Notice, NoticeKind};
    let link = old.seal(
        &"{\"text\":\"the link\"}".into(),
        &DirectBody::context("r1"),
    );
    let direct = DirectBody {
        to: "U0OWNER1".into(),
        sealed: base64::engine::general_purpose::STANDARD.encode(link),
    };
    let notice = Notice::new(NoticeKind::Direct, serde_json::to_value(&direct).unwrap());
    outbox::enqueue_for(db, Some("r1"), &notice, ms(1_200))
        .await
        .unwrap();
    let rotated = Keys::new([1; 32], [3; 32]).with_previous([2; 32]);
    let done = token_rotator::store::rekey::rekey(db, &rotated)
        .await
        .unwrap();
    assert_eq!((done.resealed, done.unopenable), (2, 0), "{done:?}");
    let again = token_rotator::store::rekey::rekey(db, &rotated)
        .await
        .unwrap();
    assert_eq!(
        (again.resealed, again.current),
        (0, 2),
        "nothing left to re-seal"
    );
    let stored = outbox::all_notifications(db).await.unwrap();
    let direct: DirectBody = serde_json::from_str(&stored[0].body).unwrap();
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(direct.sealed)
        .unwrap();
    let opened = Keys::new([1; 32], [3; 32])
        .open(&sealed, &DirectBody::context("r1"))
        .unwrap();
    assert_eq!(opened.expose_secret(), "{\"text\":\"the link\"}");
    let row = rotations::rotation(db, "r1").await.unwrap().unwrap();
    let new_only = Keys::new([1; 32], [3; 32]);
    let value = new_only
        .open(&row.new_token_sealed.unwrap(), "r1/new")
        .unwrap();
    assert_eq!(value.expose_secret(), "the-new-token");
    journal.close().await;
}

pub(super) async fn the_token_inventory_is_replaced_whole_per_environment(backend: Backend) {
    use token_rotator::store::inventory::{self, InventoryRow};
    let journal = backend.open().await;
    let db = journal.pool();
    assert!(inventory::taken(db).await.unwrap().is_empty());
    assert!(inventory::last(db).await.unwrap().is_empty());
    let token = |id: &str, expires: Option<i64>, renewed: Option<&str>| InventoryRow {
        environment: String::new(),
        api_user: "publisher@alphagov.co.uk".into(),
        api_user_name: (id != "3").then(|| "Publisher".into()),
        application: "Publishing API".into(),
        application_uid: (id != "3").then(|| "uid-publishing-api".into()),
        token_id: id.into(),
        created_at_ms: Some(500),
        expires_at_ms: expires,
        expired: id == "1",
        newest: id != "2",
        last8: format!("last8-{id:0>2}"),
        suspended: id == "3",
        retired: id == "3",
        renewed_by: renewed.map(str::to_owned),
        taken_at_ms: 0,
    };
    // More tokens than one INSERT carries.
    let many: Vec<InventoryRow> = (0..2_500)
        .map(|n| token(&n.to_string(), Some(n), Some("Signon (nightly)")))
        .collect();
    inventory::replace(db, "production", ms(1_000), &many)
        .await
        .unwrap();
    let staging = [token("1", None, None), token("2", Some(9), None)];
    inventory::replace(db, "staging", ms(1_100), &staging)
        .await
        .unwrap();
    assert_eq!(inventory::last(db).await.unwrap().len(), 2_502);

    // The next inventory of production replaces all of production's and nothing else.
    let next = [
        token("1", Some(7), Some("Signon (nightly)")),
        token("2", Some(8), None),
        token("3", None, None),
    ];
    inventory::replace(db, "production", ms(2_000), &next)
        .await
        .unwrap();
    let rows = inventory::last(db).await.unwrap();
    let production: Vec<&InventoryRow> = rows
        .iter()
        .filter(|r| r.environment == "production")
        .collect();
    assert_eq!(production.len(), 3, "{rows:#?}");
    for (row, wanted) in production.iter().zip(&next) {
        assert_eq!(
            **row,
            InventoryRow {
                environment: "production".into(),
                taken_at_ms: 2_000,
                ..wanted.clone()
            }
        );
    }
    assert_eq!(
        rows.iter().filter(|r| r.environment == "staging").count(),
        2
    );
    // One user's tokens of one environment, as a plan reads them.
    let of_user = inventory::of_user(db, "production", "publisher@alphagov.co.uk")
        .await
        .unwrap();
    assert_eq!(of_user, production.into_iter().cloned().collect::<Vec<_>>());
    assert!(
        inventory::of_user(db, "production", "someone@else")
            .await
            .unwrap()
            .is_empty()
    );
    // An empty inventory is still one taken.
    inventory::replace(db, "staging", ms(3_000), &[])
        .await
        .unwrap();
    let taken = inventory::taken(db).await.unwrap();
    let summary: Vec<(&str, i64, i64)> = taken
        .iter()
        .map(|t| (t.environment.as_str(), t.taken_at_ms, t.tokens))
        .collect();
    assert_eq!(summary, [("production", 2_000, 3), ("staging", 3_000, 0)]);
    assert_eq!(inventory::last(db).await.unwrap().len(), 3);
    journal.close().await;
}

pub(super) async fn a_sweep_day_is_claimed_once_and_its_revoke_is_refused_beside_a_rotation(
    backend: Backend,
) {
    use token_rotator::store::sweeps;
    let journal = backend.open().await;
    let db = journal.pool();
    let now = ms(1_000);
    assert!(
        sweeps::claim(db, "production", "2026-12-06", now)
            .await
            .unwrap()
    );
    assert!(
        !sweeps::claim(db, "production", "2026-12-06", now)
            .await
            .unwrap(),
        "once"
    );
    assert!(
        !sweeps::claim(db, "production", "2026-12-05", now)
            .await
            .unwrap(),
        "never back"
    );
    assert!(
        sweeps::claim(db, "integration", "2026-12-06", now)
            .await
            .unwrap()
    );
    assert!(
        sweeps::claim(db, "production", "2026-12-07", now)
            .await
            .unwrap()
    );
    sweeps::finished(
        db,
        "production",
        "2026-12-07",
        "revoked 1 token(s)",
        ms(2_000),
    )
    .await
    .unwrap();
    // A finished sweep of a day that is no longer the last one records nothing.
    sweeps::finished(db, "integration", "2026-12-05", "stale", ms(2_000))
        .await
        .unwrap();
    let last =
        |environment: &str, day: &str, outcome: Option<&str>, at: Option<i64>| sweeps::LastSweep {
            environment: environment.into(),
            day: day.into(),
            outcome: outcome.map(str::to_owned),
            finished_at_ms: at,
        };
    assert_eq!(
        sweeps::last(db).await.unwrap(),
        [
            last("integration", "2026-12-06", None, None),
            last(
                "production",
                "2026-12-07",
                Some("revoked 1 token(s)"),
                Some(2_000)
            )
        ]
    );
    // The next day's claim starts it afresh: no outcome until it is done.
    assert!(
        sweeps::claim(db, "production", "2026-12-08", now)
            .await
            .unwrap()
    );
    assert_eq!(
        sweeps::last(db).await.unwrap()[1],
        last("production", "2026-12-08", None, None)
    );
    // A sweep's `retiring` row is refused while the target has a rotation under way, as a
    // unique violation the sweep recognises on both databases.
    rotations::start(db, &new_rotation("r1", "u", "planned"), None, now, &[])
        .await
        .unwrap();
    let sweep = rotations::start(db, &new_rotation("s1", "u", "retiring"), None, now, &[]).await;
    assert!(
        matches!(&sweep, Err(StoreError::Write(sqlx::Error::Database(e))) if e.is_unique_violation()),
        "{sweep:?}"
    );
}
