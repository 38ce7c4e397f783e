//! Listing tokens: a page at a time, oldest first, revoked ones kept, filtered by `state`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{GitLabSim, GitLabToken, Owner, authorized, not_found, unauthorized};

/// [PAGINATION]: `default_per_page = 20`, `max_per_page = 100`.
const DEFAULT_PER_PAGE: usize = 20;
const MAX_PER_PAGE: usize = 100;

/// [PAT] list: an administrator may filter by `user_id`. Revoked and expired tokens are listed
/// too, marked `active: false`, unless `state` says otherwise.
pub(super) async fn personal(
    State(sim): State<Arc<GitLabSim>>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    if let Some(fault) = sim.faults.check("list").await {
        return fault;
    }
    let owner = query.get("user_id").cloned().map(Owner::User);
    list(&sim, &headers, &uri, &query, |t| {
        matches!(&t.owner, Owner::User(_)) && owner.as_ref().is_none_or(|o| *o == t.owner)
    })
}

/// [PROJECT], [GROUP] list: "By default both states are returned" (active and inactive).
pub(super) async fn resource(
    State(sim): State<Arc<GitLabSim>>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path((kind, owner)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    let Some((owner, _)) = sim.find(&kind, &owner) else {
        return not_found(if kind == "groups" { "Group" } else { "Project" });
    };
    if let Some(fault) = sim.faults.check("list").await {
        return fault;
    }
    list(&sim, &headers, &uri, &query, |t| t.owner == owner)
}

/// A whole-number query parameter, `default` when absent; `Err`: the parameter named, which
/// Grape answers 400 for (an `Integer` parameter it cannot read).
fn number(
    query: &BTreeMap<String, String>,
    name: &'static str,
    default: usize,
) -> Result<usize, &'static str> {
    match query.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<i64>()
            .map(|n| n.max(0) as usize)
            .map_err(|_| name),
    }
}

fn list(
    sim: &GitLabSim,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    query: &BTreeMap<String, String>,
    keep: impl Fn(&GitLabToken) -> bool,
) -> Response {
    let today = sim.today();
    // gitlabhq `lib/api/helpers/personal_access_tokens_helpers.rb`, `access_token_params`:
    // `state` is `active` or `inactive` (anything else is refused, 400); the finder keeps
    // `active` (not revoked, not expired) or `inactive` (`revoked = true OR expires_at <
    // CURRENT_DATE`, gitlabhq `app/models/personal_access_token.rb`, `scope :inactive`).
    let state: fn(&GitLabToken, jiff::civil::Date) -> bool =
        match query.get("state").map(String::as_str) {
            None => |_, _| true,
            Some("active") => |t, today| t.active(today),
            Some("inactive") => |t, today| t.revoked || t.expires_at < today,
            Some(_) => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": "state does not have a valid value"})),
                )
                    .into_response();
            }
        };
    let (page, per_page) = match (
        number(query, "page", 1),
        number(query, "per_page", DEFAULT_PER_PAGE),
    ) {
        (Ok(page), Ok(per_page)) => (page.max(1), per_page.clamp(1, MAX_PER_PAGE)),
        (Err(name), _) | (_, Err(name)) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("{name} is invalid")})),
            )
                .into_response();
        }
    };
    // Oldest first: GitLab's finder sorts nothing unless asked (`sort`), so rows come in id order.
    let mut all: Vec<GitLabToken> = sim
        .tokens()
        .into_iter()
        .filter(|t| keep(t) && state(t, today))
        .collect();
    all.sort_by_key(|t| t.id);
    let total = all.len();
    let pages = total.div_ceil(per_page).max(1);
    let shown: Vec<Value> = all
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|t| t.json(today))
        .collect();
    let mut response = Json(Value::Array(shown)).into_response();
    let next = (page < pages).then_some(page + 1);
    let prev = (page > 1).then(|| page - 1);
    let link = links(headers, uri, query, per_page, prev, next, pages);
    let show = |n: Option<usize>| n.map_or_else(String::new, |n| n.to_string());
    for (name, value) in [
        ("x-per-page", per_page.to_string()),
        ("x-page", page.to_string()),
        ("x-next-page", show(next)),
        ("x-prev-page", show(prev)),
        ("link", link),
        ("x-total", total.to_string()),
        ("x-total-pages", pages.to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// [PAGINATION] `pagination_links`: prev, next, first and last, each the request's URL with
/// its parameters and that page.
fn links(
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    query: &BTreeMap<String, String>,
    per_page: usize,
    prev: Option<usize>,
    next: Option<usize>,
    last: usize,
) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let href = |page: usize| {
        let mut params = query.clone();
        params.insert("page".into(), page.to_string());
        params.insert("per_page".into(), per_page.to_string());
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("http://{host}{}?{}", uri.path(), query.join("&"))
    };
    let mut links = Vec::new();
    if let Some(p) = prev {
        links.push(format!("<{}>; rel=\"prev\"", href(p)));
    }
    if let Some(n) = next {
        links.push(format!("<{}>; rel=\"next\"", href(n)));
    }
    links.push(format!("<{}>; rel=\"first\"", href(1)));
    links.push(format!("<{}>; rel=\"last\"", href(last)));
    links.join(", ")
}
