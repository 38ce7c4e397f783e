//! What a failed Slack call means for the notifier: who rests and for how long, what stays
//! queued, and what a person is told (logs, `/readyz`, a metric), once per problem.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;

use super::{Notifier, render};
use crate::adapters::slack::{Posted, SlackError};
use crate::store::StoreError;
use crate::store::outbox;

/// A channel that refuses us rests 10 s, then twice as long each time, to this: a person must
/// act, and asking every few seconds until then only fills the logs and Slack's budgets.
const REFUSED_PAUSE: Duration = Duration::from_secs(10);
const REFUSED_PAUSE_MAX: Duration = Duration::from_secs(5 * 60);
const UNAVAILABLE_PAUSE: Duration = Duration::from_secs(2);
/// A refused bot token: the whole workspace rests 10 s, then twice as long each time, to this.
const TOKEN_PAUSE: Duration = Duration::from_secs(10);
const TOKEN_PAUSE_MAX: Duration = Duration::from_secs(15 * 60);
/// A code the method does not document is tried this many times in a row (2 s apart) before
/// the message is given up as rejected: held for a blip, never retried for ever.
pub(super) const UNKNOWN_TRIES: u32 = 5;

/// Failures in a row, per channel: refusals (for the back-off) and undocumented codes (for
/// the bound). Reset by a success there.
#[derive(Default)]
pub(super) struct Streaks {
    refused: Mutex<HashMap<String, u32>>,
    unknown: Mutex<HashMap<String, u32>>,
}

impl Streaks {
    fn bump(map: &Mutex<HashMap<String, u32>>, channel: &str) -> u32 {
        let mut map = map.lock().expect("lock never poisoned");
        let n = map.entry(channel.to_owned()).or_default();
        *n += 1;
        *n
    }

    fn unknown(&self, channel: &str) -> u32 {
        self.unknown
            .lock()
            .expect("lock never poisoned")
            .get(channel)
            .copied()
            .unwrap_or(0)
    }

    fn reset(&self, channel: &str) {
        self.refused
            .lock()
            .expect("lock never poisoned")
            .remove(channel);
        self.unknown
            .lock()
            .expect("lock never poisoned")
            .remove(channel);
    }
}

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
        let sent = match posted {
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
        };
        self.bounded(key, sent)
    }

    /// A code the method does not document, answered [`UNKNOWN_TRIES`] times in a row in
    /// `key`: from then on the message is taken as rejected, so it is given up and surfaced.
    pub(super) fn bounded<T>(
        &self,
        key: &str,
        sent: Result<T, SlackError>,
    ) -> Result<T, SlackError> {
        match sent {
            Err(SlackError::Unknown { method, code })
                if self.streaks.unknown(key) + 1 >= UNKNOWN_TRIES =>
            {
                self.streaks
                    .unknown
                    .lock()
                    .expect("lock never poisoned")
                    .remove(key);
                tracing::error!(channel = key, method, %code, "Slack keeps answering a code it does not document; giving the message up");
                Err(SlackError::Rejected {
                    method,
                    code: "unknown_code",
                })
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
        self.streaks.reset(channel);
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
    /// on `/readyz` and the status page.
    pub(super) async fn trouble(
        &self,
        channel: &str,
        error: &SlackError,
        notifications: &[i64],
    ) -> Result<(), StoreError> {
        self.metrics.slack_error(error.label());
        if let SlackError::Refused { code, .. } = error
            && *code == "not_in_channel"
            && self.api.joins()
        {
            match self.api.join(channel).await {
                Ok(()) => {
                    tracing::info!(channel, "joined the Slack channel; posting there next pass");
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(channel, error = %e, "cannot join the Slack channel");
                    let text = format!("{error}; joining it failed: {e}");
                    self.refused(channel, text);
                    return self.note_failed(error, notifications).await;
                }
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
            SlackError::WorkspaceRefused { .. } => self.token_refused(error),
            // Refused as written where nothing else can be done with it (the parent itself):
            // a person must look, like a channel that refuses.
            SlackError::Refused { .. }
            | SlackError::NoSuchChannel(_)
            | SlackError::Rejected { .. } => self.refused(channel, error.to_string()),
            SlackError::Unknown { .. } => {
                let n = Streaks::bump(&self.streaks.unknown, channel);
                tracing::warn!(channel, %error, tries = n, "Slack answered a code it does not document; will retry a few times");
                self.pace.pause_channel(channel, UNAVAILABLE_PAUSE);
            }
            SlackError::Gone { .. } | SlackError::Unavailable(_) => {
                tracing::warn!(channel, %error, "Slack call failed; will retry");
                self.pace.pause_channel(channel, UNAVAILABLE_PAUSE);
            }
        }
        self.note_failed(error, notifications).await
    }

    async fn note_failed(
        &self,
        error: &SlackError,
        notifications: &[i64],
    ) -> Result<(), StoreError> {
        let message = error.to_string();
        for id in notifications {
            outbox::notification_failed(self.journal.pool(), *id, &message).await?;
        }
        Ok(())
    }

    /// The channel refuses: logged and shown once per distinct reason, and the channel rests
    /// longer each time until a success.
    fn refused(&self, channel: &str, text: String) {
        let n = Streaks::bump(&self.streaks.refused, channel);
        let wait = REFUSED_PAUSE
            .saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(16)))
            .min(REFUSED_PAUSE_MAX);
        let mut refused = self.health.refused.lock().expect("lock never poisoned");
        if refused.get(channel) != Some(&text) {
            tracing::error!(channel, error = %text, "Slack refuses our messages; a person must fix this (retrying less and less often)");
            refused.insert(channel.to_owned(), text);
        }
        drop(refused);
        self.metrics.slack_refused(true);
        self.pace.pause_channel(channel, wait);
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
