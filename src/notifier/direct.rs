//! Direct messages: a handover link goes to its owner alone, never to a channel. The outbox
//! holds it sealed ([`DirectBody`]); it is opened here just before `conversations.open` and
//! `chat.postMessage`, and wiped from the journal once delivered or given up.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::ExposeSecret;
use serde_json::Value;

use super::Notifier;
use crate::adapters::slack::SlackError;
use crate::engine::message;
use crate::store::StoreError;
use crate::store::outbox::{self, DirectBody, Notice, NoticeKind, NotificationRow};

impl Notifier {
    /// Posts the direct messages due; returns the Slack calls made.
    pub(super) async fn tell_directly(&self) -> Result<usize, StoreError> {
        let pool = self.journal.pool();
        let now = self.clock.now();
        let mut calls = 0;
        for n in outbox::due_direct(pool, now).await? {
            let Ok(direct) = serde_json::from_str::<DirectBody>(&n.body) else {
                tracing::error!(
                    notification = n.id,
                    "a direct message that cannot be read; given up"
                );
                outbox::direct_done(pool, n.id, "", now, Some("unreadable")).await?;
                continue;
            };
            let Some(message) = self.open(&n, &direct) else {
                tracing::error!(notification = n.id, to = %direct.to, "no key opens this direct message; given up");
                outbox::direct_done(pool, n.id, &direct.to, now, Some("no key opens it")).await?;
                continue;
            };
            // One pace per person: a DM conversation is a channel of its own to Slack.
            let key = format!("dm:{}", direct.to);
            if !self.pace.may_post(&key) {
                continue;
            }
            self.leader.ensure().await?;
            calls += 2;
            let sent = match self.api.open_direct(&direct.to).await {
                Ok(channel) => self.api.post(&channel, &message, None, false).await,
                Err(e) => Err(e),
            };
            // An undocumented code is tried a few times, then given up as rejected.
            let sent = self.bounded(&key, sent);
            match sent {
                Ok(_) => {
                    self.healthy(&key);
                    tracing::info!(notification = n.id, to = %direct.to, "direct message delivered");
                    outbox::direct_done(pool, n.id, &direct.to, now, None).await?;
                }
                Err(SlackError::Rejected { code, .. }) => {
                    // No such person, or one who left: the link reaches nobody. Say so in the
                    // rotation's thread (without the link), and keep nothing sealed.
                    tracing::error!(notification = n.id, to = %direct.to, %code, "Slack will not deliver a direct message; given up");
                    self.metrics.slack_error("message_rejected");
                    outbox::direct_done(pool, n.id, &direct.to, now, Some(code)).await?;
                    if let Some(rotation) = &n.rotation_id {
                        let text = format!(
                            ":warning: The handover link could not be sent to <@{}>: Slack answered `{code}`. Nobody has it; the rotation goes on when its window ends.",
                            direct.to
                        );
                        let note = Notice::new(NoticeKind::Note, message::note(&text));
                        outbox::enqueue_for(pool, Some(rotation), &note, now).await?;
                    }
                }
                Err(e) => {
                    self.trouble(&key, &e, &[n.id]).await?;
                }
            }
        }
        Ok(calls)
    }

    fn open(&self, n: &NotificationRow, direct: &DirectBody) -> Option<Value> {
        let keys = self.keys.as_ref()?;
        let sealed = STANDARD.decode(&direct.sealed).ok()?;
        let context = DirectBody::context(n.rotation_id.as_deref().unwrap_or_default());
        let opened = keys.open(&sealed, &context).ok()?;
        serde_json::from_str(opened.expose_secret()).ok()
    }
}
