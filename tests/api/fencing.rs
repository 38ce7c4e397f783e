//! Leadership fencing on PostgreSQL while writes run concurrently: a replica's write
//! that checked its epoch either commits before the next replica takes over or is refused, never
//! in between, however many of its steps are in flight.

use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use token_rotator::store::rotations;
use token_rotator::store::{Db, Fence, StoreError};

use crate::store::{ms, new_rotation, start, step};

/// What `leader::take_over` runs: the next epoch.
async fn take_over(url: &str) -> i64 {
    let mut conn = PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar("UPDATE leadership SET epoch = epoch + 1 WHERE id = 1 RETURNING epoch")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

/// `db` fenced at a fresh epoch, as an elected replica's engine writes.
async fn leading(db: &Db, url: &str) -> (Db, i64) {
    let epoch = take_over(url).await;
    let fence = Fence::default();
    fence.set(epoch);
    (db.fenced(fence), epoch)
}

/// The take-over waits for a write transaction that already checked the old epoch: otherwise
/// that write would commit after the new leader began, from a replica no longer leading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_take_over_waits_for_the_write_that_checked_the_old_epoch() {
    let backend = crate::store::postgres().await;
    let journal = backend.open().await;
    let (old, epoch) = leading(journal.pool(), &backend.url).await;
    start(&old, new_rotation("r1", "u", "planned"), 1_000).await;

    let checked = old.write_tx().await.unwrap();
    let url = backend.url.clone();
    let next = tokio::spawn(async move { take_over(&url).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !next.is_finished(),
        "the new epoch began while a write fenced by the old one was still open"
    );
    checked.commit().await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(10), next)
        .await
        .expect("the take-over goes on once the write is done")
        .unwrap();
    assert_eq!(next, epoch + 1);

    let refused = rotations::transition(
        &old,
        "r1",
        &step("planned", "issued", None),
        ms(2_000),
        None,
    )
    .await;
    assert!(
        matches!(refused, Err(StoreError::Fenced { mine, current }) if mine == epoch && current == next),
        "{refused:?}"
    );
    let row = rotations::rotation(journal.pool(), "r1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.phase, "planned");
    journal.close().await;
}

/// 32 steps in flight on the old leader while the next one takes over: each step's write either
/// landed (its row moved, under the old epoch) or was refused as fenced (its row did not move),
/// and every write begun after the take-over is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_in_flight_during_a_take_over_land_whole_or_are_fenced() {
    let backend = crate::store::postgres().await;
    let journal = backend.open().await;
    let (old, epoch) = leading(journal.pool(), &backend.url).await;
    let ids: Vec<String> = (0..32).map(|n| format!("r{n}")).collect();
    for id in &ids {
        start(&old, new_rotation(id, id, "planned"), 1_000).await;
    }

    let mut steps = tokio::task::JoinSet::new();
    for id in ids.clone() {
        let old = old.clone();
        steps.spawn(async move {
            let moved =
                rotations::transition(&old, &id, &step("planned", "issued", None), ms(2_000), None)
                    .await;
            (id, moved)
        });
    }
    let next = take_over(&backend.url).await;
    let mut landed = 0;
    while let Some(joined) = steps.join_next().await {
        let (id, moved) = joined.unwrap();
        let row = rotations::rotation(journal.pool(), &id)
            .await
            .unwrap()
            .unwrap();
        match moved {
            Ok(true) => {
                landed += 1;
                assert_eq!(row.phase, "issued", "{id}");
            }
            Err(StoreError::Fenced { mine, current }) => {
                assert_eq!((mine, current), (epoch, next), "{id}");
                assert_eq!(row.phase, "planned", "a fenced write left nothing: {id}");
            }
            other => panic!("{id}: {other:?}"),
        }
    }
    for id in &ids {
        let late =
            rotations::transition(&old, id, &step("planned", "issued", None), ms(3_000), None)
                .await;
        assert!(
            matches!(late, Err(StoreError::Fenced { .. })),
            "a write begun after the take-over: {late:?}"
        );
    }
    let issued = rotations::all_rotations(journal.pool())
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.phase == "issued")
        .count();
    assert_eq!(issued, landed);
    journal.close().await;
}
