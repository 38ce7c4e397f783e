//! The scheduler's part of the journal: each scheduled target's next due time.

use crate::store::{Db, execute, on_pool, on_tx};
use jiff::Timestamp;

use super::StoreError;
use super::rotations::{self, NewRotation};

/// The target's next due time; `first` (journaled) when the target is new.
pub async fn due(
    db: &Db,
    name: &str,
    first: Timestamp,
    now: Timestamp,
) -> Result<Timestamp, StoreError> {
    execute!(
        db,
        sqlx::query(
            "INSERT INTO schedules (name, next_due_at_ms, updated_at_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(first.as_millisecond())
        .bind(now.as_millisecond())
    )?;
    let (due,): (i64,) = on_pool!(db, |pool| sqlx::query_as(
        "SELECT next_due_at_ms FROM schedules WHERE name = $1"
    )
    .bind(name)
    .fetch_one(pool)
    .await)
    .map_err(StoreError::Read)?;
    Ok(Timestamp::from_millisecond(due).unwrap_or(first))
}

/// Starts `new` for the target due at `due` and moves its due time to `next`, together or not
/// at all; `false` when the due time had already moved (another pass got there first).
pub async fn start(
    db: &Db,
    name: &str,
    due: Timestamp,
    next: Timestamp,
    new: &NewRotation,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let mut tx = db.write_tx().await?;
    let moved = on_tx!(&mut tx, |conn| sqlx::query(
        "UPDATE schedules SET next_due_at_ms = $1, last_rotation_id = $2, updated_at_ms = $3 \
         WHERE name = $4 AND next_due_at_ms = $5",
    )
    .bind(next.as_millisecond())
    .bind(&new.id)
    .bind(now.as_millisecond())
    .bind(name)
    .bind(due.as_millisecond())
    .execute(&mut *conn)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::Write)?;
    if moved == 0 {
        return Ok(false);
    }
    rotations::insert_new(&mut tx, db.epoch(), new, None, now, &[]).await?;
    tx.commit().await.map_err(StoreError::Write)?;
    Ok(true)
}

/// Every scheduled target with its next due time (Unix ms), by name.
pub async fn all(db: &Db) -> Result<Vec<(String, i64)>, StoreError> {
    on_pool!(db, |pool| sqlx::query_as(
        "SELECT name, next_due_at_ms FROM schedules ORDER BY name"
    )
    .fetch_all(pool)
    .await)
    .map_err(StoreError::Read)
}
