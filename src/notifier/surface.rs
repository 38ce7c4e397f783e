//! A message given up because Slack rejected it as written: shown on `/readyz` and the status
//! page, and said once in its thread (a short plain-text reply) when the thread can still be
//! written; a second rejection with the same code in the same thread adds nothing.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use serde_json::json;

use super::Notifier;

/// Notes waiting for the channel's pace, and those already queued once.
#[derive(Default)]
pub(super) struct Notes {
    queued: Mutex<HashMap<i64, Vec<String>>>,
    said: Mutex<HashSet<(i64, String)>>,
}

impl Notifier {
    /// `what` (a reply, a message, the parent's update) was given up in `key`'s channel with
    /// `code`. Surfaced once: `/readyz`, the status page, and the thread if there is one.
    pub(super) fn given_up(&self, key: &str, thread: Option<i64>, what: &str, code: &str) {
        let text = format!("{what} was rejected by Slack ({code}) and given up");
        tracing::error!(channel = key, thread, %code, "{text}");
        self.health.rejected(key, text.clone());
        let Some(thread) = thread else { return };
        if self
            .notes
            .said
            .lock()
            .expect("lock never poisoned")
            .insert((thread, code.to_owned()))
        {
            self.notes
                .queued
                .lock()
                .expect("lock never poisoned")
                .entry(thread)
                .or_default()
                .push(format!(
                    ":warning: {text}. The status page and `token-rotator status` have the full history."
                ));
        }
    }

    /// Posts the thread's notes, as the channel's pace allows; each is tried once.
    pub(super) async fn post_notes(
        &self,
        thread: i64,
        key: &str,
        channel: &str,
        ts: &str,
    ) -> usize {
        let mut calls = 0;
        loop {
            if !self
                .notes
                .queued
                .lock()
                .expect("lock never poisoned")
                .contains_key(&thread)
                || !self.pace.may_post(key)
            {
                return calls;
            }
            let note = {
                let mut queued = self.notes.queued.lock().expect("lock never poisoned");
                let Some(notes) = queued.get_mut(&thread) else {
                    return calls;
                };
                let note = notes.remove(0);
                if notes.is_empty() {
                    queued.remove(&thread);
                }
                note
            };
            calls += 1;
            if let Err(e) = self
                .api
                .post(channel, &json!({ "text": note }), Some(ts), false)
                .await
            {
                tracing::warn!(thread, error = %e, "could not say in the thread that a message was given up");
            }
        }
    }
}
