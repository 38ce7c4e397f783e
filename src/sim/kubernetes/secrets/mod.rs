//! Secrets: `GET` and server-side apply (`PATCH` with `application/apply-patch+yaml`,
//! `fieldManager`, `force`), Secret data base64 in JSON, `Status` objects for errors. A change of
//! a Secret's data rolls the Deployments Reloader watches (see `deployments`).
//!
//! Apply as the API server does it (kubernetes.io/docs/reference/using-api/server-side-apply/;
//! the field bookkeeping is [`fields`]):
//! every field has its managers (`metadata.managedFields`, `FieldsV1`); applying a value another
//! manager owns is a 409 naming that manager and the field, unless the value is the same (both
//! then own it) or `force` is set (the field changes hands); fields a manager applied before and
//! leaves out are removed unless someone else owns them. An apply that creates the Secret is
//! authorised as `create` as well as `patch` (`k8s.io/apiserver/pkg/endpoints/handlers/patch.go`
//! checks create access when the object does not exist). `type` is immutable
//! (`pkg/apis/core/validation.ValidateSecretUpdate`).

use std::collections::BTreeMap;
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

use super::validation::{dns1123_subdomain, invalid, labels, type_meta};
use super::{KubernetesSim, not_found, status};

mod fields;
use fields::{Applied, apply, at, owners, set};

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
    /// apply, field manager `signon`, kubeclient's default `force: true`): `signon` then owns
    /// the key; annotations others set stay.
    pub fn put(&self, namespace: &str, name: &str, key: &str, value: &str) {
        self.put_as(namespace, name, key, value, "signon");
    }

    /// A forced apply of one key by `manager`.
    pub fn put_as(&self, namespace: &str, name: &str, key: &str, value: &str, manager: &str) {
        let patch = json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace},
            "data": {key: STANDARD.encode(value)},
        });
        let time = self.now().to_string();
        let mut secrets = self.secrets.lock().expect("lock never poisoned");
        let slot = (namespace.to_owned(), name.to_owned());
        // What else this manager applied before stays: kubeclient applies the whole Secret.
        let mut patch = patch;
        if let Some(existing) = secrets.get(&slot) {
            let mine = owners(existing).remove(manager).unwrap_or_default();
            for path in mine
                .iter()
                .filter(|p| p.starts_with("data.") && **p != format!("data.{key}"))
            {
                set(&mut patch, path, Some(at(existing, path).clone()));
            }
        }
        let Applied::Done(mut secret) = apply(secrets.get(&slot), &patch, manager, true, &time)
        else {
            unreachable!("a forced apply of an Opaque Secret's data always applies")
        };
        secret["metadata"]["namespace"] = json!(namespace);
        secret["metadata"]["resourceVersion"] = json!(self.next_version());
        let changed = secrets.get(&slot).map(|s| &s["data"]) != Some(&secret["data"]);
        secrets.insert(slot, secret);
        drop(secrets);
        if changed {
            self.secret_changed(namespace, name);
        }
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
    // JSON is YAML; kube and kubectl send JSON.
    let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "error decoding YAML: the body is neither JSON nor the YAML simulated here".into(),
        );
    };
    // An applied configuration names its type in full (server-side-apply page, "Using
    // Server-Side Apply in a controller": apiVersion and kind are required).
    if patch["apiVersion"].is_null() || patch["kind"].is_null() {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "invalid object type: /, Kind=".into(),
        );
    }
    if let Some(refused) = type_meta(&patch, "v1", "Secret") {
        return refused;
    }
    if let Some(named) = patch["metadata"]["name"].as_str()
        && named != name
    {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("the name of the object ({named}) does not match the name on the URL ({name})"),
        );
    }
    let mut errors = dns1123_subdomain("metadata.name", &name);
    errors.extend(labels("metadata.labels", &patch["metadata"]["labels"]));
    if !errors.is_empty() {
        return invalid("Secret", "", &name, &errors);
    }
    let time = sim.now().to_string();
    let mut secrets = sim.secrets.lock().expect("lock never poisoned");
    let key = (namespace.clone(), name.clone());
    let existing = secrets.get(&key).cloned();
    let mut secret = match apply(
        existing.as_ref(),
        &patch,
        &manager,
        query.force == Some(true),
        &time,
    ) {
        Applied::Done(secret) => secret,
        Applied::Immutable(new) => {
            return invalid(
                "Secret",
                "",
                &name,
                &[format!("type: Invalid value: {new:?}: field is immutable")],
            );
        }
        Applied::Conflict(conflicts) => return conflict(&conflicts),
    };
    if existing.is_none() {
        sim.record_also("create", "", "secrets", &namespace, &name);
        secret["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
        secret["metadata"]["creationTimestamp"] = json!(time);
    }
    secret["metadata"]["namespace"] = json!(namespace);
    let admission = super::Admission {
        operation: if existing.is_some() {
            "UPDATE"
        } else {
            "CREATE"
        },
        group: String::new(),
        resource: "secrets".into(),
        namespace: namespace.clone(),
        name: name.clone(),
        object: secret.clone(),
        old_object: existing.clone().unwrap_or(Value::Null),
    };
    if let Some(denied) = sim.judge(&admission) {
        return denied;
    }
    secret["metadata"]["resourceVersion"] = json!(sim.next_version());
    let changed = existing.as_ref().map(|s| &s["data"]) != Some(&secret["data"]);
    let code = if existing.is_none() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    secrets.insert(key, secret.clone());
    drop(secrets);
    if changed {
        sim.secret_changed(&namespace, &name);
    }
    (code, Json(secret)).into_response()
}

/// 409 as structured-merge-diff words it: `Apply failed with 1 conflict: conflict with
/// "signon": .data.bearer_token` (`sigs.k8s.io/structured-merge-diff/merge/conflict.go`), one
/// `FieldManagerConflict` cause per field.
fn conflict(conflicts: &[(String, String)]) -> Response {
    let dotted = |path: &str| format!(".{path}");
    let message = match conflicts {
        [(manager, path)] => format!(
            "Apply failed with 1 conflict: conflict with {manager:?}: {}",
            dotted(path)
        ),
        many => {
            let mut by: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for (manager, path) in many {
                by.entry(manager).or_default().push(dotted(path));
            }
            let parts: Vec<String> = by
                .iter()
                .map(|(manager, paths)| {
                    format!("conflicts with {manager:?}:\n- {}", paths.join("\n- "))
                })
                .collect();
            format!(
                "Apply failed with {} conflicts: {}",
                many.len(),
                parts.join("\n")
            )
        }
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(manager, path)| {
            json!({"reason": "FieldManagerConflict",
                   "message": format!("conflict with {manager:?}"), "field": dotted(path)})
        })
        .collect();
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": "Conflict", "details": {"causes": causes}, "code": 409,
    });
    (StatusCode::CONFLICT, Json(body)).into_response()
}
