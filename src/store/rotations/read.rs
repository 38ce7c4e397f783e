//! Reading rotations, their audit trail and the alerts not yet taken in.

use crate::store::{Db, on_pool};
use jiff::Timestamp;

use super::{AuditRow, PendingAlert, ROTATION_COLUMNS, RotationRow};
use crate::store::StoreError;

/// Queries over `ROTATION_COLUMNS`: built from constants of this module, never from input.
fn select(sql: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql.to_owned())
}

pub async fn pending_alerts(db: &Db, limit: i64) -> Result<Vec<PendingAlert>, StoreError> {
    on_pool!(db, |pool| sqlx::query_as(
        "SELECT a.id, a.fingerprint, a.status, a.environment, a.api_user, a.application, a.labels, \
         a.action, a.rule_name, a.action_detail, a.reason, d.receiver, a.mode, a.delivery_id, \
         a.slack_channel FROM alerts a \
         JOIN deliveries d ON d.id = a.delivery_id \
         WHERE a.handled_at_ms IS NULL ORDER BY a.id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await)
    .map_err(StoreError::Read)
}

/// The rotation of a target still under way, if any.
pub async fn active_rotation(
    db: &Db,
    environment: &str,
    api_user: &str,
    application: &str,
) -> Result<Option<RotationRow>, StoreError> {
    latest_for_target(
        db,
        [environment, api_user, application],
        "next_attempt_at_ms IS NOT NULL",
        "created_at_ms",
    )
    .await
}

/// The last rotation of a target that finished with `done`.
pub async fn last_done(
    db: &Db,
    environment: &str,
    api_user: &str,
    application: &str,
) -> Result<Option<RotationRow>, StoreError> {
    latest_for_target(
        db,
        [environment, api_user, application],
        "phase = 'done'",
        "finished_at_ms",
    )
    .await
}

/// `condition` and `order` are constants of this module, never input.
async fn latest_for_target(
    db: &Db,
    [environment, api_user, application]: [&str; 3],
    condition: &'static str,
    order: &'static str,
) -> Result<Option<RotationRow>, StoreError> {
    // By the target's one identity: every spelling of its API user and application.
    on_pool!(db, |pool| sqlx::query_as(select(&format!(
        "SELECT {ROTATION_COLUMNS} FROM rotations WHERE target_key = $1 \
         AND {condition} ORDER BY {order} DESC LIMIT 1"
    )))
    .bind(crate::domain::target_key(
        environment,
        api_user,
        application
    ))
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::Read)
}

pub async fn rotation(db: &Db, id: &str) -> Result<Option<RotationRow>, StoreError> {
    on_pool!(db, |pool| sqlx::query_as(select(&format!(
        "SELECT {ROTATION_COLUMNS} FROM rotations WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::Read)
}

pub async fn all_rotations(db: &Db) -> Result<Vec<RotationRow>, StoreError> {
    on_pool!(db, |pool| sqlx::query_as(select(&format!(
        "SELECT {ROTATION_COLUMNS} FROM rotations ORDER BY created_at_ms, id"
    )))
    .fetch_all(pool)
    .await)
    .map_err(StoreError::Read)
}

pub async fn due_rotations(db: &Db, now: Timestamp) -> Result<Vec<RotationRow>, StoreError> {
    on_pool!(db, |pool| sqlx::query_as(select(&format!(
        "SELECT {ROTATION_COLUMNS} FROM rotations WHERE next_attempt_at_ms <= $1 \
         ORDER BY next_attempt_at_ms, id"
    )))
    .bind(now.as_millisecond())
    .fetch_all(pool)
    .await)
    .map_err(StoreError::Read)
}

/// The rotations under way in `phase`, oldest first.
pub async fn in_phase(db: &Db, phase: &str) -> Result<Vec<RotationRow>, StoreError> {
    on_pool!(db, |pool| sqlx::query_as(select(&format!(
        "SELECT {ROTATION_COLUMNS} FROM rotations WHERE phase = $1 \
         AND next_attempt_at_ms IS NOT NULL ORDER BY created_at_ms, id"
    )))
    .bind(phase)
    .fetch_all(pool)
    .await)
    .map_err(StoreError::Read)
}

/// The earliest moment anything (a rotation step or a Slack message) is due.
pub async fn next_due(db: &Db) -> Result<Option<i64>, StoreError> {
    on_pool!(db, |pool| sqlx::query_scalar(
        "SELECT MIN(t) FROM (SELECT MIN(next_attempt_at_ms) AS t FROM rotations \
         UNION ALL SELECT MIN(next_attempt_at_ms) FROM notifications) AS due",
    )
    .fetch_one(pool)
    .await)
    .map_err(StoreError::Read)
}

pub async fn audit(db: &Db, rotation_id: &str) -> Result<Vec<AuditRow>, StoreError> {
    on_pool!(db, |pool| sqlx::query_as(
        "SELECT rotation_id, at_ms, from_phase, to_phase, reason, trigger FROM audit \
         WHERE rotation_id = $1 ORDER BY id",
    )
    .bind(rotation_id)
    .fetch_all(pool)
    .await)
    .map_err(StoreError::Read)
}

/// The newest journaled alert of every target: `(environment, api_user, application)` →
/// (status, received at). One query, however many targets.
pub async fn last_alerts(
    db: &Db,
) -> Result<std::collections::HashMap<(String, String, String), (String, i64)>, StoreError> {
    let rows: Vec<(String, String, String, String, i64)> = on_pool!(db, |pool| sqlx::query_as(
        "SELECT environment, api_user, application, status, received_at_ms FROM alerts \
         WHERE id IN (SELECT MAX(id) FROM alerts WHERE environment IS NOT NULL \
         AND api_user IS NOT NULL AND application IS NOT NULL \
         GROUP BY environment, api_user, application)",
    )
    .fetch_all(pool)
    .await)
    .map_err(StoreError::Read)?;
    Ok(rows
        .into_iter()
        .map(|(e, u, a, status, at)| ((e, u, a), (status, at)))
        .collect())
}
