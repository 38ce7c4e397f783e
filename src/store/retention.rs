//! Retention: the journal does not grow without bound. Finished rotations older than
//! `retention` are **exported, then pruned**: each goes to the log as one JSON line (target
//! `token_rotator::retention`, with its whole audit trail and no secret: a finished row holds
//! none) before it and its audit rows, notifications and handover are deleted in one
//! transaction. Handled alerts, Slack threads, deliveries and Slack clicks older than that,
//! that nothing kept refers to, go too.
//!
//! Kept whatever their age: every target's newest `done` rotation (cooldown and a scheduled
//! target's old token read it) and each schedule's last rotation. Nothing else is kept for a
//! target's sake, so alerts naming made-up targets cannot pile up rows forever.

use serde_json::json;

use super::rotations::{self, RotationRow};
use super::{Db, StoreError, on_pool, on_tx};

/// Rotations pruned per transaction; a pass prunes until none is left.
const BATCH: i64 = 200;

/// What one pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub rotations: u64,
    pub alerts: u64,
    pub threads: u64,
    pub deliveries: u64,
}

/// Exports and prunes everything finished before `cutoff_ms`.
pub async fn prune(db: &Db, cutoff_ms: i64) -> Result<Pruned, StoreError> {
    let mut pruned = Pruned::default();
    loop {
        let doomed = doomed(db, cutoff_ms).await?;
        if doomed.is_empty() {
            break;
        }
        for row in &doomed {
            export(db, row).await?;
        }
        pruned.rotations += delete_rotations(db, &doomed).await?;
    }
    let (alerts, threads, deliveries) = delete_intake(db, cutoff_ms).await?;
    pruned.alerts = alerts;
    pruned.threads = threads;
    pruned.deliveries = deliveries;
    Ok(pruned)
}

async fn doomed(db: &Db, cutoff_ms: i64) -> Result<Vec<RotationRow>, StoreError> {
    let query = format!(
        "SELECT {} FROM rotations r \
         WHERE r.next_attempt_at_ms IS NULL AND r.finished_at_ms < $1 \
         AND r.id NOT IN (SELECT last_rotation_id FROM schedules WHERE last_rotation_id IS NOT NULL) \
         AND NOT (r.phase = 'done' AND NOT EXISTS (SELECT 1 FROM rotations d \
                     WHERE d.target_key = r.target_key AND d.phase = 'done' \
                     AND d.finished_at_ms > r.finished_at_ms)) \
         ORDER BY r.finished_at_ms LIMIT $2",
        rotations::ROTATION_COLUMNS
    );
    on_pool!(db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(
        query.clone()
    ))
    .bind(cutoff_ms)
    .bind(BATCH)
    .fetch_all(pool)
    .await)
    .map_err(StoreError::Read)
}

/// The rotation and its audit trail, as one log line, before they are deleted.
async fn export(db: &Db, row: &RotationRow) -> Result<(), StoreError> {
    let audit: Vec<_> = rotations::audit(db, &row.id)
        .await?
        .into_iter()
        .map(|a| {
            json!({"at_ms": a.at_ms, "from": a.from_phase, "to": a.to_phase,
                   "reason": a.reason, "trigger": a.trigger})
        })
        .collect();
    let record = json!({
        "id": row.id, "environment": row.environment, "api_user": row.api_user,
        "application": row.application, "action": row.action, "rule": row.rule_name,
        "mode": row.mode, "phase": row.phase, "outcome": row.outcome,
        "created_at_ms": row.created_at_ms, "finished_at_ms": row.finished_at_ms,
        "old_token_id": row.old_token_id, "new_token_id": row.new_token_id,
        "new_token_fingerprint": row.new_token_fingerprint, "audit": audit,
    });
    tracing::info!(target: "token_rotator::retention", rotation_id = %row.id, export = %record, "rotation exported before pruning");
    Ok(())
}

async fn delete_rotations(db: &Db, doomed: &[RotationRow]) -> Result<u64, StoreError> {
    let mut tx = db.write_tx().await?;
    let mut deleted = 0;
    for row in doomed {
        for statement in [
            "DELETE FROM audit WHERE rotation_id = $1",
            "DELETE FROM notifications WHERE rotation_id = $1",
            "DELETE FROM handovers WHERE rotation_id = $1",
            "UPDATE alerts SET rotation_id = NULL WHERE rotation_id = $1",
        ] {
            on_tx!(&mut tx, |conn| sqlx::query(statement)
                .bind(&row.id)
                .execute(&mut *conn)
                .await
                .map(|r| r.rows_affected()))
            .map_err(StoreError::Write)?;
        }
        let done = on_tx!(&mut tx, |conn| sqlx::query(
            "DELETE FROM rotations WHERE id = $1 AND next_attempt_at_ms IS NULL"
        )
        .bind(&row.id)
        .execute(&mut *conn)
        .await
        .map(|r| r.rows_affected()))
        .map_err(StoreError::Write)?;
        deleted += done;
    }
    tx.commit().await.map_err(StoreError::Write)?;
    Ok(deleted)
}

/// Handled alerts no kept rotation refers to, Slack threads no rotation or pending message
/// uses, deliveries left with neither, and Slack clicks.
async fn delete_intake(db: &Db, cutoff_ms: i64) -> Result<(u64, u64, u64), StoreError> {
    let mut tx = db.write_tx().await?;
    let mut counts = [0u64; 3];
    for (i, statement) in [
        "DELETE FROM alerts WHERE handled_at_ms IS NOT NULL AND received_at_ms < $1 \
         AND rotation_id IS NULL",
        "DELETE FROM slack_threads WHERE created_at_ms < $1 \
         AND NOT EXISTS (SELECT 1 FROM rotations r WHERE r.thread_id = slack_threads.id)",
        "DELETE FROM deliveries WHERE received_at_ms < $1 \
         AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.delivery_id = deliveries.id) \
         AND NOT EXISTS (SELECT 1 FROM slack_threads t WHERE t.delivery_id = deliveries.id)",
    ]
    .into_iter()
    .enumerate()
    {
        counts[i] = on_tx!(&mut tx, |conn| sqlx::query(statement)
            .bind(cutoff_ms)
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected()))
        .map_err(StoreError::Write)?;
    }
    // Clicks go with their age alone: each is a whole record of itself (no secret in any).
    on_tx!(&mut tx, |conn| sqlx::query(
        "DELETE FROM slack_clicks WHERE at_ms < $1"
    )
    .bind(cutoff_ms)
    .execute(&mut *conn)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::Write)?;
    tx.commit().await.map_err(StoreError::Write)?;
    Ok((counts[0], counts[1], counts[2]))
}
