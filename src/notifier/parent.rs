//! The parent, edited to show where each target is now. An `ok` to the edit also confirms the
//! replies told since the last one landed under a live parent ([`super::landed`]). While the
//! workspace's edits are contended, a thread still moving waits to settle ([`super::settle`]).
//!
//! When Slack rejects the edit as written (`msg_blocks_too_long`, `invalid_blocks`…), the parent
//! is edited as its plain-text summary from then on; if that is rejected too, the edit is given
//! up for this content (surfaced once) instead of being tried again every pass.

use super::{Notifier, render};
use crate::adapters::slack::SlackError;
use crate::phase::Phase;
use crate::store::threads::{self, ThreadRow};
use crate::store::{StoreError, outbox};

impl Notifier {
    /// Edits the parent if it changed since `digest` or replies await confirmation. Returns
    /// the calls made.
    pub(super) async fn edit_parent(
        &self,
        thread: &ThreadRow,
        key: &str,
        channel: &str,
        ts: &str,
        digest: Option<&str>,
    ) -> Result<usize, StoreError> {
        let pool = self.journal.pool();
        let rows = threads::rotations(pool, thread.id).await?;
        let blocks = render::parent(thread, &rows);
        let d = render::digest(&blocks);
        if digest == Some(d.as_str()) && !self.landed.any(thread.id) {
            return Ok(0);
        }
        if self.pace.edits_busy() {
            let ended = rows
                .iter()
                .all(|r| Phase::parse(&r.phase).is_some_and(Phase::is_terminal));
            if let Err(at) = self.settling.ready(thread.id, &d, ended) {
                self.pace.free_at(at);
                return Ok(0);
            }
        }
        let as_text = self
            .text_parents
            .lock()
            .expect("lock never poisoned")
            .contains(&thread.id);
        let parent = if as_text {
            render::text_only(&blocks)
        } else {
            blocks
        };
        if !self.pace.may_edit(key) {
            return Ok(0);
        }
        let sent = self.api.update(channel, ts, &parent).await;
        match self.bounded(key, sent) {
            Ok(()) => {
                self.healthy(key);
                self.settling.shown(thread.id);
                self.landed_confirmed(thread.id).await?;
                threads::updated(pool, thread.id, &d).await?;
            }
            Err(SlackError::Gone { code, .. }) => self.parent_gone(thread, code).await?,
            Err(SlackError::Rejected { code, .. }) if !as_text => {
                tracing::warn!(
                    thread = thread.id,
                    code,
                    "Slack rejected the parent's blocks; it is edited as text from now on"
                );
                self.metrics.slack_error("message_rejected");
                self.text_parents
                    .lock()
                    .expect("lock never poisoned")
                    .insert(thread.id);
                // Not marked updated: the next pass (or this one's next edit slot) sends the text.
            }
            Err(SlackError::Rejected { code, .. }) => {
                self.metrics.slack_error("message_rejected");
                self.given_up(
                    key,
                    Some((thread.id, channel, ts)),
                    "An update of this thread's first message",
                    code,
                );
                // Nothing to confirm the replies with: taken as landed rather than told twice.
                self.landed_confirmed(thread.id).await?;
                threads::updated(pool, thread.id, &d).await?;
            }
            Err(e) => self.trouble(key, &e, &[]).await?,
        }
        Ok(1)
    }

    /// The parent was seen alive: what was told before is journaled as told.
    async fn landed_confirmed(&self, thread: i64) -> Result<(), StoreError> {
        let Some(told) = self.landed.take(thread) else {
            return Ok(());
        };
        let pool = self.journal.pool();
        let now = self.clock.now();
        threads::told(pool, thread, told.cursor).await?;
        for id in told.notifications {
            outbox::notification_attempted(pool, id, now, None, None).await?;
        }
        Ok(())
    }
}
