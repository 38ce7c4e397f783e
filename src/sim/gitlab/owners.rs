//! Projects and groups, found by id or full path as GitLab finds them ([FIND]).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{GitLabSim, Namespace, Owner, authorized, not_found, unauthorized};

/// [FIND] `INTEGER_ID_REGEX = /^-?\d+$/`.
fn is_integer_id(id: &str) -> bool {
    let digits = id.strip_prefix('-').unwrap_or(id);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

impl GitLabSim {
    /// The project or group `id` names under `kind` (`projects`, `groups`), with its path.
    /// A path is matched without regard to case (gitlabhq `app/models/concerns/routable.rb`,
    /// `find_by_full_path`: `LOWER(routes.path) = LOWER(?)`).
    pub(super) fn find(&self, kind: &str, id: &str) -> Option<(Owner, String)> {
        let (namespaces, make): (_, fn(String) -> Owner) = match kind {
            "projects" => (&self.projects, Owner::Project),
            "groups" => (&self.groups, Owner::Group),
            _ => return None,
        };
        let namespaces = namespaces.lock().expect("lock never poisoned");
        let found: Option<&Namespace> = if is_integer_id(id) {
            let id: i64 = id.parse().ok()?;
            namespaces.iter().find(|n| n.id as i64 == id)
        } else if kind == "projects" && !id.contains('/') {
            // [FIND] `find_project`: a project's path is looked up only if it has a `/`.
            None
        } else {
            namespaces.iter().find(|n| n.path.eq_ignore_ascii_case(id))
        };
        found.map(|n| (make(n.id.to_string()), n.path.clone()))
    }
}

/// `GET /projects/:id` and `GET /groups/:id` (docs.gitlab.com/api/projects/#get-a-single-
/// project, …/groups/#get-a-single-group): the resource with its numeric `id`, or `404
/// Project Not Found` / `404 Group Not Found`.
pub(super) async fn resource(
    State(sim): State<Arc<GitLabSim>>,
    headers: HeaderMap,
    Path((kind, id)): Path<(String, String)>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    if let Some(fault) = sim.faults.check("resolve").await {
        return fault;
    }
    match (kind.as_str(), sim.find(&kind, &id)) {
        ("projects", Some((owner, path))) => Json(json!({
            "id": owner_id(&owner), "path_with_namespace": path,
            "path": path.rsplit('/').next().unwrap_or_default(),
        }))
        .into_response(),
        ("groups", Some((owner, path))) => Json(json!({
            "id": owner_id(&owner), "full_path": path,
            "path": path.rsplit('/').next().unwrap_or_default(),
        }))
        .into_response(),
        ("projects", None) => not_found("Project"),
        ("groups", None) => not_found("Group"),
        _ => super::answer(axum::http::StatusCode::NOT_FOUND, "Not Found"),
    }
}

fn owner_id(owner: &Owner) -> u64 {
    match owner {
        Owner::User(id) | Owner::Project(id) | Owner::Group(id) => id.parse().unwrap_or(0),
    }
}
