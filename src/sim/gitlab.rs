//! GitLab's access token API, as GitLab's own pages describe it. Each rule cites its page:
//!
//! - [PAT] https://docs.gitlab.com/api/personal_access_tokens/ (list, `self`, rotate, revoke)
//! - [PROJECT] https://docs.gitlab.com/api/project_access_tokens/ (list, rotate, revoke)
//! - [GROUP] https://docs.gitlab.com/api/group_access_tokens/ (the same, for groups)
//! - [LIFETIME] https://docs.gitlab.com/user/profile/personal_access_tokens/ (every token has
//!   an expiry, at most the instance's maximum lifetime: 365 days by default)
//! - [ROTATE-MR] https://gitlab.com/gitlab-org/gitlab/-/merge_requests/119631 and issue 403042:
//!   rotation revokes the token it is given before it makes the new one; only a live token can
//!   be rotated.
//!
//! The error bodies are GitLab's `{"message": "<status> <reason>"}` shape; past the status, the
//! wording is ours and the client must not depend on it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Faults, Running};
use crate::clock::Clock;

/// [LIFETIME]: the default maximum lifetime of an access token.
pub const MAX_LIFETIME_DAYS: i64 = 365;
/// [PAT] rotate: without `expires_at`, the new token "expires one week" from today.
const DEFAULT_ROTATED_DAYS: i64 = 7;

/// Whose token it is: a user's personal token, or a project's or group's bot token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    User(String),
    Project(String),
    Group(String),
}

#[derive(Debug, Clone)]
pub struct GitLabToken {
    pub id: u64,
    pub owner: Owner,
    pub name: String,
    pub value: String,
    pub expires_at: Date,
    pub revoked: bool,
}

impl GitLabToken {
    fn active(&self, today: Date) -> bool {
        // [PAT] `active`: not revoked and not expired (a token expires at the end of its date).
        !self.revoked && self.expires_at >= today
    }

    fn json(&self, today: Date) -> Value {
        json!({
            "id": self.id, "name": self.name, "revoked": self.revoked,
            "active": self.active(today), "expires_at": self.expires_at.to_string(),
            "scopes": ["api"], "created_at": "2026-01-05T09:00:00.000Z",
            "user_id": match &self.owner { Owner::User(id) => id.parse().unwrap_or(0), _ => 900 },
        })
    }
}

pub struct GitLabSim {
    pub faults: Faults,
    /// The token token-rotator authenticates with (an administrator's, or a maintainer's).
    admin: String,
    clock: Arc<dyn Clock>,
    tokens: Mutex<Vec<GitLabToken>>,
    next_id: AtomicU64,
}

impl GitLabSim {
    pub fn new(admin: &str, clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self {
            faults: Faults::default(),
            admin: admin.to_owned(),
            clock,
            tokens: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(40),
        })
    }

    pub async fn start(self: &Arc<Self>) -> std::io::Result<Running> {
        let router = Router::new()
            .route("/api/v4/personal_access_tokens/self", get(whoami))
            .route("/api/v4/personal_access_tokens", get(list_personal))
            .route(
                "/api/v4/personal_access_tokens/{token}/rotate",
                post(rotate_personal),
            )
            .route(
                "/api/v4/personal_access_tokens/{token}",
                delete(revoke_personal),
            )
            .route("/api/v4/{kind}/{owner}/access_tokens", get(list_resource))
            .route(
                "/api/v4/{kind}/{owner}/access_tokens/{token}/rotate",
                post(rotate_resource),
            )
            .route(
                "/api/v4/{kind}/{owner}/access_tokens/{token}",
                delete(revoke_resource),
            )
            .with_state(Arc::clone(self));
        super::serve(router).await
    }

    fn today(&self) -> Date {
        self.clock.now().to_zoned(TimeZone::UTC).date()
    }

    /// A live token of `owner` named `name`, expiring in `days`; returns its value.
    pub fn add_token(&self, owner: Owner, name: &str, days: i64) -> String {
        let expires_at = self
            .today()
            .checked_add(jiff::Span::new().days(days))
            .expect("a date");
        self.make(owner, name, expires_at).value
    }

    fn make(&self, owner: Owner, name: &str, expires_at: Date) -> GitLabToken {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut random = [0u8; 10];
        getrandom::fill(&mut random).expect("the OS provides randomness");
        let token = GitLabToken {
            id,
            owner,
            name: name.to_owned(),
            // GitLab's personal/project/group token prefix.
            value: format!("glpat-{}", hex::encode(random)),
            expires_at,
            revoked: false,
        };
        self.tokens
            .lock()
            .expect("lock never poisoned")
            .push(token.clone());
        token
    }

    /// Every token, live or not, as GitLab keeps them.
    pub fn tokens(&self) -> Vec<GitLabToken> {
        self.tokens.lock().expect("lock never poisoned").clone()
    }

    /// Whether `value` authenticates now.
    pub fn is_live(&self, value: &str) -> bool {
        let today = self.today();
        self.tokens()
            .iter()
            .any(|t| t.value == value && t.active(today))
    }
}

fn answer(status: StatusCode, reason: &str) -> Response {
    (
        status,
        Json(json!({"message": format!("{} {reason}", status.as_u16())})),
    )
        .into_response()
}

fn unauthorized() -> Response {
    answer(StatusCode::UNAUTHORIZED, "Unauthorized")
}

fn private_token(headers: &HeaderMap) -> Option<&str> {
    headers.get("private-token").and_then(|v| v.to_str().ok())
}

/// Everything but `self` is asked with token-rotator's own token ([PAT], [PROJECT]: a missing
/// or wrong token is `401 Unauthorized`).
fn authorized(sim: &GitLabSim, headers: &HeaderMap) -> bool {
    private_token(headers).is_some_and(|t| t == sim.admin)
}

fn owner_of(kind: &str, id: &str) -> Option<Owner> {
    match kind {
        "projects" => Some(Owner::Project(id.to_owned())),
        "groups" => Some(Owner::Group(id.to_owned())),
        _ => None,
    }
}

/// [PAT] "Get details on the personal access token used in the request": any kind of token
/// (project and group tokens belong to bot users, so they are personal tokens too). A revoked
/// or expired one does not authenticate: 401.
async fn whoami(State(sim): State<Arc<GitLabSim>>, headers: HeaderMap) -> Response {
    if let Some(fault) = sim.faults.check("self").await {
        return fault;
    }
    let today = sim.today();
    let tokens = sim.tokens();
    match tokens
        .iter()
        .find(|t| private_token(&headers) == Some(t.value.as_str()) && t.active(today))
    {
        Some(token) => Json(token.json(today)).into_response(),
        None => unauthorized(),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    user_id: Option<String>,
}

/// [PAT] list: an administrator may filter by `user_id`. Revoked and expired tokens are listed
/// too, marked `active: false`.
async fn list_personal(
    State(sim): State<Arc<GitLabSim>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    if let Some(fault) = sim.faults.check("list").await {
        return fault;
    }
    let owner = query.user_id.map(Owner::User);
    list(&sim, |t| {
        matches!(&t.owner, Owner::User(_)) && owner.as_ref().is_none_or(|o| *o == t.owner)
    })
}

/// [PROJECT], [GROUP] list: "By default both states are returned" (active and inactive).
async fn list_resource(
    State(sim): State<Arc<GitLabSim>>,
    headers: HeaderMap,
    Path((kind, owner)): Path<(String, String)>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    let Some(owner) = owner_of(&kind, &owner) else {
        return answer(StatusCode::NOT_FOUND, "Not Found");
    };
    if let Some(fault) = sim.faults.check("list").await {
        return fault;
    }
    list(&sim, |t| t.owner == owner)
}

fn list(sim: &GitLabSim, keep: impl Fn(&GitLabToken) -> bool) -> Response {
    let today = sim.today();
    let listed: Vec<Value> = sim
        .tokens()
        .iter()
        .filter(|t| keep(t))
        .map(|t| t.json(today))
        .collect();
    Json(Value::Array(listed)).into_response()
}

#[derive(Deserialize, Default)]
struct RotateQuery {
    expires_at: Option<String>,
}

async fn rotate_personal(
    State(sim): State<Arc<GitLabSim>>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Query(query): Query<RotateQuery>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    rotate(&sim, None, &token, query.expires_at).await
}

async fn rotate_resource(
    State(sim): State<Arc<GitLabSim>>,
    headers: HeaderMap,
    Path((kind, owner, token)): Path<(String, String, String)>,
    Query(query): Query<RotateQuery>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    let Some(owner) = owner_of(&kind, &owner) else {
        return answer(StatusCode::NOT_FOUND, "Not Found");
    };
    rotate(&sim, Some(owner), &token, query.expires_at).await
}

/// [PAT]/[PROJECT] rotate: "Revokes the previous token and creates a new token". 200 with the
/// new token (its value shown this once); 400 "if not rotated successfully" (a revoked or
/// expired token [ROTATE-MR], an `expires_at` not after today or past the maximum lifetime
/// [LIFETIME]); 404 for a token the administrator asks about that does not exist.
async fn rotate(
    sim: &GitLabSim,
    owner: Option<Owner>,
    token: &str,
    expires_at: Option<String>,
) -> Response {
    if let Some(fault) = sim.faults.check("rotate").await {
        return fault;
    }
    let today = sim.today();
    let expires_at = match expires_at.as_deref().map(str::parse::<Date>) {
        None => today + jiff::Span::new().days(DEFAULT_ROTATED_DAYS),
        Some(Ok(date)) => date,
        Some(Err(_)) => {
            return answer(
                StatusCode::BAD_REQUEST,
                "Bad request - expires_at is invalid",
            );
        }
    };
    let latest = today + jiff::Span::new().days(MAX_LIFETIME_DAYS);
    if expires_at <= today || expires_at > latest {
        return answer(
            StatusCode::BAD_REQUEST,
            &format!("Bad request - expires_at must be after today and on or before {latest}"),
        );
    }
    let made = {
        let mut tokens = sim.tokens.lock().expect("lock never poisoned");
        let Some(old) = tokens.iter_mut().find(|t| {
            t.id.to_string() == token
                && owner.as_ref().is_none_or(|o| *o == t.owner)
                && (owner.is_some() || matches!(t.owner, Owner::User(_)))
        }) else {
            return answer(StatusCode::NOT_FOUND, "Not Found");
        };
        if !old.active(today) {
            return answer(
                StatusCode::BAD_REQUEST,
                "Bad request - the token is not active",
            );
        }
        // Revoked before the new one exists: there is never a moment with both.
        old.revoked = true;
        (old.owner.clone(), old.name.clone())
    };
    let new = sim.make(made.0, &made.1, expires_at);
    // The rotation happened even if its answer never arrives (a dropped connection).
    if let Some(fault) = sim.faults.check("rotate-answer").await {
        return fault;
    }
    let mut body = new.json(today);
    body["token"] = new.value.into();
    Json(body).into_response()
}

async fn revoke_personal(
    State(sim): State<Arc<GitLabSim>>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    revoke(&sim, None, &token).await
}

async fn revoke_resource(
    State(sim): State<Arc<GitLabSim>>,
    headers: HeaderMap,
    Path((kind, owner, token)): Path<(String, String, String)>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    let Some(owner) = owner_of(&kind, &owner) else {
        return answer(StatusCode::NOT_FOUND, "Not Found");
    };
    revoke(&sim, Some(owner), &token).await
}

/// [PAT]/[PROJECT] revoke: 204 No Content; an unknown token is 404 (a revoked one stays
/// listed, and revoking it again is accepted: 204).
async fn revoke(sim: &GitLabSim, owner: Option<Owner>, token: &str) -> Response {
    if let Some(fault) = sim.faults.check("revoke").await {
        return fault;
    }
    let mut tokens = sim.tokens.lock().expect("lock never poisoned");
    match tokens
        .iter_mut()
        .find(|t| t.id.to_string() == token && owner.as_ref().is_none_or(|o| *o == t.owner))
    {
        Some(t) => {
            t.revoked = true;
            StatusCode::NO_CONTENT.into_response()
        }
        None => answer(StatusCode::NOT_FOUND, "Not Found"),
    }
}
