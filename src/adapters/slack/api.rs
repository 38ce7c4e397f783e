//! The Slack Web API with a bot token: `chat.postMessage` (threads, `reply_broadcast`),
//! `chat.update`, `conversations.join`, `conversations.open` for direct messages,
//! `conversations.list` to resolve channel names ([`super::channels`]),
//! `usergroups.users.list` for approvers given as a user group, and the answer to a click,
//! through its `response_url` or else `chat.postEphemeral`.
//!
//! Slack answers most errors with HTTP 200 and `{"ok": false, "error": "<code>"}`; the code
//! decides what happens next ([`SlackError`]). HTTP 429 carries `Retry-After` in seconds.

use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::errors::{self, Class};
use crate::adapters::{AdapterError, Observer};

const UPSTREAM: &str = "slack";

/// How a Slack call failed. Codes are classed per method from Slack's own lists ([`errors`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackError {
    /// HTTP 429, `ratelimited` or `rate_limited` (the spelling the specification uses): wait
    /// this long, then try again.
    #[error("slack: rate limited; retry after {0:?}")]
    RateLimited(Duration),
    /// The workspace refuses this app or its token: nothing goes through until a person acts.
    #[error(
        "slack: {method} refused with {code} for the whole workspace: fix the bot token, the app's scopes or its installation"
    )]
    WorkspaceRefused {
        method: &'static str,
        code: &'static str,
    },
    /// This channel refuses (archived, read-only, the bot not in it, no such channel…).
    #[error("slack: {method} refused with {code}: fix the channel, or the bot's place in it")]
    Refused {
        method: &'static str,
        code: &'static str,
    },
    /// This request was refused as written (too long, bad blocks, no such recipient or group):
    /// the same request will be refused again.
    #[error("slack: {method} rejected the request with {code}")]
    Rejected {
        method: &'static str,
        code: &'static str,
    },
    /// The message (or thread) the call was about is gone or closed: a person deleted it, or
    /// Slack no longer lets us edit it or reply in it.
    #[error("slack: {method}: the message is gone or closed ({code})")]
    Gone {
        method: &'static str,
        code: &'static str,
    },
    /// A code the method does not document: held and retried, a bounded number of times.
    #[error("slack: {method} answered {code}, a code it does not document")]
    Unknown { method: &'static str, code: String },
    /// Slack could not be reached or had trouble of its own: the message is held and tried
    /// again, never dropped.
    #[error(transparent)]
    Unavailable(AdapterError),
    /// A channel configured by name that no public, unarchived channel has.
    #[error(
        "slack: no public, unarchived channel is named #{0} (conversations.list): fix the name, or configure the channel's id (C…)"
    )]
    NoSuchChannel(String),
}

impl SlackError {
    /// A bounded label for the errors metric (documented codes are a fixed list).
    pub fn label(&self) -> &'static str {
        match self {
            SlackError::RateLimited(_) => "ratelimited",
            SlackError::WorkspaceRefused { code, .. } | SlackError::Refused { code, .. } => code,
            SlackError::Rejected { .. } => "message_rejected",
            SlackError::Gone { .. } => "message_gone",
            SlackError::Unknown { .. } => "unknown_code",
            SlackError::Unavailable(_) => "unavailable",
            SlackError::NoSuchChannel(_) => "channel_name_not_found",
        }
    }

    /// The Slack error code, when Slack answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            SlackError::WorkspaceRefused { code, .. }
            | SlackError::Refused { code, .. }
            | SlackError::Rejected { code, .. }
            | SlackError::Gone { code, .. } => Some(code),
            SlackError::Unknown { code, .. } => Some(code),
            SlackError::RateLimited(_) | SlackError::Unavailable(_) => None,
            SlackError::NoSuchChannel(_) => Some("channel_name_not_found"),
        }
    }

    fn outcome(&self) -> &'static str {
        match self {
            SlackError::RateLimited(_)
            | SlackError::Unavailable(_)
            | SlackError::Unknown { .. } => "transient",
            _ => "permanent",
        }
    }
}

/// Where a message landed: its channel id and `ts`, Slack's id of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub channel: String,
    pub ts: String,
}

#[derive(Clone)]
pub struct SlackApi {
    http: reqwest::Client,
    observer: Observer,
    /// `https://slack.com/api`, or a simulator's.
    base_url: String,
    token: SecretString,
    /// For a click's `response_url`: follows no redirect (see [`super::origin`]).
    respond_http: reqwest::Client,
    /// `[slack] join_channels`: on `not_in_channel`, join the channel (`conversations.join`).
    join_channels: bool,
    /// Channel names resolved to ids ([`super::channels`]), shared by clones.
    pub(super) channel_ids: super::channels::Known,
}

impl SlackApi {
    pub fn new(base_url: &str, token: SecretString, timeout: Duration) -> Self {
        let http = crate::adapters::http_client(timeout);
        let respond_http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a rustls provider is installed (install_crypto_provider)");
        Self {
            http,
            observer: Observer::default(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            token,
            respond_http,
            join_channels: false,
            channel_ids: super::channels::Known::default(),
        }
    }

    pub fn observed(mut self, observer: Observer) -> Self {
        self.observer = observer;
        self
    }

    /// Joins a public channel that answers `not_in_channel`, instead of waiting for a person.
    pub fn joining(mut self, join_channels: bool) -> Self {
        self.join_channels = join_channels;
        self
    }

    pub fn joins(&self) -> bool {
        self.join_channels
    }

    /// `conversations.join` (scope `channels:join`; public channels only, by id: a configured
    /// name is resolved first, [`Self::channel_id`]).
    pub async fn join(&self, channel: &str) -> Result<(), SlackError> {
        let id = self.channel_id(channel).await?;
        let body = json!({ "channel": id });
        self.call("conversations.join", Args::Json(&body))
            .await
            .map(drop)
    }

    /// Posts `message` (`{"text", "blocks"}`) to `channel`; in a thread when `thread_ts` is given,
    /// and then also in the channel itself when `broadcast`.
    pub async fn post(
        &self,
        channel: &str,
        message: &Value,
        thread_ts: Option<&str>,
        broadcast: bool,
    ) -> Result<Posted, SlackError> {
        let mut body = message.clone();
        super::verbatim(&mut body);
        body["channel"] = json!(channel);
        body["unfurl_links"] = json!(false);
        if let Some(ts) = thread_ts {
            body["thread_ts"] = json!(ts);
            if broadcast {
                body["reply_broadcast"] = json!(true);
            }
        }
        let answer = self.call("chat.postMessage", Args::Json(&body)).await?;
        Ok(Posted {
            channel: answer["channel"].as_str().unwrap_or(channel).to_owned(),
            ts: answer["ts"].as_str().map(str::to_owned).ok_or_else(|| {
                SlackError::Unavailable(AdapterError::permanent(
                    UPSTREAM,
                    "chat.postMessage answered ok without a ts",
                ))
            })?,
        })
    }

    /// Replaces the message `ts` in `channel` with `message`.
    pub async fn update(&self, channel: &str, ts: &str, message: &Value) -> Result<(), SlackError> {
        let mut body = message.clone();
        super::verbatim(&mut body);
        body["channel"] = json!(channel);
        body["ts"] = json!(ts);
        self.call("chat.update", Args::Json(&body)).await.map(drop)
    }

    /// The id (`D…`) of the bot's direct-message conversation with `user` (`U…`/`W…`), opened if
    /// need be (`conversations.open` with one user: a 1:1 DM; scope `im:write`). Source:
    /// slackapi/slack-api-specs `web-api/slack_web_openapi_v2.json`, `/conversations.open`.
    pub async fn open_direct(&self, user: &str) -> Result<String, SlackError> {
        let answer = self
            .call("conversations.open", Args::Json(&json!({ "users": user })))
            .await?;
        answer["channel"]["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| {
                SlackError::Unavailable(AdapterError::permanent(
                    UPSTREAM,
                    "conversations.open answered ok without a channel id",
                ))
            })
    }

    /// The user ids in a user group (`S…`), for approvers named by group.
    pub async fn group_members(&self, group: &str) -> Result<Vec<String>, SlackError> {
        // A read method: arguments in the query string, which every Web API method accepts.
        let answer = self
            .call(
                "usergroups.users.list",
                Args::Query(&[("usergroup", group)]),
            )
            .await?;
        Ok(answer["users"]
            .as_array()
            .map(|users| {
                users
                    .iter()
                    .filter_map(|u| u.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Shows `message` to `user` alone in `channel` (`chat.postEphemeral`, scope `chat:write`):
    /// how a click is answered when its `response_url` cannot be used.
    pub async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        message: &Value,
    ) -> Result<(), SlackError> {
        let mut body = message.clone();
        super::verbatim(&mut body);
        body["channel"] = json!(channel);
        body["user"] = json!(user);
        self.call("chat.postEphemeral", Args::Json(&body))
            .await
            .map(drop)
    }

    /// Answers a click through its `response_url`: `message` shown to the clicker alone, the
    /// message they clicked left as it is. No bot token is sent (the URL is its own
    /// credential), and nothing outside the configured Slack origin is called
    /// ([`super::origin`]). Slack takes a response URL at most 5 times within 30 minutes
    /// (docs.slack.dev/interactivity/handling-user-interaction#message_responses: "You can use
    /// response_url to publish up to 5 times within 30 minutes"); past that it refuses, and
    /// the caller falls back to `chat.postEphemeral`.
    pub async fn respond(&self, response_url: &str, message: &Value) -> Result<(), SlackError> {
        const METHOD: &str = "response_url";
        if !super::origin::allowed(&self.base_url, response_url) {
            return Err(SlackError::Refused {
                method: METHOD,
                code: "outside_slack_origin",
            });
        }
        let mut body = message.clone();
        super::verbatim(&mut body);
        body["response_type"] = json!("ephemeral");
        body["replace_original"] = json!(false);
        let started = Instant::now();
        let result = self.send_response(response_url, &body).await;
        let outcome = match &result {
            Ok(()) => "ok",
            Err(e) => e.outcome(),
        };
        self.observer
            .record(UPSTREAM, outcome, started.elapsed().as_secs_f64());
        result
    }

    async fn send_response(&self, response_url: &str, body: &Value) -> Result<(), SlackError> {
        let response = self
            .respond_http
            .post(response_url)
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| SlackError::Unavailable(AdapterError::from_reqwest(UPSTREAM, &e)))?;
        let status = response.status().as_u16();
        if status == 429 {
            return Err(SlackError::RateLimited(retry_after(
                response.headers().get(RETRY_AFTER),
            )));
        }
        let text = response.text().await.unwrap_or_default();
        if status >= 500 {
            return Err(SlackError::Unavailable(AdapterError::from_status(
                UPSTREAM, status, &text,
            )));
        }
        // A used-up or expired URL, or one Slack never issued: the same answer would be
        // refused again, so the caller takes another way.
        let answer: Value = serde_json::from_str(&text).unwrap_or_default();
        if (200..300).contains(&status) && answer["ok"] != json!(false) {
            return Ok(());
        }
        Err(SlackError::Rejected {
            method: "response_url",
            // Slack documents no codes for a refused response URL; the status says enough.
            code: match status {
                404 => "response_url_not_found",
                410 => "response_url_expired",
                _ => "response_url_refused",
            },
        })
    }

    pub(super) async fn call(
        &self,
        method: &'static str,
        args: Args<'_>,
    ) -> Result<Value, SlackError> {
        let started = Instant::now();
        let result = self.send(method, args).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.outcome(),
        };
        self.observer
            .record(UPSTREAM, outcome, started.elapsed().as_secs_f64());
        result
    }

    async fn send(&self, method: &'static str, args: Args<'_>) -> Result<Value, SlackError> {
        let url = format!("{}/{method}", self.base_url);
        let request = match args {
            // Slack asks for the charset with JSON bodies.
            Args::Json(body) => self
                .http
                .post(url)
                .header(CONTENT_TYPE, "application/json; charset=utf-8")
                .body(body.to_string()),
            Args::Query(query) => self.http.get(url).query(query),
        };
        let response = request
            .header(
                AUTHORIZATION,
                format!("Bearer {}", self.token.expose_secret()),
            )
            .send()
            .await
            .map_err(|e| SlackError::Unavailable(AdapterError::from_reqwest(UPSTREAM, &e)))?;
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers().get(RETRY_AFTER));
        if status == 429 {
            return Err(SlackError::RateLimited(retry_after));
        }
        let text = response.text().await.unwrap_or_default();
        if status >= 500 {
            return Err(SlackError::Unavailable(AdapterError::from_status(
                UPSTREAM, status, &text,
            )));
        }
        let answer: Value = serde_json::from_str(&text).map_err(|_| {
            SlackError::Unavailable(AdapterError::from_status(UPSTREAM, status, &text))
        })?;
        if answer["ok"].as_bool() == Some(true) {
            return Ok(answer);
        }
        let code = answer["error"]
            .as_str()
            .unwrap_or("unknown_error")
            .to_owned();
        Err(classify(method, code, retry_after))
    }
}

/// A call's arguments: a JSON body for writes, a query string for reads.
pub(super) enum Args<'a> {
    Json(&'a Value),
    Query(&'a [(&'a str, &'a str)]),
}

pub(super) fn classify(method: &'static str, code: String, retry_after: Duration) -> SlackError {
    let Some(class) = errors::class(method, &code) else {
        return SlackError::Unknown { method, code };
    };
    // The table's own spelling: a `&'static str`, so labels stay a fixed set.
    let code = errors::table(method)
        .into_iter()
        .flatten()
        .chain(errors::COMMON)
        .map(|(c, _)| *c)
        .find(|c| *c == code)
        .unwrap_or("unknown_code");
    match class {
        Class::RateLimited => SlackError::RateLimited(retry_after),
        Class::Workspace => SlackError::WorkspaceRefused { method, code },
        Class::Channel => SlackError::Refused { method, code },
        Class::Gone => SlackError::Gone { method, code },
        Class::Message | Class::Recipient | Class::Group => SlackError::Rejected { method, code },
        Class::Transient => SlackError::Unavailable(AdapterError::Transient {
            upstream: UPSTREAM,
            detail: format!("{method}: {code}"),
        }),
    }
}

/// `Retry-After` in seconds; 1 s when absent or unreadable, as Slack's own SDK does.
fn retry_after(value: Option<&reqwest::header::HeaderValue>) -> Duration {
    value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs)
        .min(Duration::from_secs(3600))
}
