//! What a failed Slack call means for the notifier: who rests and for how long, what stays
//! queued, and what a person is told (logs, `/readyz`, a metric), once per problem.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;

use super::{Notifier, render};
use crate::adapters::slack::{Posted, SlackError};
use crate::store::StoreError;
use crate::store::outbox;

/// How long a channel rests after it refused us, or Slack was unavailable.
const REFUSED_PAUSE: Duration = Duration::from_secs(10);
const UNAVAILABLE_PAUSE: Duration = Duration::from_secs(2);
/// A refused bot token: the whole workspace rests 10 s, then twice as long each time, to this.
const TOKEN_PAUSE: Duration = Duration::from_secs(10);
const TOKEN_PAUSE_MAX: Duration = Duration::from_secs(15 * 60);

impl Notifier {
    /// Posts (the caller took `key`'s slot), and when Slack refuses the blocks, once more as
    /// plain text if `key`'s pace allows another post now; else the message waits, as a 429 does.
    pub(super) async fn post(
        &self,
        key: &str,
        channel: &str,
        body: &Value,
        thread_ts: Option<&str>,
        broadcast: bool,
    ) -> Result<Posted, SlackError> {
        let posted = self.api.post(channel, body, thread_ts, broadcast).await;
        self.pace.sent(key);
        match posted {
            Err(SlackError::Rejected { code, .. }) if body.get("blocks").is_some() => {
                tracing::warn!(%code, "Slack refused the blocks; sending the text alone");
                self.metrics.slack_error("message_rejected");
                if !self.pace.may_post(key) {
                    return Err(SlackError::RateLimited(Duration::ZERO));
                }
                let text = render::text_only(body);
                let posted = self.api.post(channel, &text, thread_ts, broadcast).await;
                self.pace.sent(key);
                posted
            }
            other => other,
        }
    }

    pub(super) fn healthy(&self, channel: &str) {
        let mut refused = self.health.refused.lock().expect("lock never poisoned");
        if refused.remove(channel).is_some() {
            tracing::info!(channel, "Slack takes our messages again");
        }
        drop(refused);
        if self
            .health
            .token
            .lock()
            .expect("lock never poisoned")
            .take()
            .is_some()
        {
            tracing::info!("Slack takes the bot token again");
        }
        self.token_refusals.store(0, Ordering::Relaxed);
        self.metrics.slack_refused(self.health.any());
    }

    /// Handles a failed call: the channel or the workspace rests, the messages stay queued
    /// with the error noted, and refusals a person must fix are logged once, counted and shown
    /// on `/readyz`.
    pub(super) async fn trouble(
        &self,
        channel: &str,
        error: &SlackError,
        notifications: &[i64],
    ) -> Result<(), StoreError> {
        self.metrics.slack_error(error.label());
        if let SlackError::Refused { code, .. } = error
            && code == "not_in_channel"
            && self.api.joins()
        {
            match self.api.join(channel).await {
                Ok(()) => {
                    tracing::info!(channel, "joined the Slack channel; posting there next pass");
                    return Ok(());
                }
                Err(e) => tracing::warn!(channel, error = %e, "cannot join the Slack channel"),
            }
        }
        match error {
            // Zero: our own pace had no slot for the plain-text retry; nothing to say.
            SlackError::RateLimited(wait) if wait.is_zero() => {}
            SlackError::RateLimited(wait) => {
                tracing::warn!(
                    channel,
                    ?wait,
                    "Slack rate limit; the workspace waits as Retry-After says"
                );
                self.pace.pause_workspace(*wait);
            }
            SlackError::TokenRefused { .. } => self.token_refused(error),
            SlackError::Refused { .. } => {
                tracing::error!(channel, %error, "Slack refuses our messages; a person must fix this");
                let mut refused = self.health.refused.lock().expect("lock never poisoned");
                refused.insert(channel.to_owned(), error.to_string());
                self.metrics.slack_refused(true);
                self.pace.pause_channel(channel, REFUSED_PAUSE);
            }
            SlackError::Rejected { .. } | SlackError::Gone { .. } | SlackError::Unavailable(_) => {
                tracing::warn!(channel, %error, "Slack call failed; will retry");
                self.pace.pause_channel(channel, UNAVAILABLE_PAUSE);
            }
        }
        let message = error.to_string();
        for id in notifications {
            outbox::notification_failed(self.journal.pool(), *id, &message).await?;
        }
        Ok(())
    }

    /// The bot token is refused: everything waits, longer each time; one log line and one
    /// `/readyz` entry for the workspace, not one per channel or per try.
    fn token_refused(&self, error: &SlackError) {
        let n = self.token_refusals.fetch_add(1, Ordering::Relaxed);
        let wait = TOKEN_PAUSE
            .saturating_mul(2u32.saturating_pow(n.min(16)))
            .min(TOKEN_PAUSE_MAX);
        let text = error.to_string();
        let mut token = self.health.token.lock().expect("lock never poisoned");
        if token.as_deref() != Some(text.as_str()) {
            tracing::error!(%error, "Slack refuses the bot token; nothing goes to Slack until a person fixes it (retrying less and less often)");
            *token = Some(text);
        }
        drop(token);
        self.metrics.slack_refused(true);
        self.pace.pause_workspace(wait);
    }
}
