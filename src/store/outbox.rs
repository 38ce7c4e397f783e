//! The Slack outbox: messages are written in the same transaction as the outcome they report and
//! delivered (and retried) later, so a Slack outage never blocks or fails a rotation.

use jiff::Timestamp;
use sqlx::{Sqlite, SqlitePool};

use super::StoreError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NotificationRow {
    pub id: i64,
    pub rotation_id: Option<String>,
    pub body: String,
    pub attempts: i64,
    pub delivered_at_ms: Option<i64>,
    pub last_error: Option<String>,
}

pub async fn due_notifications(
    pool: &SqlitePool,
    now: Timestamp,
) -> Result<Vec<NotificationRow>, StoreError> {
    sqlx::query_as(
        "SELECT id, rotation_id, body, attempts, delivered_at_ms, last_error FROM notifications \
         WHERE next_attempt_at_ms <= $1 ORDER BY id",
    )
    .bind(now.as_millisecond())
    .fetch_all(pool)
    .await
    .map_err(StoreError::Read)
}

pub async fn all_notifications(pool: &SqlitePool) -> Result<Vec<NotificationRow>, StoreError> {
    sqlx::query_as(
        "SELECT id, rotation_id, body, attempts, delivered_at_ms, last_error FROM notifications ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .map_err(StoreError::Read)
}

/// Records a delivery (`next` = `None`) or a failed attempt and when to try again.
pub async fn notification_attempted(
    pool: &SqlitePool,
    id: i64,
    now: Timestamp,
    next: Option<Timestamp>,
    error: Option<&str>,
) -> Result<(), StoreError> {
    let delivered = error.is_none().then_some(now.as_millisecond());
    sqlx::query(
        "UPDATE notifications SET attempts = attempts + 1, delivered_at_ms = $1, \
         next_attempt_at_ms = $2, last_error = $3 WHERE id = $4",
    )
    .bind(delivered)
    .bind(next.map(|t| t.as_millisecond()))
    .bind(error)
    .bind(id)
    .execute(pool)
    .await
    .map_err(StoreError::Write)?;
    Ok(())
}

pub(super) async fn queue(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    rotation_id: Option<&str>,
    body: &serde_json::Value,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO notifications (rotation_id, created_at_ms, body, next_attempt_at_ms) \
         VALUES ($1, $2, $3, $2)",
    )
    .bind(rotation_id)
    .bind(now_ms)
    .bind(body.to_string())
    .execute(&mut **tx)
    .await
    .map_err(StoreError::Write)?;
    Ok(())
}

/// Queues a message that belongs to no single rotation (a batch of shadow plans).
pub async fn enqueue(
    pool: &SqlitePool,
    body: &serde_json::Value,
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(StoreError::Write)?;
    queue(&mut tx, None, body, now.as_millisecond()).await?;
    tx.commit().await.map_err(StoreError::Write)
}
