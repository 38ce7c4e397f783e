//! What the person who clicked sees: answers through a click's `response_url`, and
//! `chat.postEphemeral` messages. Both are shown to that person alone, so they are kept apart
//! from the channel's messages, in the order they arrived.
//!
//! Slack's rules, as the simulator holds them:
//!
//! - [USES] A response URL takes at most 5 answers within 30 minutes of the click
//!   (https://docs.slack.dev/interactivity/handling-user-interaction#message_responses: "You
//!   can use response_url to publish up to 5 times within 30 minutes"). Slack does not document
//!   how it refuses the sixth or a late one; the simulator answers 404 with `{"ok": false}`
//!   (Slack's answers carry `ok`, as getsentry/sentry reads them in
//!   src/sentry/integrations/slack/link_identity.py), so a client must not take it for sent.
//! - [ISSUED] Only a URL Slack handed out in a payload exists: any other path is 404.
//! - [EPHEMERAL] `response_type` defaults to `ephemeral`; `replace_original` (default false
//!   for a new message) would overwrite the message clicked, and is recorded so a test can
//!   tell (same page, "Responding to interactions").
//! - [POST_EPHEMERAL] `chat.postEphemeral` needs `channel`, `user` and `text` (or blocks):
//!   `channel_not_found`, `user_not_found`, `no_text`; and the bot in the channel
//!   (`not_in_channel`), per slackapi/slack-api-specs `web-api/slack_web_openapi_v2.json`,
//!   `/chat.postEphemeral`. Scope `chat:write` (docs.slack.dev/reference/methods/chat.postEphemeral).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{SlackSim, click};

/// [USES]
pub const MAX_USES: u32 = 5;
pub const LIFETIME: Duration = Duration::from_secs(30 * 60);

/// What one person was shown, privately.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Who saw it: the clicker the URL was issued for, or `chat.postEphemeral`'s `user`.
    pub user: String,
    /// `response_url` or `chat.postEphemeral`.
    pub via: &'static str,
    pub text: String,
    /// As sent.
    pub body: Value,
}

struct Issued {
    user: String,
    at: Instant,
    uses: u32,
}

/// The response URLs handed out, and what was shown through them or `chat.postEphemeral`.
#[derive(Default)]
pub(super) struct Responses {
    issued: Mutex<Vec<Issued>>,
    shown: Mutex<Vec<Answer>>,
    /// How far the simulated clock is ahead of the real one (to reach the 30-minute limit).
    skew: Mutex<Duration>,
    refused: Mutex<u32>,
}

impl Responses {
    /// A new response URL path for a click by `user`.
    pub(super) fn issue(&self, user: &str) -> String {
        let mut issued = self.issued.lock().expect("lock never poisoned");
        issued.push(Issued {
            user: user.to_owned(),
            at: self.now(),
            uses: 0,
        });
        // The number locates it; the tail stands in for Slack's unguessable part.
        format!(
            "/actions/T0SIMULATE/{}/r{:08x}",
            issued.len() - 1,
            fastrand::u32(..)
        )
    }

    fn now(&self) -> Instant {
        Instant::now() + *self.skew.lock().expect("lock never poisoned")
    }

    pub(super) fn elapse(&self, by: Duration) {
        *self.skew.lock().expect("lock never poisoned") += by;
    }

    pub(super) fn shown(&self) -> Vec<Answer> {
        self.shown.lock().expect("lock never poisoned").clone()
    }

    pub(super) fn refused(&self) -> u32 {
        *self.refused.lock().expect("lock never poisoned")
    }

    fn refuse(&self, status: StatusCode, code: &str) -> Response {
        *self.refused.lock().expect("lock never poisoned") += 1;
        (status, Json(json!({"ok": false, "error": code}))).into_response()
    }

    /// A POST to the response URL numbered `n`.
    pub(super) fn respond(&self, n: usize, body: &Value) -> Response {
        let now = self.now();
        let user = {
            let mut issued = self.issued.lock().expect("lock never poisoned");
            let Some(url) = issued.get_mut(n) else {
                drop(issued);
                return self.refuse(StatusCode::NOT_FOUND, "no_such_url"); // [ISSUED]
            };
            if now.duration_since(url.at) > LIFETIME {
                drop(issued);
                return self.refuse(StatusCode::NOT_FOUND, "expired_url"); // [USES]
            }
            if url.uses >= MAX_USES {
                drop(issued);
                return self.refuse(StatusCode::NOT_FOUND, "used_url"); // [USES]
            }
            url.uses += 1;
            url.user.clone()
        };
        let Some(text) = text_of(body) else {
            return self.refuse(StatusCode::BAD_REQUEST, "no_text");
        };
        self.show(user, "response_url", text, body);
        Json(json!({"ok": true})).into_response()
    }

    /// A `chat.postEphemeral` the caller checked (bot token, faults, channel).
    pub(super) fn post_ephemeral(&self, body: &Value) -> Result<(), &'static str> {
        // [POST_EPHEMERAL]
        let Some(user) = body["user"].as_str().filter(|u| !u.is_empty()) else {
            return Err("user_not_found");
        };
        if !crate::adapters::slack::is_member_id(user) {
            return Err("user_not_found");
        }
        let text = text_of(body).ok_or("no_text")?;
        self.show(user.to_owned(), "chat.postEphemeral", text, body);
        Ok(())
    }

    fn show(&self, user: String, via: &'static str, text: String, body: &Value) {
        self.shown
            .lock()
            .expect("lock never poisoned")
            .push(Answer {
                user,
                via,
                text,
                body: body.clone(),
            });
    }
}

impl SlackSim {
    /// The form body of `user_id` pressing the button `action_id` on the request for
    /// `rotation_id`, as Slack sends it: with a response URL the simulator answers, and the
    /// channel and `ts` of the message showing that button (if one was posted).
    pub fn press(
        &self,
        rotation_id: &str,
        action_id: &str,
        user_id: &str,
        user_name: &str,
    ) -> String {
        let base = self.url.get().expect("the simulator is started");
        let response_url = format!("{base}{}", self.responses.issue(user_id));
        let value = format!("\"value\":{}", json!(rotation_id));
        let (channel, ts) = self
            .posted()
            .into_iter()
            .rev()
            .find(|m| m.body.to_string().contains(&value))
            .map_or_else(
                || {
                    (
                        String::from("C0SIMULATE"),
                        String::from("1700000000.000100"),
                    )
                },
                |m| (m.channel, m.ts),
            );
        let button = click::Button {
            rotation_id,
            action_id,
            user_id,
            user_name,
        };
        click::body(&button, &response_url, &channel, &ts)
    }

    /// What clickers were shown privately (response URLs and `chat.postEphemeral`), in order.
    pub fn answers(&self) -> Vec<Answer> {
        self.responses.shown()
    }

    /// What `user` was shown privately.
    pub fn answers_for(&self, user: &str) -> Vec<Answer> {
        self.answers()
            .into_iter()
            .filter(|a| a.user == user)
            .collect()
    }

    /// Moves the workspace's clock on by `by` (response URLs expire after 30 minutes).
    pub fn elapse(&self, by: Duration) {
        self.responses.elapse(by);
    }

    /// Posts to response URLs that were refused (unknown, used up, expired, no text).
    pub fn refused_responses(&self) -> u32 {
        self.responses.refused()
    }
}

/// A POST to a response URL handed out in a click .
pub(super) async fn response_url(
    State(sim): State<Arc<SlackSim>>,
    Path((_team, n, _secret)): Path<(String, usize, String)>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(fault) = sim.faults.check("response_url").await {
        return fault;
    }
    sim.responses.respond(n, &body)
}

/// `chat.postEphemeral`: a message one member alone sees .
pub(super) async fn post_ephemeral(
    State(sim): State<Arc<SlackSim>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(refused) = sim.admit(&headers, "chat.postEphemeral", None).await {
        return refused;
    }
    let Some(channel) = body["channel"]
        .as_str()
        .filter(|c| !c.is_empty())
        .and_then(|c| super::channel_id(&sim, c))
    else {
        return super::slack_error("channel_not_found");
    };
    if sim
        .outside
        .lock()
        .expect("lock never poisoned")
        .contains(&channel)
    {
        return super::slack_error("not_in_channel");
    }
    if let Err(code) = super::blocks::check_message(&body) {
        return super::slack_error(code);
    }
    match sim.responses.post_ephemeral(&body) {
        Ok(()) => Json(json!({"ok": true, "message_ts": "1700000000.000900"})).into_response(),
        Err(code) => super::slack_error(code),
    }
}

/// What the person reads: the blocks' texts, else the fallback text.
fn text_of(body: &Value) -> Option<String> {
    let message = super::Message {
        channel: String::new(),
        ts: String::new(),
        thread_ts: None,
        broadcast: false,
        body: body.clone(),
        edits: 0,
    };
    Some(message.all_text()).filter(|t| !t.trim().is_empty())
}
