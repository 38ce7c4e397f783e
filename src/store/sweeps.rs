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
         ON CONFLICT (environment) DO UPDATE SET day = $2, swept_at_ms = $3, outcome = NULL, \
         finished_at_ms = NULL WHERE sweeps.day < $2",
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

/// Records what the sweep of `day` did, in one sentence, once it is done.
pub async fn finished(
    db: &Db,
    environment: &str,
    day: &str,
    outcome: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut tx = db.write_tx().await?;
    on_tx!(&mut tx, |conn| sqlx::query(
        "UPDATE sweeps SET outcome = $3, finished_at_ms = $4 WHERE environment = $1 AND day = $2"
    )
    .bind(environment)
    .bind(day)
    .bind(outcome)
    .bind(now.as_millisecond())
    .execute(&mut *conn)
    .await
    .map(drop))
    .map_err(StoreError::Write)?;
    tx.commit().await.map_err(StoreError::Write)
}

/// One environment's last sweep.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LastSweep {
    pub environment: String,
    /// The local day claimed last (YYYY-MM-DD).
    pub day: String,
    /// What it did; `None`: that day was the environment's first sight (nothing swept), or its
    /// sweep is under way.
    pub outcome: Option<String>,
    pub finished_at_ms: Option<i64>,
}

/// The last day swept, by environment.
pub async fn last(db: &Db) -> Result<Vec<LastSweep>, StoreError> {
    on_pool!(db, |pool| sqlx::query_as(
        "SELECT environment, day, outcome, finished_at_ms FROM sweeps ORDER BY environment"
    )
    .fetch_all(pool)
    .await)
    .map_err(StoreError::Read)
}
