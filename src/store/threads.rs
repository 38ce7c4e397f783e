//! Slack threads: one parent message per (delivery, channel) that started work. The thread's
//! history is the audit trail of its rotations; `audit_cursor` marks how much of it has been
//! told, so a restart neither repeats nor skips a line, and `ts` keeps the thread after one.

use crate::store::{Db, execute, on_pool};
use jiff::Timestamp;

use super::StoreError;
use super::outbox::{NOT_DIRECT, NotificationRow};
use super::rotations::{AuditRow, ROTATION_COLUMNS, RotationRow};

pub use super::thread_key::ThreadKey;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ThreadRow {
    pub id: i64,
    pub delivery_id: Option<i64>,
    pub channel: String,
    /// The id Slack answered with when the parent was posted (`chat.update` needs an id).
    pub channel_id: Option<String>,
    pub created_at_ms: i64,
    pub ts: Option<String>,
    pub audit_cursor: i64,
    pub parent_digest: Option<String>,
}

/// An audit row with its id, for the cursor.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ThreadEvent {
    pub id: i64,
    #[sqlx(flatten)]
    pub audit: AuditRow,
    pub api_user: String,
    pub application: String,
    pub environment: String,
}

/// A notification's columns, as `n` in a join (the order of `NotificationRow`).
const NOTIFICATION_COLUMNS: &str = "n.id, n.rotation_id, n.body, n.attempts, n.delivered_at_ms, \
     n.last_error, n.kind, n.next_attempt_at_ms";

const THREAD_COLUMNS: &str =
    "id, delivery_id, channel, channel_id, created_at_ms, ts, audit_cursor, parent_digest";

fn sql(text: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(text)
}

/// Threads with something to tell: a parent not yet posted or to be looked at again, audit rows
/// past the cursor, or a message due (for one of its rotations) at `now`.
pub async fn with_work(db: &Db, now: Timestamp) -> Result<Vec<ThreadRow>, StoreError> {
    on_pool!(db, |pool| sqlx::query_as(sql(format!(
        "SELECT {THREAD_COLUMNS} FROM slack_threads t WHERE t.ts IS NULL OR t.parent_digest IS NULL \
         OR EXISTS (SELECT 1 FROM audit a JOIN rotations r ON r.id = a.rotation_id \
                    WHERE r.thread_id = t.id AND a.id > t.audit_cursor) \
         OR EXISTS (SELECT 1 FROM notifications n JOIN rotations r ON r.id = n.rotation_id \
                    WHERE r.thread_id = t.id AND n.next_attempt_at_ms <= $1 AND n.{NOT_DIRECT}) \
         ORDER BY t.id"
    )))
    .bind(now.as_millisecond())
    .fetch_all(pool).await)
    .map_err(StoreError::Read)
}

pub async fn all(db: &Db) -> Result<Vec<ThreadRow>, StoreError> {
    on_pool!(db, |pool| sqlx::query_as(sql(format!(
        "SELECT {THREAD_COLUMNS} FROM slack_threads ORDER BY id"
    )))
    .fetch_all(pool)
    .await)
    .map_err(StoreError::Read)
}

/// The rotations told in a thread, oldest first.
pub async fn rotations(db: &Db, thread_id: i64) -> Result<Vec<RotationRow>, StoreError> {
    on_pool!(db, |pool| sqlx::query_as(sql(format!(
        "SELECT {ROTATION_COLUMNS} FROM rotations WHERE thread_id = $1 ORDER BY created_at_ms, id"
    )))
    .bind(thread_id)
    .fetch_all(pool)
    .await)
    .map_err(StoreError::Read)
}

/// The thread's first `limit` audit rows after `cursor`, oldest first: what one reply can tell
/// (a thread whose rotation was joined by a flood of alerts has hundreds of thousands).
pub async fn events_after(
    db: &Db,
    thread_id: i64,
    cursor: i64,
    limit: usize,
) -> Result<Vec<ThreadEvent>, StoreError> {
    on_pool!(db, |pool| sqlx::query_as(
        "SELECT a.id, a.rotation_id, a.at_ms, a.from_phase, a.to_phase, a.reason, a.trigger, \
         r.api_user, r.application, r.environment \
         FROM audit a JOIN rotations r ON r.id = a.rotation_id \
         WHERE r.thread_id = $1 AND a.id > $2 ORDER BY a.id LIMIT $3",
    )
    .bind(thread_id)
    .bind(cursor)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await)
    .map_err(StoreError::Read)
}

/// Messages due now for the thread's rotations, oldest first.
pub async fn due_messages(
    db: &Db,
    thread_id: i64,
    now: Timestamp,
) -> Result<Vec<NotificationRow>, StoreError> {
    on_pool!(db, |pool| sqlx::query_as(sql(format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications n JOIN rotations r ON r.id = n.rotation_id \
         WHERE r.thread_id = $1 AND n.next_attempt_at_ms <= $2 AND n.{NOT_DIRECT} ORDER BY n.id"
    )))
    .bind(thread_id)
    .bind(now.as_millisecond())
    .fetch_all(pool).await)
    .map_err(StoreError::Read)
}

/// Due messages that belong to no thread (shadow batches, rotations from before threads).
pub async fn due_unthreaded(db: &Db, now: Timestamp) -> Result<Vec<NotificationRow>, StoreError> {
    on_pool!(db, |pool| sqlx::query_as(sql(format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications n LEFT JOIN rotations r ON r.id = n.rotation_id \
         WHERE r.thread_id IS NULL AND n.next_attempt_at_ms <= $1 AND n.{NOT_DIRECT} ORDER BY n.id"
    )))
    .bind(now.as_millisecond())
    .fetch_all(pool).await)
    .map_err(StoreError::Read)
}

/// The parent was posted: where (Slack's channel id), its `ts`, and what it said.
pub async fn posted(
    db: &Db,
    id: i64,
    channel_id: &str,
    ts: &str,
    digest: &str,
) -> Result<(), StoreError> {
    execute!(
        db,
        sqlx::query(
            "UPDATE slack_threads SET channel_id = $1, ts = $2, parent_digest = $3 WHERE id = $4",
        )
        .bind(channel_id)
        .bind(ts)
        .bind(digest)
        .bind(id)
    )?;
    Ok(())
}

/// The parent was edited to say `digest`.
pub async fn updated(db: &Db, id: i64, digest: &str) -> Result<(), StoreError> {
    execute!(
        db,
        sqlx::query("UPDATE slack_threads SET parent_digest = $1 WHERE id = $2")
            .bind(digest)
            .bind(id)
    )?;
    Ok(())
}

/// Audit rows up to `cursor` have been told in the thread. The parent is marked for a fresh
/// look (its digest cleared), so it is edited even if this pass cannot do it.
pub async fn told(db: &Db, id: i64, cursor: i64) -> Result<(), StoreError> {
    execute!(
        db,
        sqlx::query(
            "UPDATE slack_threads SET parent_digest = NULL, \
         audit_cursor = CASE WHEN audit_cursor > $1 THEN audit_cursor ELSE $1 END \
         WHERE id = $2",
        )
        .bind(cursor)
        .bind(id)
    )?;
    Ok(())
}

/// The approval request of `rotation_id` was posted as `ts`.
pub async fn approval_posted(db: &Db, rotation_id: &str, ts: &str) -> Result<(), StoreError> {
    execute!(
        db,
        sqlx::query("UPDATE rotations SET approval_ts = $1 WHERE id = $2")
            .bind(ts)
            .bind(rotation_id)
    )?;
    Ok(())
}

/// The parent is gone from Slack (a person deleted it): posted again on the next pass, and the
/// thread goes on under the new one.
pub async fn parent_gone(db: &Db, id: i64) -> Result<(), StoreError> {
    execute!(
        db,
        sqlx::query("UPDATE slack_threads SET ts = NULL, parent_digest = NULL WHERE id = $1")
            .bind(id)
    )?;
    Ok(())
}

/// The approval request of `rotation_id` is gone from Slack: its update is posted, not edited.
pub async fn approval_gone(db: &Db, rotation_id: &str) -> Result<(), StoreError> {
    execute!(
        db,
        sqlx::query("UPDATE rotations SET approval_ts = NULL WHERE id = $1").bind(rotation_id)
    )?;
    Ok(())
}
