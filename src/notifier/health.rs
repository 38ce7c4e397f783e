//! What Slack refuses, kept for `/readyz` and the status page.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a message Slack rejected stays listed: it is not undone by later successes.
const REJECTED_SHOWN: Duration = Duration::from_secs(3600);

/// What Slack last refused, for `/readyz`, the status page and the logs.
#[derive(Default)]
pub struct SlackHealth {
    /// Per channel: the channel or the app's scopes in it. Cleared by a success there.
    pub(super) refused: Mutex<HashMap<String, String>>,
    /// The bot token or the app in the workspace: one entry for the whole workspace.
    pub(super) token: Mutex<Option<String>>,
    /// Per channel: the last message Slack rejected as written (given up on), and when.
    pub(super) rejected: Mutex<HashMap<String, (Instant, String)>>,
}

impl SlackHealth {
    /// Problems a person must look at, one line each; empty when Slack takes our messages.
    pub fn problems(&self) -> Vec<String> {
        let refused = self.refused.lock().expect("lock never poisoned");
        let mut problems: Vec<String> = refused
            .iter()
            .map(|(channel, e)| format!("channel {channel}: {e}"))
            .collect();
        drop(refused);
        let rejected = self.rejected.lock().expect("lock never poisoned");
        problems.extend(
            rejected
                .iter()
                .filter(|(_, (at, _))| at.elapsed() < REJECTED_SHOWN)
                .map(|(channel, (_, e))| format!("channel {channel}: a message was given up: {e}")),
        );
        drop(rejected);
        problems.sort();
        if let Some(e) = self.token.lock().expect("lock never poisoned").as_ref() {
            problems.insert(0, format!("workspace: {e}"));
        }
        problems
    }

    /// A message Slack rejected in `channel` was given up; the newest one per channel is shown.
    pub(super) fn rejected(&self, channel: &str, error: String) {
        self.rejected
            .lock()
            .expect("lock never poisoned")
            .insert(channel.to_owned(), (Instant::now(), error));
    }

    pub(super) fn any(&self) -> bool {
        !self.refused.lock().expect("lock never poisoned").is_empty()
            || self.token.lock().expect("lock never poisoned").is_some()
    }
}
