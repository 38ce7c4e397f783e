//! The engine's part of the journal: rotations, their audit trail and the Slack outbox.
//!
//! Every phase change is one transaction: the rotation row moves only if it is still in the
//! phase the engine read (so two engines can never both act on one step), the audit row is
//! written, and the outcome's Slack message is queued, together or not at all.

use jiff::Timestamp;
use sqlx::{QueryBuilder, Sqlite, SqlitePool};

mod read;

pub use read::*;

use super::outbox::{self, Notice};
use super::{StoreError, threads};

/// One rotation as journaled. Times are Unix milliseconds.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RotationRow {
    pub id: String,
    pub environment: String,
    pub api_user: String,
    pub application: String,
    pub action: String,
    pub rule_name: Option<String>,
    pub action_detail: Option<String>,
    pub phase: String,
    pub trigger: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub next_attempt_at_ms: Option<i64>,
    pub attempts: i64,
    pub deadline_at_ms: Option<i64>,
    pub last_error: Option<String>,
    pub outcome: Option<String>,
    pub api_user_name: Option<String>,
    pub application_uid: Option<String>,
    pub secret_name: Option<String>,
    pub old_token_id: Option<String>,
    pub old_token_expires_at_ms: Option<i64>,
    pub old_token_last8: Option<String>,
    pub old_secret_fingerprint: Option<String>,
    pub old_secret_sealed: Option<Vec<u8>>,
    pub new_token_id: Option<String>,
    pub new_token_expires_at_ms: Option<i64>,
    pub new_token_fingerprint: Option<String>,
    pub new_token_last4: Option<String>,
    pub new_token_sealed: Option<Vec<u8>>,
    pub verified_at_ms: Option<i64>,
    pub grace_until_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub alertname: Option<String>,
    pub silence_id: Option<String>,
    /// `active` or `shadow`, fixed when the rotation was created.
    pub mode: String,
    /// What a shadow rotation would have done (JSON).
    pub plan: Option<String>,
    /// The Slack thread it is told in.
    pub thread_id: Option<i64>,
    /// Slack's id of the Approve/Reject request, once posted.
    pub approval_ts: Option<String>,
    /// Who pressed Approve or Reject (Slack user id and name, or `cli:NAME`).
    pub decided_by: Option<String>,
    /// 1 when the new token is one Signon made by itself (adopted, not minted by us).
    pub adopted: i64,
    /// The consumers' Deployments before the Secret changed (JSON).
    pub rollout_baseline: Option<String>,
    pub distributed_at_ms: Option<i64>,
    /// The tokens listed before the mint (JSON), for an issuer that cannot mint idempotently.
    pub known_tokens: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub rotation_id: String,
    pub at_ms: i64,
    pub from_phase: Option<String>,
    pub to_phase: String,
    pub reason: String,
    pub trigger: String,
}

/// An alert the engine has not taken in yet.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingAlert {
    pub id: i64,
    pub fingerprint: String,
    pub status: String,
    pub environment: Option<String>,
    pub api_user: Option<String>,
    pub application: Option<String>,
    pub labels: String,
    pub action: String,
    pub rule_name: Option<String>,
    pub action_detail: Option<String>,
    pub reason: Option<String>,
    /// Of the delivery that brought it: Alertmanager's receiver name, or reconcile's.
    pub receiver: String,
    /// The deciding rule's own mode, if it sets one.
    pub mode: Option<String>,
    pub delivery_id: i64,
    /// The deciding rule's own Slack channel, if it sets one.
    pub slack_channel: Option<String>,
}

/// A column a transition sets. Names are constants of this crate, never input.
#[derive(Debug, Clone)]
pub enum Field {
    Text(&'static str, Option<String>),
    Int(&'static str, Option<i64>),
    Blob(&'static str, Option<Vec<u8>>),
}

/// A new rotation row with its first audit entry.
#[derive(Debug, Clone)]
pub struct NewRotation {
    pub id: String,
    pub environment: String,
    pub api_user: String,
    pub application: String,
    pub action: String,
    pub rule_name: Option<String>,
    pub action_detail: Option<String>,
    pub phase: &'static str,
    pub trigger: String,
    pub alertname: Option<String>,
    pub mode: &'static str,
    pub next_attempt_at: Option<Timestamp>,
    pub outcome: Option<String>,
    pub reason: String,
    /// The Slack thread it is told in: the one of its delivery and channel.
    pub thread: Option<threads::ThreadKey>,
}

impl NewRotation {
    /// Tells it in the thread of `key`.
    pub fn told_in(mut self, key: threads::ThreadKey) -> Self {
        self.thread = Some(key);
        self
    }
}

/// A phase change. Applied only if the rotation is still in `from`.
#[derive(Debug, Clone)]
pub struct Transition {
    pub from: &'static str,
    pub to: &'static str,
    pub reason: String,
    pub trigger: String,
    pub next_attempt_at: Option<Timestamp>,
    pub fields: Vec<Field>,
    /// Slack messages to queue with this change.
    pub notify: Vec<Notice>,
}

pub(super) const ROTATION_COLUMNS: &str = "id, environment, api_user, application, action, rule_name, \
    action_detail, phase, trigger, created_at_ms, updated_at_ms, next_attempt_at_ms, attempts, \
    deadline_at_ms, last_error, outcome, api_user_name, application_uid, secret_name, old_token_id, \
    old_token_expires_at_ms, old_token_last8, old_secret_fingerprint, old_secret_sealed, \
    new_token_id, new_token_expires_at_ms, new_token_fingerprint, new_token_last4, \
    new_token_sealed, verified_at_ms, grace_until_ms, finished_at_ms, alertname, silence_id, mode, plan, \
    thread_id, approval_ts, decided_by, adopted, rollout_baseline, distributed_at_ms, known_tokens";

/// Raised when a rotation is no longer in the phase a step started from.
pub const MOVED_ON: &str = "rotation is no longer in the phase this step started from";

/// Starts a rotation (or records a decision that needs no rotation) for an alert, or for a
/// command-line request when `alert_id` is `None`.
pub async fn start(
    pool: &SqlitePool,
    new: &NewRotation,
    alert_id: Option<i64>,
    now: Timestamp,
    notify: &[Notice],
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(StoreError::Write)?;
    insert_new(&mut tx, new, alert_id, now, notify).await?;
    tx.commit().await.map_err(StoreError::Write)
}

/// [`start`] inside a transaction of the caller's.
pub(crate) async fn insert_new(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    new: &NewRotation,
    alert_id: Option<i64>,
    now: Timestamp,
    notify: &[Notice],
) -> Result<(), StoreError> {
    let now_ms = now.as_millisecond();
    let finished = new.next_attempt_at.is_none().then_some(now_ms);
    let thread_id = match &new.thread {
        Some(key) => Some(threads::thread_for(tx, key, now_ms).await?),
        None => None,
    };
    sqlx::query(
        "INSERT INTO rotations (id, environment, api_user, application, action, rule_name, \
         action_detail, phase, trigger, created_at_ms, updated_at_ms, next_attempt_at_ms, outcome, \
         finished_at_ms, alertname, mode, thread_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(&new.id)
    .bind(&new.environment)
    .bind(&new.api_user)
    .bind(&new.application)
    .bind(&new.action)
    .bind(&new.rule_name)
    .bind(&new.action_detail)
    .bind(new.phase)
    .bind(&new.trigger)
    .bind(now_ms)
    .bind(new.next_attempt_at.map(|t| t.as_millisecond()))
    .bind(&new.outcome)
    .bind(finished)
    .bind(&new.alertname)
    .bind(new.mode)
    .bind(thread_id)
    .execute(&mut **tx)
    .await
    .map_err(StoreError::Write)?;
    insert_audit(
        tx,
        &new.id,
        now_ms,
        None,
        new.phase,
        &new.reason,
        &new.trigger,
    )
    .await?;
    if let Some(alert_id) = alert_id {
        mark_handled(tx, alert_id, Some(&new.id), now_ms).await?;
    }
    for notice in notify {
        outbox::queue(tx, Some(&new.id), notice, now_ms).await?;
    }
    Ok(())
}

/// Takes an alert in without starting anything; `note` lands in the audit of `rotation_id`.
pub async fn handle_alert(
    pool: &SqlitePool,
    alert_id: i64,
    rotation_id: Option<&str>,
    note: Option<(&str, &str, &str)>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let now_ms = now.as_millisecond();
    let mut tx = pool.begin().await.map_err(StoreError::Write)?;
    mark_handled(&mut tx, alert_id, rotation_id, now_ms).await?;
    if let (Some(id), Some((phase, reason, trigger))) = (rotation_id, note) {
        insert_audit(&mut tx, id, now_ms, Some(phase), phase, reason, trigger).await?;
    }
    tx.commit().await.map_err(StoreError::Write)
}

/// Moves a rotation from `t.from` to `t.to`; `Ok(false)` if it had already moved on.
pub async fn transition(
    pool: &SqlitePool,
    id: &str,
    t: &Transition,
    now: Timestamp,
    alert_id: Option<i64>,
) -> Result<bool, StoreError> {
    let now_ms = now.as_millisecond();
    let mut tx = pool.begin().await.map_err(StoreError::Write)?;
    let mut query = QueryBuilder::<Sqlite>::new("UPDATE rotations SET phase = ");
    query.push_bind(t.to);
    query.push(", updated_at_ms = ").push_bind(now_ms);
    query
        .push(", next_attempt_at_ms = ")
        .push_bind(t.next_attempt_at.map(|n| n.as_millisecond()));
    query.push(", attempts = 0, last_error = NULL");
    if t.next_attempt_at.is_none() {
        query.push(", finished_at_ms = ").push_bind(now_ms);
    }
    push_fields(&mut query, &t.fields);
    query.push(" WHERE id = ").push_bind(id);
    query.push(" AND phase = ").push_bind(t.from);
    let moved = query
        .build()
        .execute(&mut *tx)
        .await
        .map_err(StoreError::Write)?
        .rows_affected();
    if moved == 0 {
        return Ok(false);
    }
    insert_audit(
        &mut tx,
        id,
        now_ms,
        Some(t.from),
        t.to,
        &t.reason,
        &t.trigger,
    )
    .await?;
    if let Some(alert_id) = alert_id {
        mark_handled(&mut tx, alert_id, Some(id), now_ms).await?;
    }
    for notice in &t.notify {
        outbox::queue(&mut tx, Some(id), notice, now_ms).await?;
    }
    tx.commit().await.map_err(StoreError::Write)?;
    Ok(true)
}

/// Writes fields of a rotation that is still in `phase`, without changing phase: what a step
/// learned before its side effect (write-ahead).
pub async fn record(
    pool: &SqlitePool,
    id: &str,
    phase: &str,
    fields: &[Field],
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut query = QueryBuilder::<Sqlite>::new("UPDATE rotations SET updated_at_ms = ");
    query.push_bind(now.as_millisecond());
    push_fields(&mut query, fields);
    query.push(" WHERE id = ").push_bind(id);
    query.push(" AND phase = ").push_bind(phase);
    query
        .build()
        .execute(pool)
        .await
        .map_err(StoreError::Write)?;
    Ok(())
}

fn push_fields(query: &mut QueryBuilder<Sqlite>, fields: &[Field]) {
    for field in fields {
        match field {
            Field::Text(column, value) => {
                query
                    .push(format!(", {column} = "))
                    .push_bind(value.clone());
            }
            Field::Int(column, value) => {
                query.push(format!(", {column} = ")).push_bind(*value);
            }
            Field::Blob(column, value) => {
                query
                    .push(format!(", {column} = "))
                    .push_bind(value.clone());
            }
        }
    }
}

/// Looks again at `at`: something is under way (a Job, a rollout). Not a failure: no attempt is
/// counted and no audit row written (the wait can be long); `last_error` says what is awaited.
pub async fn wait_until(
    pool: &SqlitePool,
    row: &RotationRow,
    awaiting: &str,
    at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE rotations SET last_error = $1, next_attempt_at_ms = $2 WHERE id = $3 AND phase = $4",
    )
    .bind(awaiting)
    .bind(at.as_millisecond())
    .bind(&row.id)
    .bind(&row.phase)
    .execute(pool)
    .await
    .map_err(StoreError::Write)?;
    Ok(())
}

/// Records a failed try of the current phase and when to try again.
pub async fn retry_later(
    pool: &SqlitePool,
    row: &RotationRow,
    error: &str,
    next_attempt_at: Timestamp,
    now: Timestamp,
) -> Result<(), StoreError> {
    let now_ms = now.as_millisecond();
    let attempts = row.attempts + 1;
    let mut tx = pool.begin().await.map_err(StoreError::Write)?;
    sqlx::query(
        "UPDATE rotations SET attempts = $1, last_error = $2, next_attempt_at_ms = $3, \
         updated_at_ms = $4 WHERE id = $5 AND phase = $6",
    )
    .bind(attempts)
    .bind(error)
    .bind(next_attempt_at.as_millisecond())
    .bind(now_ms)
    .bind(&row.id)
    .bind(&row.phase)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::Write)?;
    let reason = format!(
        "attempt {attempts} failed: {error}; retrying at {}",
        Timestamp::from_millisecond(next_attempt_at.as_millisecond())
            .map_or_else(|_| "?".into(), |t| t.to_string())
    );
    insert_audit(
        &mut tx,
        &row.id,
        now_ms,
        Some(&row.phase),
        &row.phase,
        &reason,
        "retry",
    )
    .await?;
    tx.commit().await.map_err(StoreError::Write)
}

async fn insert_audit(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    rotation_id: &str,
    at_ms: i64,
    from: Option<&str>,
    to: &str,
    reason: &str,
    trigger: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit (rotation_id, at_ms, from_phase, to_phase, reason, trigger) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(rotation_id)
    .bind(at_ms)
    .bind(from)
    .bind(to)
    .bind(reason)
    .bind(trigger)
    .execute(&mut **tx)
    .await
    .map_err(StoreError::Write)?;
    Ok(())
}

async fn mark_handled(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    alert_id: i64,
    rotation_id: Option<&str>,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE alerts SET handled_at_ms = $1, rotation_id = $2 WHERE id = $3")
        .bind(now_ms)
        .bind(rotation_id)
        .bind(alert_id)
        .execute(&mut **tx)
        .await
        .map_err(StoreError::Write)?;
    Ok(())
}
