//! What Slack refuses, kept for `/readyz`.

use std::collections::HashMap;
use std::sync::Mutex;

/// What Slack last refused, for `/readyz` and the logs. Cleared by a success.
#[derive(Default)]
pub struct SlackHealth {
    /// Per channel: the channel or the app's scopes in it.
    pub(super) refused: Mutex<HashMap<String, String>>,
    /// The bot token itself: one entry for the whole workspace.
    pub(super) token: Mutex<Option<String>>,
}

impl SlackHealth {
    /// Problems a person must fix, one line each; empty when Slack takes our messages.
    pub fn problems(&self) -> Vec<String> {
        let refused = self.refused.lock().expect("lock never poisoned");
        let mut problems: Vec<String> = refused
            .iter()
            .map(|(channel, e)| format!("channel {channel}: {e}"))
            .collect();
        problems.sort();
        if let Some(e) = self.token.lock().expect("lock never poisoned").as_ref() {
            problems.insert(0, format!("workspace: {e}"));
        }
        problems
    }

    pub(super) fn any(&self) -> bool {
        !self.refused.lock().expect("lock never poisoned").is_empty()
            || self.token.lock().expect("lock never poisoned").is_some()
    }
}
