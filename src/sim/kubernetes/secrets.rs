//! Secrets: `GET` and server-side apply (`PATCH` with `application/apply-patch+yaml`,
//! `fieldManager`, `force`), Secret data base64 in JSON, `Status` objects for errors. A change of
//! a Secret's data rolls the Deployments Reloader watches (see `deployments`).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{KubernetesSim, not_found, status};

impl KubernetesSim {
    /// The decoded value of `key` in a Secret, if both exist.
    pub fn value(&self, namespace: &str, name: &str, key: &str) -> Option<String> {
        let secrets = self.secrets.lock().expect("lock never poisoned");
        let encoded = secrets
            .get(&(namespace.to_owned(), name.to_owned()))?
            .get("data")?
            .get(key)?
            .as_str()?
            .to_owned();
        String::from_utf8(STANDARD.decode(encoded).ok()?).ok()
    }

    /// A Secret as stored, metadata and all.
    pub fn secret_object(&self, namespace: &str, name: &str) -> Option<Value> {
        let secrets = self.secrets.lock().expect("lock never poisoned");
        secrets
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Writes a Secret as Signon's kubeclient does (`lib/kubernetes/client.rb`: server-side
    /// apply, field manager `signon`, kubeclient's default `force: true`): the data is replaced
    /// and `signon` owns it; annotations others set stay.
    pub fn put(&self, namespace: &str, name: &str, key: &str, value: &str) {
        let mut secrets = self.secrets.lock().expect("lock never poisoned");
        let slot = (namespace.to_owned(), name.to_owned());
        let annotations = secrets
            .get(&slot)
            .map(|s| s["metadata"]["annotations"].clone())
            .filter(|a| !a.is_null());
        let mut secret = json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": self.next_version(),
                         "managedFields": [{"manager": "signon", "operation": "Apply"}]},
            "data": {key: STANDARD.encode(value)},
        });
        if let Some(annotations) = annotations {
            secret["metadata"]["annotations"] = annotations;
        }
        secrets.insert(slot, secret);
        drop(secrets);
        self.secret_changed(namespace, name);
    }

    pub fn names(&self) -> Vec<String> {
        let secrets = self.secrets.lock().expect("lock never poisoned");
        secrets.keys().map(|(_, name)| name.clone()).collect()
    }
}

pub(super) async fn get_secret(
    State(sim): State<Arc<KubernetesSim>>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    if let Some(fault) = sim.faults.check("get").await {
        return fault;
    }
    let secrets = sim.secrets.lock().expect("lock never poisoned");
    match secrets.get(&(namespace, name.clone())) {
        Some(secret) => Json(secret.clone()).into_response(),
        None => not_found("secrets", &name),
    }
}

#[derive(Deserialize)]
pub(super) struct ApplyQuery {
    #[serde(rename = "fieldManager")]
    field_manager: Option<String>,
    force: Option<bool>,
}

pub(super) async fn apply_secret(
    State(sim): State<Arc<KubernetesSim>>,
    Path((namespace, name)): Path<(String, String)>,
    Query(query): Query<ApplyQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(fault) = sim.faults.check("apply").await {
        return fault;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type != "application/apply-patch+yaml" {
        return status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/apply-patch+yaml; got {content_type:?}"
            ),
        );
    }
    let Some(manager) = query.field_manager.filter(|m| !m.is_empty()) else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "PATCH with apply requires fieldManager".into(),
        );
    };
    // JSON is YAML; kube sends JSON.
    let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "body is not JSON".into(),
        );
    };
    let mut secrets = sim.secrets.lock().expect("lock never poisoned");
    let key = (namespace.clone(), name.clone());
    let existing = secrets.get(&key).cloned();
    // Another manager owns the fields: a conflict unless forced, as the API server does.
    let owned_by_other = existing.as_ref().is_some_and(|s| {
        s["metadata"]["managedFields"]
            .as_array()
            .is_some_and(|m| m.iter().any(|f| f["manager"] != manager.as_str()))
    });
    if owned_by_other && query.force != Some(true) {
        return status(
            StatusCode::CONFLICT,
            "Conflict",
            "Apply failed with 1 conflict: conflict with \"signon\": .data.bearer_token".into(),
        );
    }
    let mut secret = existing.unwrap_or_else(|| {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace}})
    });
    for field in ["data", "type"] {
        if let Some(value) = patch.get(field) {
            merge(&mut secret[field], value);
        }
    }
    if let Some(annotations) = patch["metadata"].get("annotations") {
        merge(&mut secret["metadata"]["annotations"], annotations);
    }
    secret["metadata"]["resourceVersion"] = json!(sim.next_version());
    secret["metadata"]["managedFields"] = json!([{"manager": manager, "operation": "Apply"}]);
    let changed = secrets.get(&key).map(|s| &s["data"]) != Some(&secret["data"]);
    secrets.insert(key, secret.clone());
    drop(secrets);
    if changed {
        sim.secret_changed(&namespace, &name);
    }
    Json(secret).into_response()
}

fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(target), Some(patch)) => {
            for (k, v) in patch {
                target.insert(k.clone(), v.clone());
            }
        }
        _ => *target = patch.clone(),
    }
}
