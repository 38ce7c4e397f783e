//! Slack threads through the Web API, delivered from the journal by a loop of its own.
//!
//! Each thread gets its parent message first, then replies in it (`thread_ts`) telling what
//! happened since the last one, the failures also broadcast to the channel, and the parent edited
//! to show where each target is now. Posts go out at most one per second per channel (Slack's
//! limit for `chat.postMessage`) and edits at Slack's Tier 3 pace for the whole workspace; a 429
//! or a refused bot token rests the workspace ([`pace`], [`trouble`]); a parent a person deleted
//! is posted again ([`gone`]). Anything waiting stays in the journal, so a burst, a 429 or an
//! outage delays messages and never loses one.

mod direct;
mod gone;
mod health;
mod pace;
pub mod render;
mod trouble;

pub use health::SlackHealth;
use pace::Pace;

use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;

use crate::adapters::slack::{SlackApi, SlackError};
use crate::clock::Clock;
use crate::engine::approval;
use crate::leader::Leadership;
use crate::secrets::Keys;
use crate::store::outbox::{self, NoticeKind, NotificationRow};
use crate::store::threads::{self, ThreadRow};
use crate::store::{Journal, StoreError};
use crate::telemetry::Metrics;

/// How often the loop looks at the journal when nothing woke it.
const POLL: Duration = Duration::from_millis(200);

pub struct Notifier {
    journal: Arc<Journal>,
    api: SlackApi,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    /// For messages that belong to no thread, and threads journaled without a channel.
    default_channel: Option<String>,
    pace: Pace,
    health: Arc<SlackHealth>,
    wake: Arc<Notify>,
    /// Posting is a side effect: only while this replica leads.
    leader: Arc<Leadership>,
    /// Refusals of the bot token in a row: each rests the workspace longer. Reset by a success.
    token_refusals: AtomicU32,
    /// Opens the sealed direct messages (handover links); without it they wait.
    keys: Option<Keys>,
}

impl Notifier {
    pub fn new(
        journal: Arc<Journal>,
        api: SlackApi,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        default_channel: Option<String>,
    ) -> Self {
        Self {
            journal,
            api,
            clock,
            metrics,
            default_channel,
            pace: Pace::new(),
            health: Arc::new(SlackHealth::default()),
            wake: Arc::new(Notify::new()),
            leader: Leadership::sole(),
            token_refusals: AtomicU32::new(0),
            keys: None,
        }
    }

    /// Opens sealed direct messages with `keys` (the engine's).
    pub fn with_keys(mut self, keys: Keys) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Posts only while `leader` leads.
    pub fn led_by(mut self, leader: Arc<Leadership>) -> Self {
        self.leader = leader;
        self
    }

    pub fn health(&self) -> Arc<SlackHealth> {
        Arc::clone(&self.health)
    }

    /// Wakes the loop early (after a decision in Slack, say).
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// Delivers until `shutdown` completes.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.deliver().await {
                tracing::error!(error = %e, "Slack delivery pass failed; retrying");
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = self.wake.notified() => {},
                () = tokio::time::sleep(self.pace.sleep(POLL)) => {},
            }
        }
        tracing::info!("Slack notifier stopped");
    }

    /// One pass over everything due; returns the number of Slack calls made.
    pub async fn deliver(&self) -> Result<usize, StoreError> {
        let pool = self.journal.pool();
        let now = self.clock.now();
        let mut calls = 0;
        for n in threads::due_unthreaded(pool, now).await? {
            let Some(channel) = self.default_channel.clone() else {
                tracing::info!(notification = n.id, body = %n.body, "Slack message with no channel configured; logged only");
                outbox::notification_attempted(pool, n.id, now, None, None).await?;
                continue;
            };
            let body: Value = serde_json::from_str(&n.body).unwrap_or_default();
            self.leader.ensure().await?;
            // At the channel's pace like every other post; the rest waits for the next pass.
            if !self.pace.may_post(&channel) {
                break;
            }
            calls += 1;
            match self.post(&channel, &channel, &body, None, false).await {
                Ok(_) => {
                    self.healthy(&channel);
                    outbox::notification_attempted(pool, n.id, now, None, None).await?
                }
                Err(e) => {
                    self.trouble(&channel, &e, &[n.id]).await?;
                    break;
                }
            }
        }
        for thread in threads::with_work(pool, now).await? {
            calls += self.tell(&thread).await?;
        }
        calls += self.tell_directly().await?;
        Ok(calls)
    }

    /// Where a thread's messages go: the id Slack gave when its parent was posted, else the
    /// configured channel (an id, or a `#name` that Slack resolves), else the default.
    fn channel_of(&self, thread: &ThreadRow) -> Option<String> {
        thread
            .channel_id
            .clone()
            .or_else(|| self.configured_channel(thread))
    }

    /// The channel as configured: the key of its pace and of its health, so a channel keeps one
    /// pace whether a call names it `#rotations` or by the id Slack answered with.
    fn configured_channel(&self, thread: &ThreadRow) -> Option<String> {
        Some(thread.channel.clone())
            .filter(|c| !c.is_empty())
            .or_else(|| self.default_channel.clone())
    }

    /// Brings one thread up to date, as far as the channel's limits allow this pass; stops at
    /// the first call the channel must wait for (the rest stays queued). Returns the calls made.
    async fn tell(&self, thread: &ThreadRow) -> Result<usize, StoreError> {
        self.leader.ensure().await?;
        let pool = self.journal.pool();
        let now = self.clock.now();
        let (Some(mut channel), Some(key)) =
            (self.channel_of(thread), self.configured_channel(thread))
        else {
            tracing::warn!(
                thread = thread.id,
                "thread has no Slack channel and there is no default; set [slack] channel"
            );
            return Ok(0);
        };
        let mut calls = 0;
        // What the parent shows in Slack. A reply marks the thread for a fresh look at its
        // parent in the journal (`threads::told`), but leaves the parent as it was: it is edited
        // only if what it would say has changed, so edits, the workspace's scarcer budget, go
        // where they show something.
        let mut digest = thread.parent_digest.clone();
        let mut told = false;
        let ts = match &thread.ts {
            Some(ts) => ts.clone(),
            None => {
                if !self.pace.may_post(&key) {
                    return Ok(0);
                }
                let rows = threads::rotations(pool, thread.id).await?;
                let parent = render::parent(thread, &rows);
                calls += 1;
                match self.post(&key, &channel, &parent, None, false).await {
                    Ok(posted) => {
                        self.healthy(&key);
                        let d = render::digest(&parent);
                        threads::posted(pool, thread.id, &posted.channel, &posted.ts, &d).await?;
                        digest = Some(d);
                        channel = posted.channel;
                        posted.ts
                    }
                    Err(e) => {
                        self.trouble(&key, &e, &[]).await?;
                        return Ok(calls);
                    }
                }
            }
        };

        // What happened since the last reply, with the outcomes and notes, in one reply.
        let events =
            threads::events_after(pool, thread.id, thread.audit_cursor, render::MAX_EVENTS).await?;
        let due = threads::due_messages(pool, thread.id, now).await?;
        let (inline, separate): (Vec<NotificationRow>, Vec<NotificationRow>) = due
            .into_iter()
            .partition(|n| matches!(n.kind(), NoticeKind::Outcome | NoticeKind::Note));
        if !events.is_empty() || !inline.is_empty() {
            if !self.pace.may_post(&key) {
                return Ok(calls);
            }
            let (reply, cursor, carried) = render::reply(&events, &inline);
            calls += 1;
            match self.post(&key, &channel, &reply, Some(&ts), false).await {
                Ok(_) => {
                    self.healthy(&key);
                    threads::told(pool, thread.id, cursor).await?;
                    told = true;
                    for id in carried {
                        outbox::notification_attempted(pool, id, now, None, None).await?;
                    }
                }
                Err(SlackError::Rejected { code, .. }) => {
                    // Even the text was refused: skip these lines rather than block the thread.
                    tracing::error!(thread = thread.id, %code, "Slack refused a thread reply; skipping it");
                    threads::told(pool, thread.id, cursor).await?;
                    told = true;
                    for id in carried {
                        outbox::notification_abandoned(pool, id, &code).await?;
                    }
                }
                Err(SlackError::Gone { code, .. }) => {
                    self.parent_gone(thread, &code).await?;
                    return Ok(calls);
                }
                Err(e) => {
                    self.trouble(&key, &e, &carried).await?;
                    return Ok(calls);
                }
            }
        }

        // Broadcasts, approval requests and their edits: each a message of its own, in order.
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
                self.pace.may_edit(&key)
            } else {
                self.pace.may_post(&key)
            };
            if !allowed {
                return Ok(calls);
            }
            calls += 1;
            let sent = match (n.kind(), approval_ts) {
                (NoticeKind::ApprovalUpdate, Some(approval_ts)) => self
                    .api
                    .update(&channel, &approval_ts, &body)
                    .await
                    .map(|()| None),
                // A request with buttons is shown in the channel too: someone must see it. Never
                // as text alone: a request nobody can click is no request (see below).
                (NoticeKind::Approval, _) => {
                    let posted = self.api.post(&channel, &body, Some(&ts), true).await;
                    self.pace.sent(&key);
                    posted.map(Some)
                }
                (kind, _) => {
                    let broadcast = kind == NoticeKind::Broadcast;
                    self.post(&key, &channel, &body, Some(&ts), broadcast)
                        .await
                        .map(Some)
                }
            };
            match sent {
                Ok(posted) => {
                    self.healthy(&key);
                    if let (NoticeKind::Approval, Some(posted), Some(id)) =
                        (n.kind(), posted, &n.rotation_id)
                    {
                        threads::approval_posted(pool, id, &posted.ts).await?;
                    }
                    outbox::notification_attempted(pool, n.id, now, None, None).await?;
                }
                Err(SlackError::Rejected { code, .. }) => {
                    tracing::error!(notification = n.id, %code, "Slack refused a message; giving up on it");
                    self.metrics.slack_error("message_rejected");
                    outbox::notification_abandoned(pool, n.id, &code).await?;
                    if let (NoticeKind::Approval, Some(id)) = (n.kind(), &n.rotation_id) {
                        // No button can be clicked: a person takes it now, not at the timeout.
                        approval::buttons_refused(pool, id, &code, now).await?;
                    }
                }
                Err(SlackError::Gone { code, .. }) => {
                    match (n.kind(), &n.rotation_id) {
                        // The request a person deleted: its news goes in the thread instead.
                        (NoticeKind::ApprovalUpdate, Some(id)) => {
                            self.approval_gone(id, &code).await?
                        }
                        _ => self.parent_gone(thread, &code).await?,
                    }
                    return Ok(calls);
                }
                Err(e) => {
                    self.trouble(&key, &e, &[n.id]).await?;
                    return Ok(calls);
                }
            }
        }

        // The parent, edited to show where each target is now.
        let rows = threads::rotations(pool, thread.id).await?;
        let parent = render::parent(thread, &rows);
        let d = render::digest(&parent);
        if digest.as_deref() == Some(d.as_str()) {
            if told {
                threads::updated(pool, thread.id, &d).await?;
            }
        } else {
            if !self.pace.may_edit(&key) {
                return Ok(calls);
            }
            calls += 1;
            match self.api.update(&channel, &ts, &parent).await {
                Ok(()) => {
                    self.healthy(&key);
                    threads::updated(pool, thread.id, &d).await?;
                }
                Err(SlackError::Gone { code, .. }) => {
                    self.parent_gone(thread, &code).await?;
                    return Ok(calls);
                }
                Err(e) => {
                    self.trouble(&key, &e, &[]).await?;
                    return Ok(calls);
                }
            }
        }
        Ok(calls)
    }
}
