//! The nightly sweep's part of the journal: the last day each environment was swept.

use jiff::Timestamp;

use super::{Db, StoreError, on_pool, on_tx};

/// Claims `day` (YYYY-MM-DD, the sweep's local date) for `environment`: `true` when no sweep
/// of that day or a later one was claimed before. Claimed before the sweep acts (and fenced by
/// the leader's epoch), so a restart mid-sweep or a second replica does not sweep it again;
/// what a sweep journaled is carried on by its rotations either way.
pub async fn claim(
    db: &Db,
    environment: &str,
    day: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    write_day(
        db,
        "INSERT INTO sweeps (environment, day, swept_at_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (environment) DO UPDATE SET day = $2, swept_at_ms = $3 \
         WHERE sweeps.day < $2",
        environment,
        day,
        now,
    )
    .await
}

/// Runs one `sweeps` write of `(environment, day, swept_at_ms)`; `true` when it wrote a row.
async fn write_day(
    db: &Db,
    sql: &'static str,
    environment: &str,
    day: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let mut tx = db.write_tx().await?;
    let written = on_tx!(&mut tx, |conn| sqlx::query(sql)
        .bind(environment)
        .bind(day)
        .bind(now.as_millisecond())
        .execute(&mut *conn)
        .await
        .map(|r| r.rows_affected()))
    .map_err(StoreError::Write)?;
    tx.commit().await.map_err(StoreError::Write)?;
    Ok(written == 1)
}

/// Records `day` as `environment`'s last sweep if it has none: `true` the first time, when
/// nothing is swept (the first sweep is the next one due, not one made up at once on the day
/// the service, or the sweep, is switched on).
pub async fn first_sight(
    db: &Db,
    environment: &str,
    day: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    write_day(
        db,
        "INSERT INTO sweeps (environment, day, swept_at_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (environment) DO NOTHING",
        environment,
        day,
        now,
    )
    .await
}

/// The last day swept, by environment.
pub async fn last(db: &Db) -> Result<Vec<(String, String)>, StoreError> {
    on_pool!(db, |pool| sqlx::query_as(
        "SELECT environment, day FROM sweeps ORDER BY environment"
    )
    .fetch_all(pool)
    .await)
    .map_err(StoreError::Read)
}
