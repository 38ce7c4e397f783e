//! A thread's messages of their own: broadcasts (failures, also shown in the channel),
//! approval requests with buttons, and the edits of those requests, in order.

use serde_json::Value;

use super::Notifier;
use crate::adapters::slack::SlackError;
use crate::engine::approval;
use crate::store::StoreError;
use crate::store::outbox::{self, NoticeKind, NotificationRow};
use crate::store::threads::{self, ThreadRow};

impl Notifier {
    /// Broadcasts, approval requests and their edits: each a message of its own, in order.
    /// Returns the calls made, and whether the thread may go on this pass.
    pub(super) async fn tell_messages(
        &self,
        thread: &ThreadRow,
        key: &str,
        channel: &str,
        ts: &str,
    ) -> Result<(usize, bool), StoreError> {
        let pool = self.journal.pool();
        let now = self.clock.now();
        let separate: Vec<NotificationRow> = threads::due_messages(pool, thread.id, now)
            .await?
            .into_iter()
            .filter(|n| !matches!(n.kind(), NoticeKind::Outcome | NoticeKind::Note))
            .filter(|n| !self.landed.sent(thread.id, n.id))
            .collect();
        let mut calls = 0;
        for n in separate {
            let body: Value = serde_json::from_str(&n.body).unwrap_or_default();
            let approval_ts = match (n.kind(), &n.rotation_id) {
                (NoticeKind::ApprovalUpdate, Some(id)) => {
                    crate::store::rotations::rotation(pool, id)
                        .await?
                        .and_then(|r| r.approval_ts)
                }
                _ => None,
            };
            let allowed = if approval_ts.is_some() {
                self.pace.may_edit(key)
            } else {
                self.pace.may_post(key)
            };
            if !allowed {
                return Ok((calls, false));
            }
            calls += 1;
            let sent = match (n.kind(), approval_ts) {
                (NoticeKind::ApprovalUpdate, Some(approval_ts)) => {
                    let sent = self.api.update(channel, &approval_ts, &body).await;
                    self.bounded(key, sent).map(|()| None)
                }
                // A request with buttons is shown in the channel too: someone must see it. Never
                // as text alone: a request nobody can click is no request (see below).
                (NoticeKind::Approval, _) => {
                    let sent = self.api.post(channel, &body, Some(ts), true).await;
                    self.pace.sent(key);
                    self.bounded(key, sent).map(Some)
                }
                (kind, _) => {
                    let broadcast = kind == NoticeKind::Broadcast;
                    self.post(key, channel, &body, Some(ts), broadcast)
                        .await
                        .map(Some)
                }
            };
            match sent {
                Ok(None) => {
                    // An edit of the request: it is there, so this is delivered.
                    self.healthy(key);
                    outbox::notification_attempted(pool, n.id, now, None, None).await?;
                }
                Ok(Some(posted)) => {
                    self.healthy(key);
                    if let (NoticeKind::Approval, Some(id)) = (n.kind(), &n.rotation_id) {
                        threads::approval_posted(pool, id, &posted.ts).await?;
                    }
                    // In the thread: landed once the parent is seen alive after it.
                    self.landed.told(thread.id, thread.audit_cursor, 0, &[n.id]);
                }
                Err(SlackError::Rejected { code, .. }) => {
                    self.metrics.slack_error("message_rejected");
                    self.given_up(
                        key,
                        Some((thread.id, channel, ts)),
                        "A message for this thread",
                        code,
                    );
                    outbox::notification_abandoned(pool, n.id, code).await?;
                    if let (NoticeKind::Approval, Some(id)) = (n.kind(), &n.rotation_id) {
                        // No button can be clicked: a person takes it now, not at the timeout.
                        approval::buttons_refused(pool, id, code, now).await?;
                    }
                }
                Err(SlackError::Gone { code, .. }) => {
                    match (n.kind(), &n.rotation_id) {
                        // The request a person deleted: its news goes in the thread instead.
                        (NoticeKind::ApprovalUpdate, Some(id)) => {
                            self.approval_gone(id, code).await?
                        }
                        _ => self.parent_gone(thread, code).await?,
                    }
                    return Ok((calls, false));
                }
                Err(e) => {
                    self.trouble(key, &e, &[n.id]).await?;
                    return Ok((calls, false));
                }
            }
        }
        Ok((calls, true))
    }
}
