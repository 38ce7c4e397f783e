//! A message a person deleted (or Slack will no longer let us edit): the thread's parent is
//! posted again and the thread goes on under it; a deleted approval request's news goes in the
//! thread. Each is one journal write, so nothing is retried against a message that is gone.

use super::Notifier;
use crate::store::StoreError;
use crate::store::threads::{self, ThreadRow};

impl Notifier {
    /// The parent is gone: the next pass posts it afresh and tells, under it, everything not
    /// known to have landed under a live parent (the journal's cursor did not move past the
    /// replies awaiting confirmation, [`super::landed`]; they are dropped here).
    pub(super) async fn parent_gone(
        &self,
        thread: &ThreadRow,
        code: &str,
    ) -> Result<(), StoreError> {
        tracing::warn!(
            thread = thread.id,
            code,
            "the thread's parent message is gone from Slack; posting it again"
        );
        self.metrics.slack_error("message_gone");
        if let Some(lost) = self.landed.take(thread.id) {
            tracing::info!(
                thread = thread.id,
                from = thread.audit_cursor,
                notifications = lost.notifications.len(),
                "replies posted since the parent was last seen are told again under the new one"
            );
        }
        self.text_parents
            .lock()
            .expect("lock never poisoned")
            .remove(&thread.id);
        threads::parent_gone(self.journal.pool(), thread.id).await
    }

    /// The approval request is gone: its update is posted in the thread instead of edited.
    pub(super) async fn approval_gone(
        &self,
        rotation_id: &str,
        code: &str,
    ) -> Result<(), StoreError> {
        tracing::warn!(
            rotation_id,
            code,
            "an approval request is gone from Slack; its outcome goes in the thread"
        );
        self.metrics.slack_error("message_gone");
        threads::approval_gone(self.journal.pool(), rotation_id).await
    }
}
