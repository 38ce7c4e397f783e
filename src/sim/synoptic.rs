//! Synoptic's credential API and a data endpoint, as Synoptic's own pages describe them. Each
//! rule cites the page it models:
//!
//! - [CRED] https://docs.synopticdata.com/account/credential-api (current `/auth/v2/`)
//! - [LEGACY] https://developers.synopticdata.com/mesonet/v2/auth/ (legacy `/v2/auth`)
//! - [SETTINGS] https://docs.synopticdata.com/account/token-settings (`protected` tag)
//! - [ERRORS] https://docs.synopticdata.com/services/errors (`SUMMARY.RESPONSE_CODE`)
//! - [SYNOPTICPY] github.com/blaylockbk/SynopticPy `synoptic/get_token.py` (the WBB probe)
//!
//! Where the pages do not show a body (the create/list/disable answers), the shape is the one
//! third-party clients parse (`{"TOKEN": …}`, `{"TOKENS": […]}`), and the wording is ours: the
//! client must not depend on it.

mod data;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::{Faults, Running};
use crate::clock::Clock;

/// The most tokens one list answer holds ([LEGACY]: "limited to 100").
pub const LIST_LIMIT: usize = 100;

#[derive(Debug, Clone)]
pub struct SynopticToken {
    pub value: String,
    pub created_at: Timestamp,
    /// When it really stops answering: within the hour after the `expire` asked for.
    pub expires_at: Option<Timestamp>,
    pub disabled: bool,
    /// Made with this private key through the API, so listed and manageable with it; a token
    /// made in the web console is not ([LEGACY]: "Only the private key used to generate a token
    /// can be used to perform actions on that token"; `list` "returns a list of the tokens
    /// associated with the provided API key").
    pub with_key: bool,
    /// Settings (`cloneSettings` copies them), with their tags.
    pub settings: Value,
}

impl SynopticToken {
    fn tags(&self) -> Vec<&str> {
        self.settings["tags"]
            .as_array()
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    fn live_at(&self, now: Timestamp) -> bool {
        !self.disabled && self.expires_at.is_none_or(|e| e > now)
    }
}

pub struct SynopticSim {
    pub faults: Faults,
    api_key: String,
    clock: Arc<dyn Clock>,
    tokens: Mutex<Vec<SynopticToken>>,
    /// Data requests a disabled token still answers: the issue reads Synoptic's pages as "under
    /// 60 s to stop answering globally" (the stored copy of [CRED] does not show that line), so a
    /// disabled token is not dead at once.
    disable_lag: AtomicU32,
    lagging: Mutex<HashMap<String, u32>>,
}

impl SynopticSim {
    pub fn new(api_key: &str, clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self {
            faults: Faults::default(),
            api_key: api_key.to_owned(),
            clock,
            tokens: Mutex::new(Vec::new()),
            disable_lag: AtomicU32::new(0),
            lagging: Mutex::new(HashMap::new()),
        })
    }

    pub async fn start(self: &Arc<Self>) -> std::io::Result<Running> {
        let router = Router::new()
            .route("/auth/v2/", get(current))
            .route("/auth/v2", get(current))
            .route("/v2/auth", get(legacy))
            .route("/v2/stations/metadata", get(data::stations))
            .route("/v2/stations/latest", get(data::stations))
            .with_state(Arc::clone(self));
        super::serve(router).await
    }

    /// A token made earlier with this API key (through the API), with `tags`; listed.
    pub fn add_token(&self, expires_at: Option<Timestamp>, tags: &[&str]) -> String {
        let settings = json!({"tags": tags, "origins": ["weather.example"]});
        self.create(expires_at, settings, true)
    }

    /// A token made by hand in Synoptic's web console: it works, but this key never lists it
    /// and cannot disable it.
    pub fn add_console_token(&self, expires_at: Option<Timestamp>, tags: &[&str]) -> String {
        let settings = json!({"tags": tags, "origins": ["weather.example"]});
        self.create(expires_at, settings, false)
    }

    /// From now on a disabled token keeps answering this many data requests.
    pub fn lag_disable(&self, data_requests: u32) {
        self.disable_lag.store(data_requests, Ordering::Relaxed);
    }

    fn create(&self, expires_at: Option<Timestamp>, settings: Value, with_key: bool) -> String {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the OS provides randomness");
        let value = hex::encode(bytes);
        self.tokens
            .lock()
            .expect("lock never poisoned")
            .push(SynopticToken {
                value: value.clone(),
                created_at: self.clock.now(),
                expires_at,
                disabled: false,
                with_key,
                settings,
            });
        value
    }

    pub fn tokens(&self) -> Vec<SynopticToken> {
        self.tokens.lock().expect("lock never poisoned").clone()
    }

    /// Tokens that answer now: not disabled, not expired.
    pub fn live(&self) -> Vec<SynopticToken> {
        let now = self.clock.now();
        self.tokens()
            .into_iter()
            .filter(|t| t.live_at(now))
            .collect()
    }

    pub fn is_live(&self, value: &str) -> bool {
        self.live().iter().any(|t| t.value == value)
    }

    /// Whether a data request with `value` is answered: live, or disabled but still lagging.
    fn answers(&self, value: &str) -> bool {
        if self.is_live(value) {
            return true;
        }
        let mut lagging = self.lagging.lock().expect("lock never poisoned");
        match lagging.get_mut(value) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    }
}

/// A refusal: an HTTP status and Synoptic's `SUMMARY` with a code from [ERRORS].
fn refuse(status: StatusCode, code: i64, message: &str) -> Response {
    (
        status,
        Json(json!({"SUMMARY": {"RESPONSE_CODE": code, "RESPONSE_MESSAGE": message}})),
    )
        .into_response()
}

/// [CRED]: "You will receive an HTTP 401 error if authentication is unsuccessful".
fn unauthorised() -> Response {
    refuse(StatusCode::UNAUTHORIZED, 403, "Invalid API key")
}

/// `/auth/v2/`: [CRED] "Authorization: Bearer YourAPIKey" (preferred), or, "if you do not
/// include an authorization header", `?apikey=`.
async fn current(
    State(sim): State<Arc<SynopticSim>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let key = match headers.get(header::AUTHORIZATION) {
        Some(v) => v.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")),
        None => query.get("apikey").map(String::as_str),
    };
    if key != Some(sim.api_key.as_str()) {
        return unauthorised();
    }
    credential(&sim, &query).await
}

/// `/v2/auth`: [LEGACY] "apikey (required), Your private API key" as a parameter; the page
/// knows no header, so a request without `apikey` is refused whatever its headers say.
async fn legacy(
    State(sim): State<Arc<SynopticSim>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if query.get("apikey") != Some(&sim.api_key) {
        return unauthorised();
    }
    credential(&sim, &query).await
}

/// The root endpoint's three functions ([CRED] "List / Create / Disable tokens (root
/// endpoint)"), chosen by the parameters as [LEGACY] lists them.
async fn credential(sim: &Arc<SynopticSim>, query: &HashMap<String, String>) -> Response {
    if query.get("list").map(String::as_str) == Some("1") {
        if let Some(fault) = sim.faults.check("list").await {
            return fault;
        }
        return list(sim);
    }
    if let Some(target) = query.get("disableToken") {
        if let Some(fault) = sim.faults.check("disable").await {
            return fault;
        }
        return disable(sim, target);
    }
    if let Some(fault) = sim.faults.check("create").await {
        return fault;
    }
    let value = match create(sim, query) {
        Ok(value) => value,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, -1, message),
    };
    // The token exists now even if the answer never arrives (a dropped connection).
    if let Some(fault) = sim.faults.check("create-answer").await {
        return fault;
    }
    Json(json!({"TOKEN": value})).into_response()
}

/// [LEGACY] `list`: "the tokens associated with the provided API key", "limited to 100"; a
/// console-made token is not associated with the key. Disabled and expired tokens are gone.
fn list(sim: &SynopticSim) -> Response {
    let tokens: Vec<String> = sim
        .live()
        .into_iter()
        .filter(|t| t.with_key)
        .take(LIST_LIMIT)
        .map(|t| t.value)
        .collect();
    Json(json!({"TOKENS": tokens})).into_response()
}

/// [LEGACY] `disableToken`: "Permanently deletes the token passed. This action is
/// irrevocable", only with the key that made it; [SETTINGS] a `protected` tag makes it
/// "reject with a 400 error". A token already disabled is not found again.
fn disable(sim: &SynopticSim, target: &str) -> Response {
    let now = sim.clock.now();
    let mut tokens = sim.tokens.lock().expect("lock never poisoned");
    let Some(token) = tokens
        .iter_mut()
        .find(|t| t.value == target && t.with_key && t.live_at(now))
    else {
        return refuse(StatusCode::BAD_REQUEST, -1, "Token not found for this key");
    };
    if token.tags().contains(&"protected") {
        // Wording unknown: the client must go by the status the page documents.
        return refuse(StatusCode::BAD_REQUEST, -1, "Token cannot be disabled");
    }
    token.disabled = true;
    let lag = sim.disable_lag.load(Ordering::Relaxed);
    if lag > 0 {
        sim.lagging
            .lock()
            .expect("lock never poisoned")
            .insert(target.to_owned(), lag);
    }
    Json(json!({"SUMMARY": {"RESPONSE_CODE": 1, "RESPONSE_MESSAGE": "OK"}})).into_response()
}

/// [LEGACY] create: `expire` is "YYYYmmddHHMM (UTC)", and "Tokens will actually expire within 1
/// hour of this time"; `cloneSettings`: "If the specified settings token is invalid, deleted or
/// ex[pired]" the request fails.
/// A refusal is HTTP 400 with its message.
fn create(sim: &SynopticSim, query: &HashMap<String, String>) -> Result<String, &'static str> {
    let expires_at = match query.get("expire") {
        Some(text) => Some(parse_expire(text).ok_or("Invalid expire")?),
        None => None,
    };
    let settings = match query.get("cloneSettings") {
        Some(from) => {
            let now = sim.clock.now();
            let tokens = sim.tokens.lock().expect("lock never poisoned");
            tokens
                .iter()
                .find(|t| &t.value == from && t.live_at(now))
                .map(|t| t.settings.clone())
                .ok_or("Invalid cloneSettings token")?
        }
        None => json!({"tags": []}),
    };
    Ok(sim.create(expires_at.map(within_the_hour), settings, true))
}

/// Some moment in the hour after `asked` (never exactly at it).
fn within_the_hour(asked: Timestamp) -> Timestamp {
    let late = Duration::from_secs(fastrand::u64(1..3600));
    asked + late
}

/// `YYYYmmddHHMM` in UTC.
fn parse_expire(text: &str) -> Option<Timestamp> {
    jiff::civil::DateTime::strptime("%Y%m%d%H%M", text)
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}
