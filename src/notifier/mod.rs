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
mod landed;
mod messages;
mod pace;
mod parent;
pub mod render;
mod settle;
mod surface;
mod trouble;

pub use health::SlackHealth;
use pace::Pace;

use std::collections::HashSet;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;

use crate::adapters::slack::{SlackApi, SlackError};
use crate::clock::Clock;
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
    /// Replies told since each parent was last seen alive.
    landed: landed::Landed,
    /// Refusals and undocumented codes in a row, per channel.
    streaks: trouble::Streaks,
    /// Given-up messages to say once in their threads.
    notes: surface::Notes,
    /// Threads whose parent Slack rejected as blocks: edited as plain text.
    text_parents: Mutex<HashSet<i64>>,
    /// Parent edits waiting for a moving thread to stand still while edits are contended.
    settling: settle::Settling,
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
            landed: landed::Landed::default(),
            streaks: trouble::Streaks::default(),
            notes: surface::Notes::default(),
            text_parents: Mutex::new(HashSet::new()),
            settling: settle::Settling::default(),
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
            let id = match self.api.channel_id(&channel).await {
                Ok(id) => id,
                Err(e) => {
                    self.trouble(&channel, &e, &[n.id]).await?;
                    break;
                }
            };
            match self.post(&channel, &id, &body, None, false).await {
                Ok(_) => {
                    self.healthy(&channel);
                    outbox::notification_attempted(pool, n.id, now, None, None).await?
                }
                Err(SlackError::Rejected { code, .. }) => {
                    self.given_up(&channel, None, "A message", code);
                    outbox::notification_abandoned(pool, n.id, code).await?;
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
        calls += self.post_notes().await?;
        Ok(calls)
    }

    /// Where a thread's messages go: the id Slack gave when its parent was posted, else the
    /// configured channel (an id, or a name resolved to its id), else the default.
    async fn channel_of(&self, thread: &ThreadRow, key: &str) -> Result<String, SlackError> {
        match &thread.channel_id {
            Some(id) => Ok(id.clone()),
            None => self.api.channel_id(key).await,
        }
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
        let Some(key) = self.configured_channel(thread) else {
            tracing::warn!(
                thread = thread.id,
                "thread has no Slack channel and there is no default; set [slack] channel"
            );
            return Ok(0);
        };
        // A parent to post takes the channel's slot now (`may_post` takes it).
        if thread.ts.is_none() && !self.pace.may_post(&key) {
            return Ok(0);
        }
        let mut channel = match self.channel_of(thread, &key).await {
            Ok(channel) => channel,
            Err(e) => {
                self.trouble(&key, &e, &[]).await?;
                return Ok(0);
            }
        };
        let mut calls = 0;
        let mut digest = thread.parent_digest.clone();
        let ts = match &thread.ts {
            Some(ts) => ts.clone(),
            None => {
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
        let (more, go_on) = self.tell_replies(thread, &key, &channel, &ts).await?;
        calls += more;
        if more > 0 {
            digest = None;
        }
        if !go_on {
            return Ok(calls);
        }
        let (more, go_on) = self.tell_messages(thread, &key, &channel, &ts).await?;
        calls += more;
        if !go_on {
            return Ok(calls);
        }
        calls += self
            .edit_parent(thread, &key, &channel, &ts, digest.as_deref())
            .await?;
        Ok(calls)
    }

    /// What happened since the last reply, with the outcomes and notes, in one reply. Returns
    /// the calls made, and whether the thread may go on this pass.
    async fn tell_replies(
        &self,
        thread: &ThreadRow,
        key: &str,
        channel: &str,
        ts: &str,
    ) -> Result<(usize, bool), StoreError> {
        let pool = self.journal.pool();
        let now = self.clock.now();
        let cursor = self.landed.cursor(thread.id, thread.audit_cursor);
        let events = threads::events_after(pool, thread.id, cursor, render::MAX_EVENTS).await?;
        let inline: Vec<NotificationRow> = threads::due_messages(pool, thread.id, now)
            .await?
            .into_iter()
            .filter(|n| matches!(n.kind(), NoticeKind::Outcome | NoticeKind::Note))
            .filter(|n| !self.landed.sent(thread.id, n.id))
            .collect();
        if events.is_empty() && inline.is_empty() {
            return Ok((0, true));
        }
        if !self.pace.may_post(key) {
            return Ok((0, false));
        }
        let (reply, cursor, carried) = render::reply(&events, &inline);
        match self.post(key, channel, &reply, Some(ts), false).await {
            Ok(_) => {
                self.healthy(key);
                // Told, but landed only once the parent is seen alive after it.
                self.landed
                    .told(thread.id, thread.audit_cursor, cursor, &carried);
                Ok((1, true))
            }
            Err(SlackError::Rejected { code, .. }) => {
                // Even the text was refused: skip these lines rather than block the thread
                // (journaled with the replies before them, once the parent is seen alive).
                self.given_up(
                    key,
                    Some((thread.id, channel, ts)),
                    "A reply in this thread",
                    code,
                );
                self.landed
                    .told(thread.id, thread.audit_cursor, cursor, &[]);
                for id in carried {
                    outbox::notification_abandoned(pool, id, code).await?;
                }
                Ok((1, true))
            }
            Err(SlackError::Gone { code, .. }) => {
                self.parent_gone(thread, code).await?;
                Ok((1, false))
            }
            Err(e) => {
                self.trouble(key, &e, &carried).await?;
                Ok((1, false))
            }
        }
    }
}
