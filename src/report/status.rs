//! `token-rotator status`: every rotation in the journal, its phase, and what happens next.

use std::fmt::Write;

use serde_json::json;

use crate::engine::Phase;
use crate::store::rotations::{self, RotationRow};
use crate::store::{Journal, StoreError};

/// A rotation and the newest alert of its target (`firing` or `resolved`, and when).
pub struct StatusRow {
    pub rotation: RotationRow,
    pub last_alert: Option<(String, i64)>,
}

pub async fn load(journal: &Journal) -> Result<Vec<StatusRow>, StoreError> {
    let pool = journal.pool();
    let last_alerts = rotations::last_alerts(pool).await?;
    let rows = rotations::all_rotations(pool).await?;
    Ok(rows
        .into_iter()
        .map(|rotation| {
            let key = (
                rotation.environment.clone(),
                rotation.api_user.clone(),
                rotation.application.clone(),
            );
            // Several rotations of one target share its newest alert.
            let last_alert = last_alerts.get(&key).cloned();
            StatusRow {
                rotation,
                last_alert,
            }
        })
        .collect())
}

pub use crate::clock::when;

pub fn next_action(row: &RotationRow) -> &'static str {
    Phase::parse(&row.phase).map_or("-", Phase::next_action)
}

pub fn table(rows: &[StatusRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12} {:<38} {:<22} {:<10} {:<12} {:<19} next action · last error",
        "environment", "api_user", "application", "decision", "phase", "next / ended",
    );
    for StatusRow {
        rotation: row,
        last_alert,
    } in rows
    {
        let at = row.next_attempt_at_ms.or(row.finished_at_ms);
        let mut detail = next_action(row).to_owned();
        if let Some((status, at)) = last_alert {
            let _ = write!(detail, " · alert {status} at {}", when(Some(*at)));
        }
        if let Some(error) = &row.last_error {
            let _ = write!(detail, " · {error}");
        }
        let _ = writeln!(
            out,
            "{:<12} {:<38} {:<22} {:<10} {:<12} {:<19} {detail}",
            row.environment,
            row.api_user,
            row.application,
            row.action,
            row.phase,
            when(at)
        );
    }
    out
}

/// Scheduled targets and when each is next due.
pub async fn schedules(journal: &Journal) -> Result<Vec<(String, i64)>, StoreError> {
    crate::store::schedules::all(journal.pool()).await
}

pub fn schedule_table(schedules: &[(String, i64)]) -> String {
    let mut out = String::new();
    if !schedules.is_empty() {
        let _ = writeln!(out, "\n{:<38} next due", "scheduled target");
        for (name, due) in schedules {
            let _ = writeln!(out, "{name:<38} {}", when(Some(*due)));
        }
    }
    out
}

pub fn json(rows: &[StatusRow]) -> serde_json::Value {
    let items: Vec<_> = rows
        .iter()
        .map(|StatusRow { rotation: row, last_alert }| {
            json!({
                "last_alert": last_alert.as_ref().map(|(status, at)| json!({"status": status, "received_at_ms": at})),
                "id": row.id,
                "environment": row.environment,
                "api_user": row.api_user,
                "application": row.application,
                "action": row.action,
                "rule": row.rule_name,
                "phase": row.phase,
                "mode": row.mode,
                "plan": row.plan.as_deref().and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok()),
                "trigger": row.trigger,
                "next_action": next_action(row),
                "next_attempt_at_ms": row.next_attempt_at_ms,
                "attempts": row.attempts,
                "last_error": row.last_error,
                "created_at_ms": row.created_at_ms,
                "finished_at_ms": row.finished_at_ms,
                "outcome": row.outcome,
                "secret": row.secret_name,
                "new_token": row.new_token_fingerprint.as_ref().map(|f| json!({
                    "id": row.new_token_id,
                    "fingerprint": f,
                    "last4": row.new_token_last4,
                    "expires_at_ms": row.new_token_expires_at_ms,
                })),
                "old_token": row.old_token_id.as_ref().map(|id| json!({
                    "id": id,
                    "last8": row.old_token_last8,
                    "expires_at_ms": row.old_token_expires_at_ms,
                })),
            })
        })
        .collect();
    serde_json::Value::Array(items)
}
