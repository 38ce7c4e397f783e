//! The simulator's HTTP side: the admin contract of `docs/signon-admin-api.md` and `/user.json`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{Refusal, SignonSim, bearer};

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

/// The admin contract's answer to a refusal: 404 for what does not exist, 422 for what Signon
/// will not do (`docs/signon-admin-api.md`).
fn refused(refusal: Refusal) -> Response {
    let status = match refusal.code {
        "api_user_unknown" | "application_unknown" | "token_unknown" => StatusCode::NOT_FOUND,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    (
        status,
        Json(json!({"error": refusal.message, "refused": refusal.code})),
    )
        .into_response()
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    api_user: String,
    application: String,
}

pub(super) async fn list(
    State(sim): State<Arc<SignonSim>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    if let Some(fault) = sim.faults.check("list").await {
        return fault;
    }
    if !sim.authorised(&headers) {
        return error(StatusCode::UNAUTHORIZED, "admin token required");
    }
    match sim.admin_list(&query.api_user, &query.application, None) {
        Ok(listing) => Json(listing).into_response(),
        Err(refusal) => refused(refusal),
    }
}

#[derive(Deserialize)]
pub(super) struct MintBody {
    api_user: String,
    application: String,
    expires_in: u64,
    idempotency_key: String,
}

pub(super) async fn mint(
    State(sim): State<Arc<SignonSim>>,
    headers: HeaderMap,
    Json(body): Json<MintBody>,
) -> Response {
    if let Some(fault) = sim.faults.check("mint").await {
        return fault;
    }
    if !sim.authorised(&headers) {
        return error(StatusCode::UNAUTHORIZED, "admin token required");
    }
    if body.idempotency_key.is_empty() || body.expires_in == 0 {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key and expires_in are required",
        );
    }
    match sim.admin_mint(
        &body.api_user,
        &body.application,
        Duration::from_secs(body.expires_in),
        &body.idempotency_key,
    ) {
        Ok((t, created)) => (
            if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            Json(json!({
                "id": t.id.to_string(), "token": t.value, "expires_at": t.expires_at,
                // Whom it was made for, as the lookups matched them (any spelling, as MySQL).
                "resolved": {"email": t.api_user, "application": t.application},
            })),
        )
            .into_response(),
        Err(refusal) => refused(refusal),
    }
}

pub(super) async fn revoke(
    State(sim): State<Arc<SignonSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(fault) = sim.faults.check("revoke").await {
        return fault;
    }
    if !sim.authorised(&headers) {
        return error(StatusCode::UNAUTHORIZED, "admin token required");
    }
    match sim.admin_revoke(None, None, &id) {
        Ok(_) => Json(json!({"id": id, "revoked": true})).into_response(),
        Err(refusal) => refused(refusal),
    }
}

#[derive(Deserialize)]
pub(super) struct UserQuery {
    client_id: Option<String>,
}

pub(super) async fn user_json(
    State(sim): State<Arc<SignonSim>>,
    headers: HeaderMap,
    Query(query): Query<UserQuery>,
) -> Response {
    if let Some(fault) = sim.faults.check("user.json").await {
        return fault;
    }
    let now = sim.clock.now();
    let mut world = sim.world();
    let Some(value) = bearer(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Some(token) = world.tokens.iter().find(|t| t.value == value).cloned() else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    *world.verifications.entry(token.id).or_default() += 1;
    let app_uid = world
        .apps
        .iter()
        .find(|a| a.name == token.application)
        .map(|a| a.uid.clone());
    // `app/controllers/oauth_users_controller.rb`: `doorkeeper_authorize!` (a live token: not
    // revoked, not expired), then `validate_token_matches_client_id` (`head :unauthorized`: a
    // 401 with an empty body when client_id is not the token's application's uid).
    let wrong_app = query.client_id.is_some() && query.client_id != app_uid;
    if token.revoked || token.expires_at <= now || wrong_app {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let user = world.users.get(&token.api_user);
    let name = user.map(|u| u.name.clone()).unwrap_or_default();
    // `app/presenters/user_o_auth_presenter.rb`: `disabled: user.suspended?`, and
    // `permissions` is `[]` for a suspended user, else `user.permissions_for(application)`
    // (the token's application: `OauthUsersController#show` passes
    // `application_making_request`). Signon still answers 200 (only `doorkeeper_authorize!`
    // and the client_id check above refuse, with 401); gds-sso is what turns a missing
    // `signin` away (`lib/gds-sso/controller_methods.rb`, `authorise_user!`).
    let suspended = user.is_some_and(|u| u.suspended);
    let signin = user.is_some_and(|u| u.signin.contains(&token.application));
    let permissions: Vec<&str> = if !suspended && signin {
        vec!["signin"]
    } else {
        vec![]
    };
    Json(json!({"user": {
        "uid": format!("user-{}", token.id),
        "name": name,
        "email": token.api_user,
        "permissions": permissions,
        "disabled": suspended,
    }}))
    .into_response()
}
