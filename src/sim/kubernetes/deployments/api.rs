//! The Deployments' API: list (and watch, as `kubectl rollout status` does), get, and the
//! patch `kubectl rollout restart` sends, which goes through admission.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::{Admission, KubernetesSim, list_of, not_found, status};

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    #[serde(rename = "fieldSelector")]
    field_selector: Option<String>,
    watch: Option<String>,
    #[serde(rename = "timeoutSeconds")]
    timeout_seconds: Option<u64>,
}

pub(crate) async fn list(
    State(sim): State<Arc<KubernetesSim>>,
    Path(namespace): Path<String>,
    Query(query): Query<ListQuery>,
) -> Response {
    if let Some(fault) = sim.faults.check("list deployments").await {
        return fault;
    }
    // `metadata.name=<name>`: the one field selector every type supports (what `kubectl
    // rollout status` lists and watches with).
    let only = query
        .field_selector
        .as_deref()
        .and_then(|s| s.strip_prefix("metadata.name="))
        .map(str::to_owned);
    if matches!(query.watch.as_deref(), Some("true" | "1")) {
        return watch(sim, namespace, only, query.timeout_seconds);
    }
    let items = sim.read_deployments(&namespace, only.as_deref());
    list_of("DeploymentList", "apps/v1", items, sim.next_version())
}

impl KubernetesSim {
    /// Every Deployment of `namespace` (or the one named `only`), as a reader sees it.
    fn read_deployments(&self, namespace: &str, only: Option<&str>) -> Vec<Value> {
        let now = self.now();
        let mut deployments = self.deployments.lock().expect("lock never poisoned");
        deployments
            .iter_mut()
            .filter(|((ns, name), _)| ns == namespace && only.is_none_or(|o| o == name))
            .map(|(_, d)| d.read(now, || self.next_version()))
            .collect()
    }
}

/// A watch (`?watch=true`): one JSON event per line, `{"type":"MODIFIED","object":…}`, each
/// time a Deployment changes, until `timeoutSeconds` or the client goes
/// (kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes). The
/// controller looks every 100 ms while watched.
fn watch(
    sim: Arc<KubernetesSim>,
    namespace: String,
    only: Option<String>,
    timeout: Option<u64>,
) -> Response {
    let (mut tx, body) =
        http_body_util::channel::Channel::<Bytes, std::convert::Infallible>::new(16);
    tokio::spawn(async move {
        let until = tokio::time::Instant::now() + Duration::from_secs(timeout.unwrap_or(300));
        let mut seen: std::collections::BTreeMap<String, Value> = std::collections::BTreeMap::new();
        while tokio::time::Instant::now() < until {
            for object in sim.read_deployments(&namespace, only.as_deref()) {
                let name = object["metadata"]["name"].as_str().unwrap_or("").to_owned();
                let version = object["metadata"]["resourceVersion"].clone();
                let kind = match seen.insert(name, version.clone()) {
                    None => "ADDED",
                    Some(before) if before != version => "MODIFIED",
                    Some(_) => continue,
                };
                let mut line = serde_json::to_vec(&json!({"type": kind, "object": object}))
                    .unwrap_or_default();
                line.push(b'\n');
                if tx.send_data(Bytes::from(line)).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        axum::body::Body::new(body),
    )
        .into_response()
}

pub(crate) async fn get(
    State(sim): State<Arc<KubernetesSim>>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    if let Some(fault) = sim.faults.check("get deployment").await {
        return fault;
    }
    let now = sim.now();
    let mut deployments = sim.deployments.lock().expect("lock never poisoned");
    match deployments.get_mut(&(namespace, name.clone())) {
        Some(d) => Json(d.read(now, || sim.next_version())).into_response(),
        None => not_found("deployments.apps", &name),
    }
}

/// The restart patch: a merge of `spec.template.metadata.annotations`, as `kubectl rollout
/// restart` sends (strategic merge and JSON merge read the same here).
pub(crate) async fn patch(
    State(sim): State<Arc<KubernetesSim>>,
    Path((namespace, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Some(fault) = sim.faults.check("patch deployment").await {
        return fault;
    }
    let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "body is not JSON".into(),
        );
    };
    let mut deployments = sim.deployments.lock().expect("lock never poisoned");
    let Some(d) = deployments.get_mut(&(namespace.clone(), name.clone())) else {
        return not_found("deployments.apps", &name);
    };
    let new = &patch["spec"]["template"]["metadata"]["annotations"];
    let Some(new) = new.as_object() else {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "only pod template annotations are simulated".into(),
        );
    };
    let mut after = d.object.clone();
    let annotations = &mut after["spec"]["template"]["metadata"]["annotations"];
    for (k, v) in new {
        annotations[k] = v.clone();
    }
    let admission = Admission {
        operation: "UPDATE",
        group: "apps".into(),
        resource: "deployments".into(),
        namespace: namespace.clone(),
        name: name.clone(),
        object: after.clone(),
        old_object: d.object.clone(),
    };
    if let Some(denied) = sim.judge(&admission) {
        return denied;
    }
    if after != d.object {
        d.object = after;
        d.spec_changed(true);
        d.object["metadata"]["resourceVersion"] = json!(sim.next_version());
    }
    Json(d.object.clone()).into_response()
}
