//! Slack, both ways token-rotator talks to it: an incoming webhook (records bodies, answers `ok`)
//! and the Web API (`chat.postMessage` with threads, `chat.update`, `usergroups.users.list`,
//! `chat.postEphemeral`, `conversations.join`/`open`/`list`), with the response URLs it hands
//! out in clicks ([`respond`]),
//! holding Slack's rules: the bot token, 1 post per second per channel (429 with
//! `Retry-After`), Block Kit limits, `ok: false` errors on demand. It can also "click" a button:
//! [`SlackSim::press`] builds a `block_actions` payload and [`signed_headers`] signs it as Slack
//! does.
//! Per-workspace method budgets are in [`budget`], Block Kit's limits in [`blocks`], who is in
//! which conversation in [`conversations`]; the bot is in every channel unless a test takes it
//! out, and a person can delete a message.

mod blocks;
mod budget;
mod channels;
mod click;
mod conversations;
mod message;
mod respond;

pub use click::{ELSEWHERE, interaction, interaction_answering_at, signed_headers};
pub use message::Message;
pub use respond::{Answer, LIFETIME as RESPONSE_URL_LIFETIME, MAX_USES as RESPONSE_URL_USES};

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{Faults, Running};

/// The path of the webhook URL, shaped like Slack's (`/services/T…/B…/secret`).
pub const WEBHOOK_PATH: &str = "/services/T0SIMULATE/B0SIMULATE/simulated-webhook-secret";
/// Where the Web API is: `<url>/api/chat.postMessage`.
pub const API_PATH: &str = "/api";
/// The bot token the simulated workspace accepts.
pub const BOT_TOKEN: &str = "xoxb-simulated-bot-token";
/// The simulated app's signing secret.
pub const SIGNING_SECRET: &str = "simulated-signing-secret-8f7422";
/// The fault operation of a `chat.postMessage` whose blocks carry buttons (an `actions` block).
pub const POST_WITH_BUTTONS: &str = "chat.postMessage with buttons";
/// Slack's `chat.postMessage` pace per channel.
const POST_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct SlackSim {
    pub faults: Faults,
    /// Incoming-webhook bodies.
    messages: Mutex<Vec<Value>>,
    /// Web API messages, in the order posted.
    posted: Mutex<Vec<Message>>,
    /// Every `chat.postMessage` that got past the fault injection: when, and to which channel.
    post_requests: Mutex<Vec<(Instant, String)>>,
    /// When each `chat.update` was let through the workspace's budget.
    edit_requests: Mutex<Vec<Instant>>,
    last_post: Mutex<HashMap<String, Instant>>,
    /// 429s answered because a client posted faster than Slack allows.
    rate_limited: AtomicU32,
    groups: Mutex<HashMap<String, Vec<String>>>,
    /// Members who left (deactivated): `conversations.open` answers `user_disabled`.
    disabled: Mutex<Vec<String>>,
    next_ts: AtomicU64,
    /// Channels the bot is not a member of (`not_in_channel` until `conversations.join`).
    outside: Mutex<HashSet<String>>,
    /// The workspace's public channels, by id ([`channels`]).
    channels: channels::Channels,
    /// Replies posted under a parent a person had deleted: answered `ok`, seen by nobody.
    unseen: AtomicU32,
    budgets: Budgets,
    /// Response URLs handed out in clicks, and what clickers were shown privately.
    responses: respond::Responses,
    /// Where the simulator serves, once started (response URLs point here).
    url: OnceLock<String>,
}

/// One budget per method for the whole workspace (see [`budget`]).
struct Budgets {
    update: budget::Budget,
    group_members: budget::Budget,
    /// `conversations.list` is Tier 2 too.
    list: budget::Budget,
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            update: budget::Budget::per_minute(50),
            group_members: budget::Budget::per_minute(20),
            list: budget::Budget::per_minute(20),
        }
    }
}

impl SlackSim {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The bot is no longer in `channel` (posting there is `not_in_channel`).
    pub fn remove_bot_from(&self, channel: &str) {
        self.outside
            .lock()
            .expect("lock never poisoned")
            .insert(channel.to_owned());
    }

    /// A public channel named `name` (`#name` or `name`); answers its id.
    pub fn add_channel(&self, name: &str) -> String {
        self.channels.add(name)
    }

    /// An admin archives the channel `id`: posting answers `is_archived`, editing `is_inactive`.
    pub fn archive(&self, id: &str) {
        self.channels.archive(id);
    }

    /// Replies that answered `ok` under a deleted parent, which nobody sees.
    pub fn unseen_replies(&self) -> u32 {
        self.unseen.load(Ordering::Relaxed)
    }

    /// A person deletes the message `ts` (a parent with its thread, as Slack shows it).
    pub fn delete(&self, ts: &str) {
        self.posted
            .lock()
            .expect("lock never poisoned")
            .retain(|m| m.ts != ts && m.thread_ts.as_deref() != Some(ts));
    }

    pub async fn start(self: &Arc<Self>) -> std::io::Result<Running> {
        let router = Router::new()
            .route("/actions/{team}/{n}/{secret}", post(respond::response_url))
            .route("/api/chat.postEphemeral", post(respond::post_ephemeral))
            .route(WEBHOOK_PATH, post(receive))
            .route("/api/chat.postMessage", post(post_message))
            .route("/api/chat.update", post(update))
            .route(
                "/api/usergroups.users.list",
                get(conversations::group_members),
            )
            .route("/api/conversations.join", post(conversations::join))
            .route(
                "/api/conversations.open",
                post(conversations::open_conversation),
            )
            .route("/api/conversations.list", get(conversations::list_channels))
            .with_state(Arc::clone(self));
        let running = super::serve(router).await?;
        // One workspace per simulator: a second start serves the same URLs elsewhere.
        let _ = self.url.set(running.url());
        Ok(running)
    }

    /// Every incoming-webhook body accepted, in order.
    pub fn messages(&self) -> Vec<Value> {
        self.messages.lock().expect("lock never poisoned").clone()
    }

    /// Every Web API message, in the order posted, as it reads now.
    pub fn posted(&self) -> Vec<Message> {
        self.posted.lock().expect("lock never poisoned").clone()
    }

    /// When each `chat.postMessage` reached the per-channel limit check, per channel.
    pub fn post_times(&self) -> HashMap<String, Vec<Instant>> {
        let mut out: HashMap<String, Vec<Instant>> = HashMap::new();
        for (at, channel) in self
            .post_requests
            .lock()
            .expect("lock never poisoned")
            .iter()
        {
            out.entry(channel.clone()).or_default().push(*at);
        }
        out
    }

    /// When each `chat.update` got past the workspace's budget, in order.
    pub fn edit_times(&self) -> Vec<Instant> {
        self.edit_requests
            .lock()
            .expect("lock never poisoned")
            .clone()
    }

    /// How many posts came faster than 1 per second per channel (answered 429).
    pub fn rate_limited(&self) -> u32 {
        self.rate_limited.load(Ordering::Relaxed)
    }

    /// Defines a user group for `usergroups.users.list`.
    pub fn set_group(&self, group: &str, members: &[&str]) {
        self.groups.lock().expect("lock never poisoned").insert(
            group.to_owned(),
            members.iter().map(|m| (*m).to_owned()).collect(),
        );
    }

    /// Deactivates a member: no direct message can be opened with them any more.
    pub fn disable_user(&self, user: &str) {
        self.disabled
            .lock()
            .expect("lock never poisoned")
            .push(user.to_owned());
    }

    /// The direct messages `user` received (their DM conversation's messages).
    pub fn direct_messages(&self, user: &str) -> Vec<Message> {
        let channel = conversations::direct_channel(user);
        self.posted()
            .into_iter()
            .filter(|m| m.channel == channel)
            .collect()
    }

    /// The conversation as a person would read it: parents, their threads indented.
    pub fn transcript(&self) -> String {
        let posted = self.posted();
        let mut out = String::new();
        for parent in posted.iter().filter(|m| m.thread_ts.is_none()) {
            let edited = if parent.edits > 0 {
                format!(" (edited {}×)", parent.edits)
            } else {
                String::new()
            };
            out.push_str(&format!(
                "[{}] {}{edited}\n",
                parent.channel,
                flat(&parent.all_text())
            ));
            for reply in posted
                .iter()
                .filter(|m| m.thread_ts.as_deref() == Some(parent.ts.as_str()))
            {
                let mark = if reply.broadcast {
                    " [also in channel]"
                } else {
                    ""
                };
                out.push_str(&format!("    └ {}{mark}\n", flat(&reply.all_text())));
            }
        }
        out
    }
}

fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn receive(State(sim): State<Arc<SlackSim>>, Json(body): Json<Value>) -> Response {
    if let Some(fault) = sim.faults.check("post").await {
        return fault;
    }
    if body
        .get("text")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return (StatusCode::BAD_REQUEST, "no_text").into_response();
    }
    sim.messages.lock().expect("lock never poisoned").push(body);
    "ok".into_response()
}

/// `chat.postMessage` takes "an encoded ID or channel name" (docs.slack.dev/reference/methods/
/// chat.postMessage, `channel`) and answers with the id; a name no channel has is
/// `channel_not_found`.
fn channel_id(sim: &SlackSim, given: &str) -> Option<String> {
    if channels::is_id(given) {
        Some(given.to_owned())
    } else {
        sim.channels.named(given)
    }
}

fn slack_error(code: &str) -> Response {
    Json(json!({"ok": false, "error": code})).into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {BOT_TOKEN}"))
}

impl SlackSim {
    /// What every Web API method checks first: the bot token, then a fault a test injected,
    /// then the method's workspace budget when it has one of its own ([`budget`]).
    async fn admit(
        &self,
        headers: &HeaderMap,
        method: &'static str,
        budget: Option<&budget::Budget>,
    ) -> Result<(), Response> {
        if !authorized(headers) {
            return Err(slack_error("invalid_auth"));
        }
        if let Some(fault) = self.faults.check(method).await {
            return Err(fault);
        }
        if let Some(budget) = budget
            && let Err(wait) = budget.take()
        {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
            return Err(too_many(wait));
        }
        Ok(())
    }
}

fn too_many(retry_after: u64) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [("retry-after", retry_after.to_string())],
        Json(json!({"ok": false, "error": "ratelimited"})),
    )
        .into_response()
}

async fn post_message(
    State(sim): State<Arc<SlackSim>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(refused) = sim.admit(&headers, "chat.postMessage", None).await {
        return refused;
    }
    let Some(channel) = body["channel"].as_str().and_then(|c| channel_id(&sim, c)) else {
        return slack_error("channel_not_found");
    };
    let now = Instant::now();
    sim.post_requests
        .lock()
        .expect("lock never poisoned")
        .push((now, channel.clone()));
    {
        let mut last = sim.last_post.lock().expect("lock never poisoned");
        if last
            .get(&channel)
            .is_some_and(|at| now.duration_since(*at) < POST_INTERVAL)
        {
            sim.rate_limited.fetch_add(1, Ordering::Relaxed);
            return too_many(1);
        }
        last.insert(channel.clone(), now);
    }
    // chat.postMessage lists `not_in_channel` (slack-api-specs web-api/slack_web_openapi_v2.json).
    if sim
        .outside
        .lock()
        .expect("lock never poisoned")
        .contains(&channel)
    {
        return slack_error("not_in_channel");
    }
    // chat.postMessage lists `is_archived` (same file; the method page: "Channel has been
    // archived").
    if sim.channels.archived(&channel) {
        return slack_error("is_archived");
    }
    if let Err(code) = blocks::check_message(&body) {
        return slack_error(code);
    }
    // Injected only: a test's way to have Slack refuse one message with buttons in particular.
    if body.to_string().contains("\"type\":\"actions\"")
        && let Some(fault) = sim.faults.check(POST_WITH_BUTTONS).await
    {
        return fault;
    }
    let thread_ts = body["thread_ts"].as_str().map(str::to_owned);
    let mut posted = sim.posted.lock().expect("lock never poisoned");
    let ts = format!(
        "1700000000.{:06}",
        sim.next_ts.fetch_add(1, Ordering::Relaxed) + 100
    );
    // A reply to a parent a person deleted: neither slackapi/slack-api-specs
    // web-api/slack_web_openapi_v2.json nor the method page lists an error for it (no
    // `thread_not_found` for chat.postMessage: fixtures/slack/web_api_errors.json), so the
    // simulator answers as a client must assume Slack may: `ok`, and nobody sees the reply.
    if let Some(parent) = &thread_ts
        && !posted
            .iter()
            .any(|m| &m.ts == parent && m.channel == channel && m.thread_ts.is_none())
    {
        sim.unseen.fetch_add(1, Ordering::Relaxed);
        return Json(json!({"ok": true, "channel": channel, "ts": ts})).into_response();
    }
    let mut stored = body.clone();
    for key in ["channel", "thread_ts", "reply_broadcast", "unfurl_links"] {
        stored.as_object_mut().map(|o| o.remove(key));
    }
    posted.push(Message {
        channel: channel.clone(),
        ts: ts.clone(),
        broadcast: thread_ts.is_some() && body["reply_broadcast"] == json!(true),
        thread_ts,
        body: stored.clone(),
        edits: 0,
    });
    Json(json!({"ok": true, "channel": channel, "ts": ts, "message": stored})).into_response()
}

async fn update(
    State(sim): State<Arc<SlackSim>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(refused) = sim
        .admit(&headers, "chat.update", Some(&sim.budgets.update))
        .await
    {
        return refused;
    }
    sim.edit_requests
        .lock()
        .expect("lock never poisoned")
        .push(Instant::now());
    if let Err(code) = blocks::check_message(&body) {
        return slack_error(code);
    }
    let (Some(channel), Some(ts)) = (body["channel"].as_str(), body["ts"].as_str()) else {
        return slack_error("message_not_found");
    };
    // chat.update: "is_inactive: The message cannot be edited within a frozen, archived or
    // deleted channel" (docs.slack.dev/reference/methods/chat.update).
    if sim.channels.archived(channel) {
        return slack_error("is_inactive");
    }
    let mut posted = sim.posted.lock().expect("lock never poisoned");
    let Some(message) = posted
        .iter_mut()
        .find(|m| m.channel == channel && m.ts == ts)
    else {
        return slack_error("message_not_found");
    };
    let mut stored = body.clone();
    for key in ["channel", "ts"] {
        stored.as_object_mut().map(|o| o.remove(key));
    }
    message.body = stored;
    message.edits += 1;
    Json(json!({"ok": true, "channel": channel, "ts": ts})).into_response()
}
