//! The credential endpoints: who may list, make, clone and disable which tokens.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{
    LIST_LIMIT, SynopticSim, SynopticToken, parse_expire, refuse, unauthorised, within_the_hour,
};

/// Which endpoint a request came to: the two decide differently whose tokens a key may touch.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    Current,
    Legacy,
}

/// Who asks: the private key and its account.
struct Caller {
    key: String,
    account: u32,
    api: Api,
}

impl Caller {
    /// Whether this caller may list, clone or disable `token`. [CRED]: "This service uses any
    /// of the active Private API Keys on your account to List active tokens … Disable tokens",
    /// "any private key associated with the account that owns the token". [LEGACY]: "Only the
    /// private key used to generate a token can be used to perform actions on that token", and
    /// `list` gives "the tokens associated with the provided API key" (a console-made token is
    /// associated with none).
    fn may_act_on(&self, token: &SynopticToken) -> bool {
        match self.api {
            Api::Current => token.account == self.account,
            Api::Legacy => token.made_with.as_deref() == Some(self.key.as_str()),
        }
    }
}

/// `/auth/v2/`: [CRED] "Authorization: Bearer YourAPIKey" (preferred), or, "if you do not
/// include an authorization header", `?apikey=`.
pub(super) async fn current(
    State(sim): State<Arc<SynopticSim>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let key = match headers.get(header::AUTHORIZATION) {
        Some(v) => v.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")),
        None => query.get("apikey").map(String::as_str),
    };
    let Some((key, account)) = key.and_then(|k| Some((k, sim.account_of(k)?))) else {
        return unauthorised();
    };
    let caller = Caller {
        key: key.to_owned(),
        account,
        api: Api::Current,
    };
    credential(&sim, &caller, &query).await
}

/// `/v2/auth`: [LEGACY] "apikey (required), Your private API key" as a parameter; the page
/// knows no header, so a request without `apikey` is refused whatever its headers say.
pub(super) async fn legacy(
    State(sim): State<Arc<SynopticSim>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(key) = query.get("apikey") else {
        return unauthorised();
    };
    let Some(account) = sim.account_of(key) else {
        return unauthorised();
    };
    let caller = Caller {
        key: key.clone(),
        account,
        api: Api::Legacy,
    };
    credential(&sim, &caller, &query).await
}

/// The root endpoint's three functions ([CRED] "List / Create / Disable tokens (root
/// endpoint)"), chosen by the parameters as [LEGACY] lists them.
async fn credential(
    sim: &Arc<SynopticSim>,
    caller: &Caller,
    query: &HashMap<String, String>,
) -> Response {
    if query.get("list").map(String::as_str) == Some("1") {
        if let Some(fault) = sim.faults.check("list").await {
            return fault;
        }
        return list(sim, caller);
    }
    if let Some(target) = query.get("disableToken") {
        if let Some(fault) = sim.faults.check("disable").await {
            return fault;
        }
        return disable(sim, caller, target);
    }
    if let Some(fault) = sim.faults.check("create").await {
        return fault;
    }
    let value = match create(sim, caller, query) {
        Ok(value) => value,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, -1, message),
    };
    // The token exists now even if the answer never arrives (a dropped connection).
    if let Some(fault) = sim.faults.check("create-answer").await {
        return fault;
    }
    Json(json!({"TOKEN": value})).into_response()
}

/// [CRED] "List active tokens" of the account; [LEGACY] `list`: "the tokens associated with
/// the provided API key", "limited to 100". Disabled and expired tokens are gone.
fn list(sim: &SynopticSim, caller: &Caller) -> Response {
    let tokens: Vec<String> = sim
        .live()
        .into_iter()
        .filter(|t| caller.may_act_on(t))
        .take(LIST_LIMIT)
        .map(|t| t.value)
        .collect();
    Json(json!({"TOKENS": tokens})).into_response()
}

/// [LEGACY] `disableToken`: "Permanently deletes the token passed. This action is
/// irrevocable", by whom [`Caller::may_act_on`] says; [SETTINGS] a `protected` tag makes it
/// "reject with a 400 error" (no code or wording documented: none is sent). A token not live
/// (already disabled or expired) is incorrect input, [ERRORS] code -1; a live token this key
/// may not act on is an authorisation error, [ERRORS] code 403.
fn disable(sim: &SynopticSim, caller: &Caller, target: &str) -> Response {
    let now = sim.clock.now();
    let mut tokens = sim.tokens.lock().expect("lock never poisoned");
    if sim.beaten_to_disable.swap(false, Ordering::Relaxed)
        && let Some(token) = tokens.iter_mut().find(|t| t.value == target)
    {
        token.disabled = true;
    }
    let Some(token) = tokens
        .iter_mut()
        .find(|t| t.value == target && t.live_at(now))
    else {
        return refuse(StatusCode::BAD_REQUEST, -1, "Token not found");
    };
    if !caller.may_act_on(token) {
        return refuse(
            StatusCode::FORBIDDEN,
            403,
            "This API key may not act on this token",
        );
    }
    if token.tags().contains(&"protected") {
        // Wording unknown: the client must go by the status the page documents.
        return (StatusCode::BAD_REQUEST, "Bad Request").into_response();
    }
    token.disabled = true;
    let lag = sim.disable_lag.load(Ordering::Relaxed);
    if lag > 0 {
        sim.lagging
            .lock()
            .expect("lock never poisoned")
            .insert(target.to_owned(), lag);
    }
    // [LEGACY] "Delete a token": `{"MESSAGE": "Token … is disabled."}`.
    Json(json!({"MESSAGE": format!("Token {target} is disabled.")})).into_response()
}

/// [LEGACY] create: `expire` is "YYYYmmddHHMM (UTC)", and "Tokens will actually expire within 1
/// hour of this time"; `cloneSettings`: "If the specified settings token is invalid, deleted or
/// ex[pired]" the request fails, and so does one this key may not act on.
/// A refusal is HTTP 400 with its message.
fn create(
    sim: &SynopticSim,
    caller: &Caller,
    query: &HashMap<String, String>,
) -> Result<String, &'static str> {
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
                .find(|t| &t.value == from && t.live_at(now) && caller.may_act_on(t))
                .map(|t| t.settings.clone())
                .ok_or("Invalid cloneSettings token")?
        }
        None => json!({"tags": []}),
    };
    Ok(sim.create(
        expires_at.map(within_the_hour),
        settings,
        caller.account,
        Some(caller.key.clone()),
    ))
}
