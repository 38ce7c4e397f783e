//! The `silence` decision: one Alertmanager silence per target, created or extended.

use super::row::{ENGINE, permit};
use super::{Engine, Phase, Step};
use crate::adapters::AdapterError;
use crate::adapters::alertmanager::Matcher;
use crate::store::rotations::{Field, RotationRow};

impl Engine {
    /// silencing → silenced: one silence per target, matching exactly alertname, environment,
    /// api_user and application; an existing one is extended (same id), never duplicated.
    pub(super) async fn silence(&self, row: &RotationRow) -> Step {
        let Some(alertmanager) = &self.adapters.alertmanager else {
            return Step::Error(AdapterError::permanent(
                "config",
                "no Alertmanager is configured to silence in",
            ));
        };
        let matchers = attempt!(silence_matchers(row));
        let duration = row
            .action_detail
            .as_deref()
            .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
            .and_then(|d| {
                d["duration"]
                    .as_str()
                    .and_then(|t| humantime::parse_duration(t).ok())
            })
            .unwrap_or(std::time::Duration::from_secs(7 * 86400));
        let existing = attempt!(alertmanager.find_silence(&matchers).await);
        let now = self.clock.now();
        let chosen = super::asked::silence_until_expiry(row);
        let ends_at = if chosen {
            attempt!(self.expiry_of_pair(row).await)
        } else {
            now + duration
        };
        let comment = if chosen {
            format!(
                "token-rotator: {} chose to let this token expire (rotation {}; `token-rotator status`)",
                row.decided_by.as_deref().unwrap_or("a person"),
                row.id
            )
        } else {
            format!(
                "token-rotator: rule {:?} says alerts for this token in {} are noise (rotation {}; `token-rotator status`)",
                row.rule_name.as_deref().unwrap_or("?"),
                row.environment,
                row.id
            )
        };
        let id = attempt!(
            alertmanager
                .put_silence(
                    &attempt!(permit(row)),
                    existing.as_ref(),
                    &matchers,
                    ends_at,
                    &comment,
                    now
                )
                .await
        );
        let verb = if existing.is_some() {
            "extended"
        } else {
            "created"
        };
        let why = format!(
            "silence {id} {verb} in Alertmanager until {}",
            ends_at.strftime("%Y-%m-%d %H:%M UTC")
        );
        let mut transition = self.transition(row, Phase::Silencing, Phase::Silenced, why, ENGINE);
        transition.fields.push(Field::Text("silence_id", Some(id)));
        Step::Advance(transition)
    }
}

/// Exactly the target's four labels: never a matcher that could hide other alerts. A silence
/// comes only from an alert, which always has its `alertname` (Prometheus sets it).
pub(super) fn silence_matchers(row: &RotationRow) -> Result<[Matcher; 4], AdapterError> {
    let alertname = row.alertname.as_deref().ok_or_else(|| {
        AdapterError::permanent(
            "journal",
            "no alertname recorded: only an alert's own labels can be silenced",
        )
    })?;
    Ok([
        Matcher::equal("alertname", alertname),
        Matcher::equal("environment", &row.environment),
        Matcher::equal("api_user", &row.api_user),
        Matcher::equal("application", &row.application),
    ])
}
