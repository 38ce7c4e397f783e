//! What Slack refuses, kept for `/readyz`.

use std::collections::HashMap;
use std::sync::Mutex;

/// What Slack last refused, per channel, for `/readyz` and the logs. Cleared by a success.
#[derive(Default)]
pub struct SlackHealth {
    pub(super) refused: Mutex<HashMap<String, String>>,
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
        problems
    }
}
