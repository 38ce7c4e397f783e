//! Synoptic's credential API and a data endpoint, as Synoptic's own pages describe them. Each
//! rule cites the page it models:
//!
//! - [CRED] https://docs.synopticdata.com/account/credential-api (current `/auth/v2/`)
//! - [LEGACY] https://developers.synopticdata.com/mesonet/v2/auth/ (legacy `/v2/auth`)
//! - [KEYS] https://docs.synopticdata.com/account/api-keys (keys manage the account's tokens)
//! - [SETTINGS] https://docs.synopticdata.com/account/token-settings (`protected` tag)
//! - [ERRORS] https://docs.synopticdata.com/services/errors (`SUMMARY.RESPONSE_CODE`)
//! - [SYNOPTICPY] github.com/blaylockbk/SynopticPy `synoptic/get_token.py` (the WBB probe)
//!
//! Where the pages do not show a body (the create/list/disable answers), the shape is the one
//! third-party clients parse (`{"TOKEN": …}`, `{"TOKENS": […]}`), and the wording is ours: the
//! client must not depend on it.

mod credential;
mod data;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::{Faults, Running};
use crate::clock::Clock;

/// The most tokens one list answer holds ([LEGACY]: "limited to 100").
pub const LIST_LIMIT: usize = 100;

/// The account the simulator's first private key belongs to.
const ACCOUNT: u32 = 1;

#[derive(Debug, Clone)]
pub struct SynopticToken {
    pub value: String,
    pub created_at: Timestamp,
    /// When it really stops answering: within the hour after the `expire` asked for.
    pub expires_at: Option<Timestamp>,
    pub disabled: bool,
    /// The account that owns it: [CRED] lists and disables the tokens of the account the key
    /// belongs to ("any private key associated with the account that owns the token").
    pub account: u32,
    /// The private key that made it through the API; `None`: made in the web console. Only the
    /// legacy endpoint cares ([LEGACY]: "Only the private key used to generate a token can be
    /// used to perform actions on that token").
    pub made_with: Option<String>,
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
    /// Every private key and the account it belongs to ([KEYS]: an account may have several).
    keys: Mutex<HashMap<String, u32>>,
    /// The first key, which `add_token` makes tokens with.
    api_key: String,
    clock: Arc<dyn Clock>,
    tokens: Mutex<Vec<SynopticToken>>,
    /// Data requests a disabled token still answers: the issue reads Synoptic's pages as "under
    /// 60 s to stop answering globally" (the stored copy of [CRED] does not show that line), so a
    /// disabled token is not dead at once.
    disable_lag: AtomicU32,
    lagging: Mutex<HashMap<String, u32>>,
    /// A person disables the next token asked to be disabled just before the request arrives.
    beaten_to_disable: AtomicBool,
}

impl SynopticSim {
    pub fn new(api_key: &str, clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self {
            faults: Faults::default(),
            keys: Mutex::new(HashMap::from([(api_key.to_owned(), ACCOUNT)])),
            api_key: api_key.to_owned(),
            clock,
            tokens: Mutex::new(Vec::new()),
            disable_lag: AtomicU32::new(0),
            lagging: Mutex::new(HashMap::new()),
            beaten_to_disable: AtomicBool::new(false),
        })
    }

    pub async fn start(self: &Arc<Self>) -> std::io::Result<Running> {
        let router = Router::new()
            .route("/auth/v2/", get(credential::current))
            .route("/auth/v2", get(credential::current))
            .route("/v2/auth", get(credential::legacy))
            .route("/v2/stations/metadata", get(data::stations))
            .route("/v2/stations/latest", get(data::stations))
            .with_state(Arc::clone(self));
        super::serve(router).await
    }

    /// A token made earlier with the first API key (through the API), with `tags`.
    pub fn add_token(&self, expires_at: Option<Timestamp>, tags: &[&str]) -> String {
        let key = self.api_key.clone();
        self.add_token_with(&key, expires_at, tags)
    }

    /// A token made earlier through the API with `key` (one [`add_key`](Self::add_key) gave).
    pub fn add_token_with(
        &self,
        key: &str,
        expires_at: Option<Timestamp>,
        tags: &[&str],
    ) -> String {
        let settings = json!({"tags": tags, "origins": ["weather.example"]});
        let account = self.account_of(key).expect("a key the simulator knows");
        self.create(expires_at, settings, account, Some(key.to_owned()))
    }

    /// A token made by hand in Synoptic's web console, on the first key's account: it works and
    /// the current endpoint lists it; the legacy endpoint never does.
    pub fn add_console_token(&self, expires_at: Option<Timestamp>, tags: &[&str]) -> String {
        let settings = json!({"tags": tags, "origins": ["weather.example"]});
        self.create(expires_at, settings, ACCOUNT, None)
    }

    /// Another private key: of the first key's account when `same_account`, else of an account
    /// of its own.
    pub fn add_key(&self, key: &str, same_account: bool) {
        let mut keys = self.keys.lock().expect("lock never poisoned");
        let account = if same_account {
            ACCOUNT
        } else {
            keys.values().max().copied().unwrap_or(ACCOUNT) + 1
        };
        keys.insert(key.to_owned(), account);
    }

    fn account_of(&self, key: &str) -> Option<u32> {
        self.keys
            .lock()
            .expect("lock never poisoned")
            .get(key)
            .copied()
    }

    /// The next disable request finds its token already disabled by a person in the console
    /// (the race between listing a token and disabling it).
    pub fn beat_the_next_disable(&self) {
        self.beaten_to_disable.store(true, Ordering::Relaxed);
    }

    /// From now on a disabled token keeps answering this many data requests.
    pub fn lag_disable(&self, data_requests: u32) {
        self.disable_lag.store(data_requests, Ordering::Relaxed);
    }

    fn create(
        &self,
        expires_at: Option<Timestamp>,
        settings: Value,
        account: u32,
        made_with: Option<String>,
    ) -> String {
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
                account,
                made_with,
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
