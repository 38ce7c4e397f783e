//! The Slack outbox: messages are written in the same transaction as the outcome they report and
//! delivered (and retried) later, so a Slack outage never blocks or fails a rotation.

use crate::store::{Db, WriteTx, execute, on_pool, on_tx};
use jiff::Timestamp;

use super::StoreError;

/// What kind of message a notification is, which decides where it goes in Slack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// How a rotation ended (or what was decided): in its thread.
    Outcome,
    /// Failed or rolled back: in its thread and in the channel too.
    Broadcast,
    /// An Approve/Reject request with buttons.
    Approval,
    /// The approval request, edited to say who decided and when.
    ApprovalUpdate,
    /// A remark in the thread (a refused or late click).
    Note,
    /// To one person alone, as a Slack direct message: a handover link. Its body is
    /// [`DirectBody`], the message sealed (it carries a credential); delivered only by the Web
    /// API notifier, and wiped once delivered.
    Direct,
}

/// Where [`NoticeKind::Direct`] rows are excluded (every other reader of the outbox).
pub const NOT_DIRECT: &str = "kind <> 'direct'";

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Outcome => "outcome",
            NoticeKind::Broadcast => "broadcast",
            NoticeKind::Approval => "approval",
            NoticeKind::ApprovalUpdate => "approval_update",
            NoticeKind::Note => "note",
            NoticeKind::Direct => "direct",
        }
    }

    pub fn parse(value: &str) -> Self {
        match value {
            "broadcast" => NoticeKind::Broadcast,
            "approval" => NoticeKind::Approval,
            "approval_update" => NoticeKind::ApprovalUpdate,
            "note" => NoticeKind::Note,
            "direct" => NoticeKind::Direct,
            _ => NoticeKind::Outcome,
        }
    }
}

/// A message to queue with a journal change.
#[derive(Debug, Clone)]
pub struct Notice {
    pub kind: NoticeKind,
    /// `{"text", "blocks"}`.
    pub body: serde_json::Value,
}

impl Notice {
    pub fn new(kind: NoticeKind, body: serde_json::Value) -> Self {
        Self { kind, body }
    }
}

/// The body of a [`NoticeKind::Direct`] notice: who it is for, and the message (`{"text",
/// "blocks"}`) sealed with the journal's key for [`DirectBody::context`]. Only the notifier
/// opens it, just before posting.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DirectBody {
    /// A Slack member id (`U…`/`W…`).
    pub to: String,
    /// Base64 of the sealed message.
    pub sealed: String,
}

impl DirectBody {
    /// What the seal is bound to: a sealed message moved to another rotation does not open.
    pub fn context(rotation_id: &str) -> String {
        format!("{rotation_id}/direct")
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NotificationRow {
    pub id: i64,
    pub rotation_id: Option<String>,
    pub body: String,
    pub attempts: i64,
    pub delivered_at_ms: Option<i64>,
    pub last_error: Option<String>,
    pub kind: String,
    /// `None` once delivered or given up.
    pub next_attempt_at_ms: Option<i64>,
}

impl NotificationRow {
    pub fn kind(&self) -> NoticeKind {
        NoticeKind::parse(&self.kind)
    }
}

const COLUMNS: &str =
    "id, rotation_id, body, attempts, delivered_at_ms, last_error, kind, next_attempt_at_ms";

pub async fn due_notifications(
    db: &Db,
    now: Timestamp,
) -> Result<Vec<NotificationRow>, StoreError> {
    on_pool!(db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notifications WHERE next_attempt_at_ms <= $1 AND {NOT_DIRECT} \
         ORDER BY id"
    )))
    .bind(now.as_millisecond())
    .fetch_all(pool)
    .await)
    .map_err(StoreError::Read)
}

/// Direct messages due; the notifier posts them.
pub async fn due_direct(db: &Db, now: Timestamp) -> Result<Vec<NotificationRow>, StoreError> {
    on_pool!(db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notifications WHERE next_attempt_at_ms <= $1 AND kind = 'direct' \
         ORDER BY id"
    )))
    .bind(now.as_millisecond())
    .fetch_all(pool)
    .await)
    .map_err(StoreError::Read)
}

/// A direct message was delivered (or given up): its sealed body is wiped, keeping who it was
/// for, so the journal holds the link nowhere once it has reached its owner.
pub async fn direct_done(
    db: &Db,
    id: i64,
    to: &str,
    now: Timestamp,
    error: Option<&str>,
) -> Result<(), StoreError> {
    let delivered = error.is_none().then_some(now.as_millisecond());
    let body = serde_json::json!({ "to": to, "wiped": true }).to_string();
    execute!(
        db,
        sqlx::query(
            "UPDATE notifications SET attempts = attempts + 1, delivered_at_ms = $1, \
             next_attempt_at_ms = NULL, last_error = $2, body = $3 WHERE id = $4",
        )
        .bind(delivered)
        .bind(error)
        .bind(body)
        .bind(id)
    )?;
    Ok(())
}

pub async fn all_notifications(db: &Db) -> Result<Vec<NotificationRow>, StoreError> {
    on_pool!(db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notifications ORDER BY id"
    )))
    .fetch_all(pool)
    .await)
    .map_err(StoreError::Read)
}

/// Records a delivery (`next` = `None`) or a failed attempt and when to try again.
pub async fn notification_attempted(
    db: &Db,
    id: i64,
    now: Timestamp,
    next: Option<Timestamp>,
    error: Option<&str>,
) -> Result<(), StoreError> {
    let delivered = error.is_none().then_some(now.as_millisecond());
    execute!(
        db,
        sqlx::query(
            "UPDATE notifications SET attempts = attempts + 1, delivered_at_ms = $1, \
         next_attempt_at_ms = $2, last_error = $3 WHERE id = $4",
        )
        .bind(delivered)
        .bind(next.map(|t| t.as_millisecond()))
        .bind(error)
        .bind(id)
    )?;
    Ok(())
}

pub(super) async fn queue(
    tx: &mut WriteTx<'_>,
    rotation_id: Option<&str>,
    notice: &Notice,
    now_ms: i64,
) -> Result<(), StoreError> {
    on_tx!(tx, |conn| sqlx::query(
        "INSERT INTO notifications (rotation_id, created_at_ms, body, next_attempt_at_ms, kind) \
         VALUES ($1, $2, $3, $2, $4)",
    )
    .bind(rotation_id)
    .bind(now_ms)
    .bind(notice.body.to_string())
    .bind(notice.kind.as_str())
    .execute(&mut *conn)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::Write)?;
    Ok(())
}

/// Queues a message that belongs to no single rotation (a batch of shadow plans).
pub async fn enqueue(db: &Db, body: &serde_json::Value, now: Timestamp) -> Result<(), StoreError> {
    enqueue_for(
        db,
        None,
        &Notice::new(NoticeKind::Outcome, body.clone()),
        now,
    )
    .await
}

/// Queues a message on its own (not with a phase change): a remark about a rotation.
pub async fn enqueue_for(
    db: &Db,
    rotation_id: Option<&str>,
    notice: &Notice,
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut tx = db.write_tx().await?;
    queue(&mut tx, rotation_id, notice, now.as_millisecond()).await?;
    tx.commit().await.map_err(StoreError::Write)
}

/// Gives up on a message Slack refuses to take in any form; it stays in the journal with why.
pub async fn notification_abandoned(db: &Db, id: i64, error: &str) -> Result<(), StoreError> {
    execute!(
        db,
        sqlx::query(
            "UPDATE notifications SET attempts = attempts + 1, next_attempt_at_ms = NULL, \
         last_error = $1 WHERE id = $2",
        )
        .bind(error)
        .bind(id)
    )?;
    Ok(())
}

/// Notes a failed attempt; the message stays due (the notifier decides when to try again).
pub async fn notification_failed(db: &Db, id: i64, error: &str) -> Result<(), StoreError> {
    execute!(
        db,
        sqlx::query(
            "UPDATE notifications SET attempts = attempts + 1, last_error = $1 WHERE id = $2"
        )
        .bind(error)
        .bind(id)
    )?;
    Ok(())
}
