//! Telling the person who clicked what came of it. Slack shows nothing of a `block_actions`
//! acknowledgement's body ("the user won't see anything when your app only sends an
//! acknowledgment response"; slackapi/bolt-js#132), so every click is answered afterwards, to
//! the clicker alone: through the payload's `response_url` (ephemeral, the message they clicked
//! left as it is), or, when that URL is missing, outside Slack's origin, used up or expired,
//! with `chat.postEphemeral` in the conversation the button was in.
//!
//! Each click and its answer are journaled before Slack hears the acknowledgement, and how the
//! answer reached the clicker once it did. A journal that cannot take the decision cannot take
//! the click either: that answer is logged instead.

use std::sync::Arc;

use super::AppState;
use super::slack::{Click, Interactions};
use crate::adapters::slack::SlackApi;
use crate::engine::message;
use crate::store::clicks::{self, NewClick};
use crate::store::{Db, Journal};

/// Journals the click with `text` (unless the journal is what failed), then sends `text` to
/// the clicker without holding up the acknowledgement.
pub(super) async fn answer_click(
    state: &AppState,
    slack: &Interactions,
    click: &Click,
    outcome: &'static str,
    text: String,
) {
    let id = if outcome == "journal_unavailable" {
        None
    } else {
        let new = NewClick {
            rotation_id: &click.rotation_id,
            user_id: &click.user_id,
            user_name: &click.user_name,
            action: &click.action,
            outcome,
            answer: &text,
        };
        match clicks::record(state.journal.pool(), &new, slack.clock.now()).await {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::error!(error = %e, rotation_id = ?click.rotation_id, user = ?click.user_id, outcome, "Slack click could not be journaled");
                None
            }
        }
    };
    let journal = Arc::clone(&state.journal);
    let api = slack.api.clone();
    let (response_url, channel, user) = (
        click.response_url.clone(),
        click.channel.clone(),
        click.user_id.clone(),
    );
    tokio::spawn(async move {
        let body = message::note(&text);
        let by = deliver(
            api.as_ref(),
            response_url.as_deref(),
            channel.as_deref(),
            &user,
            &body,
        )
        .await;
        if by.starts_with("undelivered") {
            tracing::warn!(%user, outcome, how = %by, "the answer to a Slack click did not reach its clicker");
        }
        if let Some(id) = id {
            note_delivery(&journal, id, &by).await;
        }
    });
}

async fn note_delivery(journal: &Journal, id: i64, by: &str) {
    let db: &Db = journal.pool();
    if let Err(e) = clicks::answered(db, id, by).await {
        tracing::warn!(error = %e, click = id, "cannot journal how a Slack click was answered");
    }
}

/// Sends `body` to `user` alone; how it went, as journaled (`response_url`,
/// `chat.postEphemeral`, or `undelivered: …` with Slack's error label).
async fn deliver(
    api: Option<&SlackApi>,
    response_url: Option<&str>,
    channel: Option<&str>,
    user: &str,
    body: &serde_json::Value,
) -> String {
    let Some(api) = api else {
        return "undelivered: no bot token".into();
    };
    if let Some(url) = response_url {
        match api.respond(url, body).await {
            Ok(()) => return "response_url".into(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot answer a Slack click through its response_url; trying chat.postEphemeral");
            }
        }
    }
    let Some(channel) = channel else {
        return "undelivered: no response_url and no channel".into();
    };
    match api.post_ephemeral(channel, user, body).await {
        Ok(()) => "chat.postEphemeral".into(),
        Err(e) => format!("undelivered: {}", e.label()),
    }
}
