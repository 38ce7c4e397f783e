//! The engine's part of the journal: rotations, their audit trail and the Slack outbox.
//!
//! Every phase change is one transaction: the rotation row moves only if it is still in the
//! phase the engine read (so two engines can never both act on one step), the audit row is
//! written, and the outcome's Slack message is queued, together or not at all.

use std::collections::BTreeMap;

use jiff::Timestamp;
use sqlx::{Database, QueryBuilder};

use crate::store::{Db, WriteTx, on_tx};

mod read;
mod types;

pub use read::*;
pub use types::*;

use super::outbox::{self, Notice};
use super::{StoreError, thread_key};

/// Starts a rotation (or records a decision that needs no rotation) for an alert, or for a
/// command-line request when `alert_id` is `None`.
pub async fn start(
    db: &Db,
    new: &NewRotation,
    alert_id: Option<i64>,
    now: Timestamp,
    notify: &[Notice],
) -> Result<(), StoreError> {
    let mut tx = db.write_tx().await?;
    insert_new(&mut tx, db.epoch(), new, alert_id, now, notify).await?;
    tx.commit().await.map_err(StoreError::Write)
}

/// [`start`] inside a transaction of the caller's.
pub(crate) async fn insert_new(
    tx: &mut WriteTx<'_>,
    epoch: i64,
    new: &NewRotation,
    alert_id: Option<i64>,
    now: Timestamp,
    notify: &[Notice],
) -> Result<(), StoreError> {
    let now_ms = now.as_millisecond();
    let finished = new.next_attempt_at.is_none().then_some(now_ms);
    let thread_id = match &new.thread {
        Some(key) => Some(thread_key::thread_for(tx, key, now_ms).await?),
        None => None,
    };
    on_tx!(tx, |conn| sqlx::query(
        "INSERT INTO rotations (id, environment, api_user, application, action, rule_name, \
         action_detail, phase, trigger, created_at_ms, updated_at_ms, next_attempt_at_ms, outcome, \
         finished_at_ms, alertname, mode, thread_id, epoch, target_key) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
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
    .bind(epoch)
    .bind(crate::domain::target_key(&new.environment, &new.api_user, &new.application))
    .execute(&mut *conn)
    .await
    .map(|r| r.rows_affected()))
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
    db: &Db,
    alert_id: i64,
    rotation_id: Option<&str>,
    note: Option<(&str, &str, &str)>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let now_ms = now.as_millisecond();
    let mut tx = db.write_tx().await?;
    mark_handled(&mut tx, alert_id, rotation_id, now_ms).await?;
    if let (Some(id), Some((phase, reason, trigger))) = (rotation_id, note) {
        insert_audit(&mut tx, id, now_ms, Some(phase), phase, reason, trigger).await?;
    }
    tx.commit().await.map_err(StoreError::Write)
}

/// An alert taken in without starting anything, for [`handle_alerts`].
#[derive(Debug, Clone)]
pub struct Handled {
    pub alert_id: i64,
    pub rotation_id: Option<String>,
    /// `(phase, reason, trigger)`: the audit line it adds to `rotation_id`.
    pub note: Option<(String, String, String)>,
}

/// Alerts [`handle_alerts`] writes in one transaction: enough that a flood of alerts joining
/// rotations under way costs the journal's one writer a commit per batch, not one each; few
/// enough that a webhook waiting for the writer behind one waits milliseconds.
const HANDLED_PER_COMMIT: usize = 64;

/// Many [`handle_alert`]s, [`HANDLED_PER_COMMIT`] to a transaction, each a statement per
/// rotation they join and one for their audit lines. A statement per alert held the journal's
/// write lock for tens of milliseconds under an alert flood (each statement is a trip to sqlx's
/// SQLite thread and back through a busy runtime), and every webhook waited behind it.
pub async fn handle_alerts(db: &Db, alerts: &[Handled], now: Timestamp) -> Result<(), StoreError> {
    let now_ms = now.as_millisecond();
    for chunk in alerts.chunks(HANDLED_PER_COMMIT) {
        let mut by_rotation: BTreeMap<Option<&str>, Vec<i64>> = BTreeMap::new();
        for a in chunk {
            by_rotation
                .entry(a.rotation_id.as_deref())
                .or_default()
                .push(a.alert_id);
        }
        let notes: Vec<(&str, &(String, String, String))> = chunk
            .iter()
            .filter_map(|a| Some((a.rotation_id.as_deref()?, a.note.as_ref()?)))
            .collect();
        let mut tx = db.write_tx().await?;
        for (rotation_id, ids) in &by_rotation {
            on_tx!(&mut tx, |conn, D| {
                let mut query = QueryBuilder::<D>::new("UPDATE alerts SET handled_at_ms = ");
                query.push_bind(now_ms);
                query.push(", rotation_id = ").push_bind(*rotation_id);
                query.push(" WHERE id IN (");
                let mut list = query.separated(", ");
                for id in ids {
                    list.push_bind(*id);
                }
                query.push(")");
                query
                    .build()
                    .execute(&mut *conn)
                    .await
                    .map(|r| r.rows_affected())
            })
            .map_err(StoreError::Write)?;
        }
        if !notes.is_empty() {
            on_tx!(&mut tx, |conn, D| {
                let mut query = QueryBuilder::<D>::new(
                    "INSERT INTO audit (rotation_id, at_ms, from_phase, to_phase, reason, trigger) ",
                );
                query.push_values(&notes, |mut row, (id, (phase, reason, trigger))| {
                    row.push_bind(*id)
                        .push_bind(now_ms)
                        .push_bind(phase.as_str())
                        .push_bind(phase.as_str())
                        .push_bind(reason.as_str())
                        .push_bind(trigger.as_str());
                });
                query
                    .build()
                    .execute(&mut *conn)
                    .await
                    .map(|r| r.rows_affected())
            })
            .map_err(StoreError::Write)?;
        }
        tx.commit().await.map_err(StoreError::Write)?;
    }
    Ok(())
}

/// Moves a rotation from `t.from` to `t.to`; `Ok(false)` if it had already moved on.
pub async fn transition(
    db: &Db,
    id: &str,
    t: &Transition,
    now: Timestamp,
    alert_id: Option<i64>,
) -> Result<bool, StoreError> {
    let now_ms = now.as_millisecond();
    let mut tx = db.write_tx().await?;
    let epoch = db.epoch();
    let moved = on_tx!(&mut tx, |conn, D| {
        let mut query = QueryBuilder::<D>::new("UPDATE rotations SET phase = ");
        query.push_bind(t.to);
        query.push(", updated_at_ms = ").push_bind(now_ms);
        query
            .push(", next_attempt_at_ms = ")
            .push_bind(t.next_attempt_at.map(|n| n.as_millisecond()));
        query.push(", attempts = 0, last_error = NULL");
        if t.next_attempt_at.is_none() {
            query.push(", finished_at_ms = ").push_bind(now_ms);
        }
        query.push(", epoch = ").push_bind(epoch);
        push_fields_where(&mut query, &t.fields, id, t.from);
        query
            .build()
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected())
    })
    .map_err(StoreError::Write)?;
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
    db: &Db,
    id: &str,
    phase: &str,
    fields: &[Field],
    now: Timestamp,
) -> Result<(), StoreError> {
    // Write-ahead of a side effect: fenced like a phase change.
    let mut tx = db.write_tx().await?;
    on_tx!(&mut tx, |conn, D| {
        let mut query = QueryBuilder::<D>::new("UPDATE rotations SET updated_at_ms = ");
        query.push_bind(now.as_millisecond());
        push_fields_where(&mut query, fields, id, phase);
        query
            .build()
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected())
    })
    .map_err(StoreError::Write)?;
    tx.commit().await.map_err(StoreError::Write)
}

/// `, column = value` for each field, then the guard every such update has: this rotation,
/// still in the phase the step read.
fn push_fields_where<D: Database>(
    query: &mut QueryBuilder<D>,
    fields: &[Field],
    id: &str,
    phase: &str,
) where
    for<'t> String: sqlx::Encode<'t, D> + sqlx::Type<D>,
    for<'t> Option<String>: sqlx::Encode<'t, D> + sqlx::Type<D>,
    for<'t> Option<i64>: sqlx::Encode<'t, D> + sqlx::Type<D>,
    for<'t> Option<Vec<u8>>: sqlx::Encode<'t, D> + sqlx::Type<D>,
{
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
    query.push(" WHERE id = ").push_bind(id.to_owned());
    query.push(" AND phase = ").push_bind(phase.to_owned());
}

/// Looks again at `at`: something is under way (a Job, a rollout). Not a failure: no attempt is
/// counted and no audit row written (the wait can be long); `last_error` says what is awaited.
pub async fn wait_until(
    db: &Db,
    row: &RotationRow,
    awaiting: &str,
    at: Timestamp,
) -> Result<(), StoreError> {
    let mut tx = db.write_tx().await?;
    on_tx!(&mut tx, |conn| sqlx::query(
        "UPDATE rotations SET last_error = $1, next_attempt_at_ms = $2 WHERE id = $3 AND phase = $4",
    )
    .bind(awaiting)
    .bind(at.as_millisecond())
    .bind(&row.id)
    .bind(&row.phase)
    .execute(&mut *conn)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::Write)?;
    tx.commit().await.map_err(StoreError::Write)
}

/// Records a failed try of the current phase and when to try again.
pub async fn retry_later(
    db: &Db,
    row: &RotationRow,
    error: &str,
    next_attempt_at: Timestamp,
    now: Timestamp,
) -> Result<(), StoreError> {
    let now_ms = now.as_millisecond();
    let attempts = row.attempts + 1;
    let mut tx = db.write_tx().await?;
    on_tx!(&mut tx, |conn| sqlx::query(
        "UPDATE rotations SET attempts = $1, last_error = $2, next_attempt_at_ms = $3, \
         updated_at_ms = $4 WHERE id = $5 AND phase = $6",
    )
    .bind(attempts)
    .bind(error)
    .bind(next_attempt_at.as_millisecond())
    .bind(now_ms)
    .bind(&row.id)
    .bind(&row.phase)
    .execute(&mut *conn)
    .await
    .map(|r| r.rows_affected()))
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
    tx: &mut WriteTx<'_>,
    rotation_id: &str,
    at_ms: i64,
    from: Option<&str>,
    to: &str,
    reason: &str,
    trigger: &str,
) -> Result<(), StoreError> {
    on_tx!(tx, |conn| sqlx::query(
        "INSERT INTO audit (rotation_id, at_ms, from_phase, to_phase, reason, trigger) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(rotation_id)
    .bind(at_ms)
    .bind(from)
    .bind(to)
    .bind(reason)
    .bind(trigger)
    .execute(&mut *conn)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::Write)?;
    Ok(())
}

async fn mark_handled(
    tx: &mut WriteTx<'_>,
    alert_id: i64,
    rotation_id: Option<&str>,
    now_ms: i64,
) -> Result<(), StoreError> {
    on_tx!(tx, |conn| sqlx::query(
        "UPDATE alerts SET handled_at_ms = $1, rotation_id = $2 WHERE id = $3"
    )
    .bind(now_ms)
    .bind(rotation_id)
    .bind(alert_id)
    .execute(&mut *conn)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::Write)?;
    Ok(())
}
