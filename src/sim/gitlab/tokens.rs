//! One token: who a value is (`self`), reading one, rotating and revoking, and the family
//! revocation GitLab answers a revoked token's reuse with.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::civil::Date;
use serde::Deserialize;

use super::{
    GitLabSim, GitLabToken, MAX_LIFETIME_DAYS, Owner, answer, authorized, not_found, private_token,
    unauthorized,
};

/// [PAT] rotate: without `expires_at`, the new token "expires one week" from today.
const DEFAULT_ROTATED_DAYS: i64 = 7;

/// [PAT] "Get details on the personal access token used in the request": any kind of token
/// (project and group tokens belong to bot users, so they are personal tokens too). A revoked
/// or expired one does not authenticate: 401.
pub(super) async fn whoami(State(sim): State<Arc<GitLabSim>>, headers: HeaderMap) -> Response {
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

impl GitLabSim {
    /// Token `token` of `owner`; `None`: any token by its id (the personal access token
    /// endpoints find any `PersonalAccessToken`, bots' included: [PAT]).
    fn token_of(&self, owner: Option<&Owner>, token: &str) -> Option<GitLabToken> {
        self.tokens()
            .into_iter()
            .find(|t| t.id.to_string() == token && owner.is_none_or(|o| *o == t.owner))
    }

    /// Revokes every live token rotated, at any remove, from `token` (gitlabhq
    /// `app/services/personal_access_tokens/revoke_token_family_service.rb`: the family is
    /// the chain of `previous_personal_access_token_id`, and its active tokens are revoked).
    fn revoke_family(&self, token: u64) {
        let today = self.today();
        let mut tokens = self.tokens.lock().expect("lock never poisoned");
        let mut from = vec![token];
        while let Some(id) = from.pop() {
            for t in tokens.iter_mut().filter(|t| t.previous == Some(id)) {
                from.push(t.id);
                if t.active(today) {
                    t.revoked = true;
                }
            }
        }
    }

    /// A request to a rotation endpoint authenticated with a revoked token fails (401) and
    /// revokes that token's family: gitlabhq `lib/gitlab/auth/auth_finders.rb`,
    /// `validate_and_save_access_token!` (`REVOKED` → `revoke_token_family`, for paths matching
    /// `access_tokens/(\d+|self)/rotate$`); [PAT] "Automatic reuse detection".
    fn reused(&self, headers: &HeaderMap) -> bool {
        let Some(value) = private_token(headers) else {
            return false;
        };
        let revoked = self
            .tokens()
            .into_iter()
            .find(|t| t.value == value && t.revoked);
        if let Some(t) = &revoked {
            self.revoke_family(t.id);
        }
        revoked.is_some()
    }
}

/// [PAT] "Get single personal access token": 404 when an administrator asks for one that does
/// not exist.
pub(super) async fn get_personal(
    State(sim): State<Arc<GitLabSim>>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    get(&sim, &headers, None, &token).await
}

/// [PROJECT]/[GROUP] "Get a project access token": 404 for one that does not exist.
pub(super) async fn get_resource(
    State(sim): State<Arc<GitLabSim>>,
    headers: HeaderMap,
    Path((kind, owner, token)): Path<(String, String, String)>,
) -> Response {
    let Some((owner, _)) = sim.find(&kind, &owner) else {
        return not_found(if kind == "groups" { "Group" } else { "Project" });
    };
    get(&sim, &headers, Some(owner), &token).await
}

async fn get(sim: &GitLabSim, headers: &HeaderMap, owner: Option<Owner>, token: &str) -> Response {
    if !authorized(sim, headers) {
        return unauthorized();
    }
    if let Some(fault) = sim.faults.check("token").await {
        return fault;
    }
    match sim.token_of(owner.as_ref(), token) {
        Some(t) => Json(t.json(sim.today())).into_response(),
        None => not_found("Token"),
    }
}

#[derive(Deserialize, Default)]
pub(super) struct RotateQuery {
    expires_at: Option<String>,
}

pub(super) async fn rotate_personal(
    State(sim): State<Arc<GitLabSim>>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Query(query): Query<RotateQuery>,
) -> Response {
    if sim.reused(&headers) || !authorized(&sim, &headers) {
        return unauthorized();
    }
    rotate(&sim, None, &token, query.expires_at).await
}

pub(super) async fn rotate_resource(
    State(sim): State<Arc<GitLabSim>>,
    headers: HeaderMap,
    Path((kind, owner, token)): Path<(String, String, String)>,
    Query(query): Query<RotateQuery>,
) -> Response {
    if sim.reused(&headers) || !authorized(&sim, &headers) {
        return unauthorized();
    }
    let Some((owner, _)) = sim.find(&kind, &owner) else {
        return not_found(if kind == "groups" { "Group" } else { "Project" });
    };
    rotate(&sim, Some(owner), &token, query.expires_at).await
}

/// [PAT]/[PROJECT] rotate: "Revokes the previous token and creates a new token". 200 with the
/// new token (its value shown this once); 400 "if not rotated successfully"; 404 for a token
/// the administrator asks about that does not exist.
async fn rotate(
    sim: &GitLabSim,
    owner: Option<Owner>,
    token: &str,
    expires_at: Option<String>,
) -> Response {
    if let Some(fault) = sim.faults.check("rotate").await {
        return fault;
    }
    let (today_utc, today) = (sim.today(), sim.today_here());
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
    // [LIFETIME]; gitlabhq `app/models/personal_access_token.rb`,
    // `expires_at_before_instance_max_expiry_date`: at most `Date.current` (the instance's
    // today, in its time zone) plus the maximum lifetime.
    let latest = today + jiff::Span::new().days(MAX_LIFETIME_DAYS);
    if expires_at <= today || expires_at > latest {
        return answer(
            StatusCode::BAD_REQUEST,
            &format!("Bad request - expires_at must be after today and on or before {latest}"),
        );
    }
    let Some(old) = sim.token_of(owner.as_ref(), token) else {
        return not_found("");
    };
    // gitlabhq `app/services/personal_access_tokens/rotate_service.rb:18` ("Token already
    // revoked"), and rotating a revoked token revokes its family's live tokens: "If you
    // attempt to use this endpoint to rotate a token that was previously revoked, any active
    // tokens from the same token family are revoked" ([PROJECT] rotate; gitlabhq
    // `lib/api/resource_access_tokens.rb`, the rotate endpoint's description).
    if old.revoked {
        sim.revoke_family(old.id);
        return answer(
            StatusCode::BAD_REQUEST,
            "Bad request - Token already revoked",
        );
    }
    // [ROTATE-MR]: an expired token is not rotated either.
    if !old.active(today_utc) {
        return answer(
            StatusCode::BAD_REQUEST,
            "Bad request - the token is not active",
        );
    }
    // Revoked before the new one exists: there is never a moment with both.
    sim.tokens
        .lock()
        .expect("lock never poisoned")
        .iter_mut()
        .filter(|t| t.id == old.id)
        .for_each(|t| t.revoked = true);
    let new = sim.make(old.owner.clone(), &old.name, expires_at, Some(old.id));
    // The rotation happened even if its answer never arrives (a dropped connection).
    if let Some(fault) = sim.faults.check("rotate-answer").await {
        return fault;
    }
    let mut body = new.json(today_utc);
    body["token"] = new.value.into();
    Json(body).into_response()
}

pub(super) async fn revoke_personal(
    State(sim): State<Arc<GitLabSim>>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    revoke(&sim, None, &token).await
}

pub(super) async fn revoke_resource(
    State(sim): State<Arc<GitLabSim>>,
    headers: HeaderMap,
    Path((kind, owner, token)): Path<(String, String, String)>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    let Some((owner, _)) = sim.find(&kind, &owner) else {
        return not_found(if kind == "groups" { "Group" } else { "Project" });
    };
    revoke(&sim, Some(owner), &token).await
}

/// [PAT]/[PROJECT] revoke: 204 No Content; an unknown token is 404. It revokes that token only
/// (gitlabhq `app/services/personal_access_tokens/revoke_service.rb`: `token.revoke!`); a
/// revoked one stays listed, and revoking it again is accepted: 204.
async fn revoke(sim: &GitLabSim, owner: Option<Owner>, token: &str) -> Response {
    if let Some(fault) = sim.faults.check("revoke").await {
        return fault;
    }
    let Some(found) = sim.token_of(owner.as_ref(), token) else {
        return not_found("");
    };
    sim.tokens
        .lock()
        .expect("lock never poisoned")
        .iter_mut()
        .filter(|t| t.id == found.id)
        .for_each(|t| t.revoked = true);
    StatusCode::NO_CONTENT.into_response()
}
