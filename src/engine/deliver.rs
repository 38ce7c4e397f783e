//! Delivering the Slack outbox. A failure is retried later and never touches a rotation.

use super::{Engine, EngineError, SlackOut};
use crate::store::outbox;

impl Engine {
    /// Posts due Slack messages; a failure is retried later and never touches a rotation.
    pub(super) async fn deliver(&self) -> Result<usize, EngineError> {
        let slack = match &self.adapters.slack {
            SlackOut::Threads => return Ok(0),
            SlackOut::Webhook(slack) => Some(slack),
            SlackOut::Log => None,
        };
        let now = self.clock.now();
        let due = outbox::due_notifications(&self.db, now).await?;
        let Some(slack) = slack else {
            for n in &due {
                tracing::info!(rotation_id = ?n.rotation_id, body = %n.body, "outcome (no Slack configured)");
                outbox::notification_attempted(&self.db, n.id, now, None, None).await?;
            }
            return Ok(due.len());
        };
        for n in &due {
            let body: serde_json::Value = serde_json::from_str(&n.body).unwrap_or_default();
            match slack.post(&body).await {
                Ok(()) => outbox::notification_attempted(&self.db, n.id, now, None, None).await?,
                Err(error) => {
                    // Messages never give up: the outcome matters more than its lateness.
                    let delay = self
                        .settings
                        .retry
                        .delay(
                            1 + (n.attempts as u32)
                                .min(self.settings.retry.max_attempts.saturating_sub(2)),
                        )
                        .unwrap_or(self.settings.retry.max_delay);
                    tracing::warn!(%error, notification = n.id, "Slack message not delivered; will retry");
                    let message = error.to_string();
                    outbox::notification_attempted(
                        &self.db,
                        n.id,
                        now,
                        Some(now + delay),
                        Some(&message),
                    )
                    .await?;
                }
            }
        }
        Ok(due.len())
    }
}
