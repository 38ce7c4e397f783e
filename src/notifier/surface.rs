//! A message given up because Slack rejected it as written: shown on `/readyz` and the status
//! page, and said once in its thread (a short plain-text reply) when the thread can still be
//! written; a second rejection with the same code in the same thread adds nothing.

use std::collections::HashSet;
use std::sync::Mutex;

use serde_json::json;

use super::Notifier;
use crate::adapters::slack::SlackError;
use crate::store::StoreError;

/// Notes waiting for the channel's pace, and those already queued once.
#[derive(Default)]
pub(super) struct Notes {
    queued: Mutex<Vec<Note>>,
    said: Mutex<HashSet<(i64, String)>>,
}

/// A note for a thread: where it goes and what it says.
struct Note {
    key: String,
    channel: String,
    ts: String,
    text: String,
}

impl Notifier {
    /// `what` (a reply, a message, the parent's update) was given up in `key`'s channel with
    /// `code`. Surfaced once: `/readyz`, the status page, and the thread (id, channel id,
    /// parent `ts`) if there is one.
    pub(super) fn given_up(
        &self,
        key: &str,
        thread: Option<(i64, &str, &str)>,
        what: &str,
        code: &str,
    ) {
        let text = format!("{what} was rejected by Slack ({code}) and given up");
        tracing::error!(channel = key, %code, "{text}");
        self.health.rejected(key, text.clone());
        let Some((thread, channel, ts)) = thread else {
            return;
        };
        if self
            .notes
            .said
            .lock()
            .expect("lock never poisoned")
            .insert((thread, code.to_owned()))
        {
            self.notes.queued.lock().expect("lock never poisoned").push(Note {
                key: key.to_owned(),
                channel: channel.to_owned(),
                ts: ts.to_owned(),
                text: format!(
                    ":warning: {text}. The status page and `token-rotator status` have the full history."
                ),
            });
        }
    }

    /// Posts the queued notes, as their channels' pace allows. A note Slack rejects is dropped
    /// (said once, not every retry); one that failed otherwise waits for a later pass.
    pub(super) async fn post_notes(&self) -> Result<usize, StoreError> {
        let queued = std::mem::take(&mut *self.notes.queued.lock().expect("lock never poisoned"));
        let mut calls = 0;
        let mut later = Vec::new();
        for note in queued {
            if !self.pace.may_post(&note.key) {
                later.push(note);
                continue;
            }
            calls += 1;
            let body = json!({ "text": note.text });
            match self
                .post(&note.key, &note.channel, &body, Some(&note.ts), false)
                .await
            {
                Ok(_) => self.healthy(&note.key),
                Err(e @ (SlackError::Rejected { .. } | SlackError::Gone { .. })) => {
                    tracing::warn!(error = %e, "could not say in the thread that a message was given up");
                }
                Err(e) => {
                    self.trouble(&note.key, &e, &[]).await?;
                    later.push(note);
                }
            }
        }
        self.notes
            .queued
            .lock()
            .expect("lock never poisoned")
            .extend(later);
        Ok(calls)
    }
}
