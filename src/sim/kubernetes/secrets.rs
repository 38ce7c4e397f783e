//! Secrets: `GET` and server-side apply (`PATCH` with `application/apply-patch+yaml`,
//! `fieldManager`, `force`), Secret data base64 in JSON, `Status` objects for errors. A change of
//! a Secret's data rolls the Deployments Reloader watches (see `deployments`).
//!
//! Apply as the API server does it (kubernetes.io/docs/reference/using-api/server-side-apply/):
//! every field has its managers (`metadata.managedFields`, `FieldsV1`); applying a value another
//! manager owns is a 409 naming that manager and the field, unless the value is the same (both
//! then own it) or `force` is set (the field changes hands); fields a manager applied before and
//! leaves out are removed unless someone else owns them. An apply that creates the Secret is
//! authorised as `create` as well as `patch` (`k8s.io/apiserver/pkg/endpoints/handlers/patch.go`
//! checks create access when the object does not exist). `type` is immutable
//! (`pkg/apis/core/validation.ValidateSecretUpdate`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::validation::{dns1123_subdomain, invalid, labels, type_meta};
use super::{KubernetesSim, not_found, status};

/// The fields apply tracks in a Secret, as paths: `data.<key>`, `type`, `immutable`,
/// `metadata.annotations.<key>`, `metadata.labels.<key>`.
fn leaves(secret: &Value) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    for map in ["data", "stringData"] {
        for key in secret[map]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            paths.insert(format!("data.{key}"));
        }
    }
    for field in ["type", "immutable"] {
        if !secret[field].is_null() {
            paths.insert(field.to_owned());
        }
    }
    for map in ["annotations", "labels"] {
        for key in secret["metadata"][map]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            paths.insert(format!("metadata.{map}.{key}"));
        }
    }
    paths
}

/// The value at `path` (as [`leaves`] names it).
fn at<'a>(secret: &'a Value, path: &str) -> &'a Value {
    match path.split_once('.') {
        Some(("metadata", rest)) => {
            let (map, key) = rest.split_once('.').unwrap_or((rest, ""));
            &secret["metadata"][map][key]
        }
        Some((map, key)) => &secret[map][key],
        None => &secret[path],
    }
}

fn set(secret: &mut Value, path: &str, value: Option<Value>) {
    let (slot, key) = match path.split_once('.') {
        Some(("metadata", rest)) => {
            let (map, key) = rest.split_once('.').unwrap_or((rest, ""));
            (&mut secret["metadata"][map], key)
        }
        Some((map, key)) => (&mut secret[map], key),
        None => {
            match value {
                Some(v) => secret[path] = v,
                None => {
                    if let Some(o) = secret.as_object_mut() {
                        o.remove(path);
                    }
                }
            }
            return;
        }
    };
    if !slot.is_object() {
        *slot = json!({});
    }
    let map = slot.as_object_mut().expect("an object");
    match value {
        Some(v) => {
            map.insert(key.to_owned(), v);
        }
        None => {
            map.remove(key);
        }
    }
}

/// `FieldsV1` (`{"f:data": {"f:bearer_token": {}}}`) for a set of paths, and back.
fn fields_v1(paths: &BTreeSet<String>) -> Value {
    let mut root = Map::new();
    for path in paths {
        let parts: Vec<&str> = match path.split_once('.') {
            Some(("metadata", rest)) => {
                let (map, key) = rest.split_once('.').unwrap_or((rest, ""));
                vec!["metadata", map, key]
            }
            Some((map, key)) => vec![map, key],
            None => vec![path.as_str()],
        };
        let mut node = &mut root;
        for part in parts {
            node = node
                .entry(format!("f:{part}"))
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("an object");
        }
    }
    Value::Object(root)
}

fn paths_of(fields: &Value) -> BTreeSet<String> {
    fn walk(node: &Value, prefix: &str, out: &mut BTreeSet<String>) {
        let Some(map) = node.as_object().filter(|m| !m.is_empty()) else {
            if !prefix.is_empty() {
                out.insert(prefix.to_owned());
            }
            return;
        };
        for (k, v) in map {
            let part = k.strip_prefix("f:").unwrap_or(k);
            let path = if prefix.is_empty() {
                part.to_owned()
            } else {
                format!("{prefix}.{part}")
            };
            walk(v, &path, out);
        }
    }
    let mut out = BTreeSet::new();
    walk(fields, "", &mut out);
    out
}

/// Each manager's fields, from `metadata.managedFields`.
fn owners(secret: &Value) -> BTreeMap<String, BTreeSet<String>> {
    secret["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            Some((
                entry["manager"].as_str()?.to_owned(),
                paths_of(&entry["fieldsV1"]),
            ))
        })
        .collect()
}

fn managed_fields(owners: &BTreeMap<String, BTreeSet<String>>, time: &str) -> Value {
    let entries: Vec<Value> = owners
        .iter()
        .filter(|(_, paths)| !paths.is_empty())
        .map(|(manager, paths)| {
            json!({"manager": manager, "operation": "Apply", "apiVersion": "v1", "time": time,
                   "fieldsType": "FieldsV1", "fieldsV1": fields_v1(paths)})
        })
        .collect();
    json!(entries)
}

/// The outcome of applying `patch` as `manager` to `existing`.
enum Applied {
    Done(Value),
    Conflict(Vec<(String, String)>),
    Immutable(String),
}

fn apply(
    existing: Option<&Value>,
    patch: &Value,
    manager: &str,
    force: bool,
    time: &str,
) -> Applied {
    let mut secret = existing.cloned().unwrap_or_else(|| {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": patch["metadata"]["name"]}})
    });
    // `stringData` is write-only: the API server stores it in `data`, base64.
    let mut patch = patch.clone();
    if let Some(strings) = patch["stringData"].as_object().cloned() {
        for (k, v) in strings {
            patch["data"][k] = json!(STANDARD.encode(v.as_str().unwrap_or("")));
        }
        if let Some(o) = patch.as_object_mut() {
            o.remove("stringData");
        }
    }
    if let (Some(before), Some(after)) = (
        existing.and_then(|e| e["type"].as_str()),
        patch["type"].as_str(),
    ) && before != after
    {
        return Applied::Immutable(after.to_owned());
    }
    let applied = leaves(&patch);
    let mut owners = owners(&secret);
    let mut conflicts = Vec::new();
    for path in &applied {
        for (other, paths) in &owners {
            if other != manager && paths.contains(path) && at(&secret, path) != at(&patch, path) {
                conflicts.push((other.clone(), path.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Applied::Conflict(conflicts);
    }
    for (other, path) in &conflicts {
        if let Some(paths) = owners.get_mut(other) {
            paths.remove(path);
        }
    }
    let before = owners.remove(manager).unwrap_or_default();
    for dropped in before.difference(&applied) {
        if !owners.values().any(|paths| paths.contains(dropped)) {
            set(&mut secret, dropped, None);
        }
    }
    for path in &applied {
        set(&mut secret, path, Some(at(&patch, path).clone()));
    }
    if secret["type"].is_null() {
        secret["type"] = json!("Opaque");
    }
    owners.insert(manager.to_owned(), applied);
    secret["metadata"]["managedFields"] = managed_fields(&owners, time);
    Applied::Done(secret)
}

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
