//! Synoptic's credential API (v2 `auth`), as its docs and clients describe it: list a private
//! key's tokens (at most 100), create one with `expire` (UTC `YYYYmmddHHMM`, not readable back)
//! and `cloneSettings`, disable one (irrevocable; a token tagged `protected` answers 400), and a
//! data endpoint whose `SUMMARY.RESPONSE_MESSAGE` is `OK` for a valid token. Tokens stop
//! answering once expired.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::{Faults, Running};
use crate::clock::Clock;

/// The most tokens one list answer holds.
pub const LIST_LIMIT: usize = 100;

#[derive(Debug, Clone)]
pub struct SynopticToken {
    pub value: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub disabled: bool,
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
}

pub struct SynopticSim {
    pub faults: Faults,
    api_key: String,
    clock: Arc<dyn Clock>,
    tokens: Mutex<Vec<SynopticToken>>,
}

impl SynopticSim {
    pub fn new(api_key: &str, clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self {
            faults: Faults::default(),
            api_key: api_key.to_owned(),
            clock,
            tokens: Mutex::new(Vec::new()),
        })
    }

    pub async fn start(self: &Arc<Self>) -> std::io::Result<Running> {
        let router = Router::new()
            .route("/v2/auth", get(auth))
            .route("/v2/stations/latest", get(data))
            .with_state(Arc::clone(self));
        super::serve(router).await
    }

    /// A token made earlier (by hand, on Synoptic's site), with `tags`.
    pub fn add_token(&self, expires_at: Option<Timestamp>, tags: &[&str]) -> String {
        let settings = json!({"tags": tags, "origins": ["weather.example"]});
        self.create(expires_at, settings)
    }

    fn create(&self, expires_at: Option<Timestamp>, settings: Value) -> String {
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
            .filter(|t| !t.disabled && t.expires_at.is_none_or(|e| e > now))
            .collect()
    }

    pub fn is_live(&self, value: &str) -> bool {
        self.live().iter().any(|t| t.value == value)
    }

    fn authorised(&self, headers: &HeaderMap, query: &HashMap<String, String>) -> bool {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        bearer.or(query.get("apikey").map(String::as_str)) == Some(self.api_key.as_str())
    }
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"SUMMARY": {"RESPONSE_CODE": -1, "RESPONSE_MESSAGE": message}})),
    )
        .into_response()
}

/// `YYYYmmddHHMM` in UTC; Synoptic expires within the hour after it (here: at it).
fn parse_expire(text: &str) -> Option<Timestamp> {
    jiff::civil::DateTime::strptime("%Y%m%d%H%M", text)
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

async fn auth(
    State(sim): State<Arc<SynopticSim>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if !sim.authorised(&headers, &query) {
        return refuse(StatusCode::UNAUTHORIZED, "Invalid API key");
    }
    if query.get("list").map(String::as_str) == Some("1") {
        if let Some(fault) = sim.faults.check("list").await {
            return fault;
        }
        let tokens: Vec<String> = sim
            .live()
            .into_iter()
            .take(LIST_LIMIT)
            .map(|t| t.value)
            .collect();
        return Json(json!({"TOKENS": tokens})).into_response();
    }
    if let Some(target) = query.get("disableToken") {
        if let Some(fault) = sim.faults.check("disable").await {
            return fault;
        }
        let mut tokens = sim.tokens.lock().expect("lock never poisoned");
        let Some(token) = tokens.iter_mut().find(|t| &t.value == target) else {
            return refuse(StatusCode::BAD_REQUEST, "Token not found");
        };
        if token.tags().contains(&"protected") {
            return refuse(
                StatusCode::BAD_REQUEST,
                "Token is protected and cannot be disabled",
            );
        }
        token.disabled = true;
        return Json(json!({"SUMMARY": {"RESPONSE_CODE": 1, "RESPONSE_MESSAGE": "OK"}}))
            .into_response();
    }
    if let Some(fault) = sim.faults.check("create").await {
        return fault;
    }
    let expires_at = match query.get("expire") {
        Some(text) => match parse_expire(text) {
            Some(at) => Some(at),
            None => return refuse(StatusCode::BAD_REQUEST, "expire must be YYYYmmddHHMM"),
        },
        None => None,
    };
    let settings = match query.get("cloneSettings") {
        Some(from) => {
            let tokens = sim.tokens.lock().expect("lock never poisoned");
            match tokens.iter().find(|t| &t.value == from) {
                Some(t) => t.settings.clone(),
                None => return refuse(StatusCode::BAD_REQUEST, "Invalid cloneSettings token"),
            }
        }
        None => json!({"tags": []}),
    };
    let value = sim.create(expires_at, settings);
    // The token exists now even if the answer never arrives (a dropped connection).
    if let Some(fault) = sim.faults.check("create-answer").await {
        return fault;
    }
    Json(json!({"TOKEN": value})).into_response()
}

async fn data(
    State(sim): State<Arc<SynopticSim>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(fault) = sim.faults.check("data").await {
        return fault;
    }
    let valid = query.get("token").is_some_and(|t| sim.is_live(t));
    if !valid {
        return refuse(StatusCode::OK, "Invalid token.");
    }
    Json(json!({
        "SUMMARY": {"RESPONSE_CODE": 1, "RESPONSE_MESSAGE": "OK", "NUMBER_OF_OBJECTS": 1},
        "STATION": [{"STID": query.get("stid").cloned().unwrap_or_default()}],
    }))
    .into_response()
}
