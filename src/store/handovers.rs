//! Handovers: one-time links to a new token for an owner token-rotator cannot write to.

use crate::store::{Db, execute, on_pool};
use jiff::Timestamp;

use super::StoreError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HandoverRow {
    pub id: String,
    pub rotation_id: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub collected_at_ms: Option<i64>,
    pub confirmed_at_ms: Option<i64>,
}

/// What asking for a handover's token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collect {
    /// Yours, once: the rotation whose token it is.
    Token(String),
    Unknown,
    Expired,
    Collected(i64),
}

const COLUMNS: &str =
    "id, rotation_id, created_at_ms, expires_at_ms, collected_at_ms, confirmed_at_ms";

/// The rotation's handover, made now if it has none (a retried step finds the first one).
pub async fn open(
    db: &Db,
    rotation_id: &str,
    id: &str,
    now: Timestamp,
    expires: Timestamp,
) -> Result<HandoverRow, StoreError> {
    execute!(
        db,
        sqlx::query(
            "INSERT INTO handovers (id, rotation_id, created_at_ms, expires_at_ms) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (rotation_id) DO NOTHING",
        )
        .bind(id)
        .bind(rotation_id)
        .bind(now.as_millisecond())
        .bind(expires.as_millisecond())
    )?;
    of_rotation(db, rotation_id)
        .await?
        .ok_or_else(|| StoreError::Read(sqlx::Error::RowNotFound))
}

pub async fn of_rotation(db: &Db, rotation_id: &str) -> Result<Option<HandoverRow>, StoreError> {
    on_pool!(db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM handovers WHERE rotation_id = $1"
    )))
    .bind(rotation_id)
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::Read)
}

async fn by_id(db: &Db, id: &str) -> Result<Option<HandoverRow>, StoreError> {
    on_pool!(db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM handovers WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::Read)
}

/// Marks the token collected, if it still can be: once, within the window.
pub async fn collect(db: &Db, id: &str, now: Timestamp) -> Result<Collect, StoreError> {
    let now_ms = now.as_millisecond();
    let taken: Option<(String,)> = on_pool!(db, |pool| sqlx::query_as(
        "UPDATE handovers SET collected_at_ms = $1 \
         WHERE id = $2 AND collected_at_ms IS NULL AND expires_at_ms > $1 RETURNING rotation_id",
    )
    .bind(now_ms)
    .bind(id)
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::Write)?;
    if let Some((rotation,)) = taken {
        return Ok(Collect::Token(rotation));
    }
    Ok(match by_id(db, id).await? {
        None => Collect::Unknown,
        Some(h) => match h.collected_at_ms {
            Some(at) => Collect::Collected(at),
            None => Collect::Expired,
        },
    })
}

/// The owner says the token is in place; `false` for an unknown or expired handover.
pub async fn confirm(db: &Db, id: &str, now: Timestamp) -> Result<bool, StoreError> {
    let done = execute!(
        db,
        sqlx::query(
            "UPDATE handovers SET confirmed_at_ms = COALESCE(confirmed_at_ms, $1) \
         WHERE id = $2 AND expires_at_ms > $1",
        )
        .bind(now.as_millisecond())
        .bind(id)
    )?;
    Ok(done == 1)
}
