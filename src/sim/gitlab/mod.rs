//! GitLab's access token API, as GitLab's own pages and source describe it. Each rule cites its
//! source:
//!
//! - [PAT] https://docs.gitlab.com/api/personal_access_tokens/ (list, get, `self`, rotate,
//!   revoke, automatic reuse detection)
//! - [PROJECT] https://docs.gitlab.com/api/project_access_tokens/ (list, get, rotate, revoke)
//! - [GROUP] https://docs.gitlab.com/api/group_access_tokens/ (the same, for groups)
//! - [LIFETIME] https://docs.gitlab.com/user/profile/personal_access_tokens/ (every token has
//!   an expiry, at most the instance's maximum lifetime: 365 days by default; tokens "expire on
//!   the date you define, at midnight UTC")
//! - [ROTATE-MR] https://gitlab.com/gitlab-org/gitlab/-/merge_requests/119631 (GitLab's change):
//!   rotation revokes the token it is given before it makes the new one; only a live token can
//!   be rotated.
//! - [PAGINATION] https://docs.gitlab.com/api/rest/#pagination, and gitlabhq
//!   `lib/gitlab/pagination/offset_header_builder.rb` (the headers) and
//!   `config/initializers/kaminari_config.rb:4-5` (20 a page by default, at most 100).
//! - [FIND] gitlabhq `lib/api/helpers.rb`, `find_project`/`find_group`: an id matching
//!   `INTEGER_ID_REGEX = /^-?\d+$/` is looked up as an id, anything else as a full path (a
//!   project's only if it has a `/`); `lib/api/api.rb`'s `NAMESPACE_OR_PROJECT_REQUIREMENTS`
//!   keeps `:id` to one path segment, so a path's `/` arrives encoded as `%2F`.
//!
//! The error bodies are GitLab's `{"message": "<status> <reason>"}` shape; past the status, the
//! wording is ours and the client must not depend on it.

mod list;
mod owners;
mod tokens;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

use super::{Faults, Running};
use crate::clock::Clock;

/// [LIFETIME]: the default maximum lifetime of an access token.
pub const MAX_LIFETIME_DAYS: i64 = 365;

/// Whose token it is: a user's personal token, or a project's or group's bot token, by the
/// owner's numeric id.
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
    /// The token this one was rotated from: the chain of these is its family ([PAT],
    /// "Automatic reuse detection"; gitlabhq `previous_personal_access_token_id`).
    pub previous: Option<u64>,
}

impl GitLabToken {
    /// [PAT] `active`: neither revoked nor expired. It expires at the start of its date, UTC:
    /// gitlabhq `app/models/concerns/expirable.rb:12-14` (`expires_at <= Time.current`, a
    /// date compared as midnight UTC), [LIFETIME] "at midnight UTC".
    fn active(&self, today_utc: Date) -> bool {
        !self.revoked && self.expires_at > today_utc
    }

    fn json(&self, today_utc: Date) -> Value {
        json!({
            "id": self.id, "name": self.name, "revoked": self.revoked,
            "active": self.active(today_utc), "expires_at": self.expires_at.to_string(),
            "scopes": ["api"], "created_at": "2026-01-05T09:00:00.000Z",
            "user_id": match &self.owner { Owner::User(id) => id.parse().unwrap_or(0), _ => 900 },
        })
    }
}

/// A project or a group, by id and full path.
#[derive(Debug, Clone)]
struct Namespace {
    id: u64,
    path: String,
}

pub struct GitLabSim {
    pub faults: Faults,
    /// The token token-rotator authenticates with (an administrator's, or a maintainer's).
    admin: String,
    clock: Arc<dyn Clock>,
    /// The instance's time zone (`gitlab_rails['time_zone']`): its today is where the maximum
    /// lifetime is counted from.
    zone: Mutex<TimeZone>,
    tokens: Mutex<Vec<GitLabToken>>,
    projects: Mutex<Vec<Namespace>>,
    groups: Mutex<Vec<Namespace>>,
    next_id: AtomicU64,
}

impl GitLabSim {
    pub fn new(admin: &str, clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self {
            faults: Faults::default(),
            admin: admin.to_owned(),
            clock,
            zone: Mutex::new(TimeZone::UTC),
            tokens: Mutex::new(Vec::new()),
            projects: Mutex::new(Vec::new()),
            groups: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(40),
        })
    }

    pub async fn start(self: &Arc<Self>) -> std::io::Result<Running> {
        let router = Router::new()
            .route("/api/v4/personal_access_tokens/self", get(tokens::whoami))
            .route("/api/v4/personal_access_tokens", get(list::personal))
            .route(
                "/api/v4/personal_access_tokens/{token}",
                get(tokens::get_personal).delete(tokens::revoke_personal),
            )
            .route(
                "/api/v4/personal_access_tokens/{token}/rotate",
                post(tokens::rotate_personal),
            )
            .route("/api/v4/{kind}/{owner}", get(owners::resource))
            .route("/api/v4/{kind}/{owner}/access_tokens", get(list::resource))
            .route(
                "/api/v4/{kind}/{owner}/access_tokens/{token}",
                get(tokens::get_resource).delete(tokens::revoke_resource),
            )
            .route(
                "/api/v4/{kind}/{owner}/access_tokens/{token}/rotate",
                post(tokens::rotate_resource),
            )
            .with_state(Arc::clone(self));
        super::serve(router).await
    }

    /// The instance's time zone is `zone` (UTC unless set).
    pub fn set_time_zone(&self, zone: TimeZone) {
        *self.zone.lock().expect("lock never poisoned") = zone;
    }

    /// Today as UTC has it: where expiry is judged.
    fn today(&self) -> Date {
        self.clock.now().to_zoned(TimeZone::UTC).date()
    }

    /// Today in the instance's time zone (`Date.current`): where the lifetime limit is counted.
    fn today_here(&self) -> Date {
        let zone = self.zone.lock().expect("lock never poisoned").clone();
        self.clock.now().to_zoned(zone).date()
    }

    /// A project `id` at full path `path` (`group/project`); returns it as a token owner.
    pub fn add_project(&self, id: u64, path: &str) -> Owner {
        self.projects
            .lock()
            .expect("lock never poisoned")
            .push(Namespace {
                id,
                path: path.to_owned(),
            });
        Owner::Project(id.to_string())
    }

    /// A group `id` at full path `path`; returns it as a token owner.
    pub fn add_group(&self, id: u64, path: &str) -> Owner {
        self.groups
            .lock()
            .expect("lock never poisoned")
            .push(Namespace {
                id,
                path: path.to_owned(),
            });
        Owner::Group(id.to_string())
    }

    /// A live token of `owner` named `name`, expiring in `days`; returns its value.
    pub fn add_token(&self, owner: Owner, name: &str, days: i64) -> String {
        let expires_at = self
            .today()
            .checked_add(jiff::Span::new().days(days))
            .expect("a date");
        self.make(owner, name, expires_at, None).value
    }

    /// A token of `owner` named `name` that was revoked (GitLab keeps it, listed as inactive).
    pub fn add_revoked(&self, owner: Owner, name: &str) {
        let made = self.make(owner, name, self.today() + jiff::Span::new().days(30), None);
        self.tokens
            .lock()
            .expect("lock never poisoned")
            .iter_mut()
            .filter(|t| t.id == made.id)
            .for_each(|t| t.revoked = true);
    }

    fn make(
        &self,
        owner: Owner,
        name: &str,
        expires_at: Date,
        previous: Option<u64>,
    ) -> GitLabToken {
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
            previous,
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

fn not_found(what: &str) -> Response {
    let reason = match what {
        "" => "Not Found".to_owned(),
        what => format!("{what} Not Found"),
    };
    answer(StatusCode::NOT_FOUND, &reason)
}

fn private_token(headers: &HeaderMap) -> Option<&str> {
    headers.get("private-token").and_then(|v| v.to_str().ok())
}

/// Everything but `self` is asked with token-rotator's own token ([PAT], [PROJECT]: a missing
/// or wrong token is `401 Unauthorized`).
fn authorized(sim: &GitLabSim, headers: &HeaderMap) -> bool {
    private_token(headers).is_some_and(|t| t == sim.admin)
}
