//! Who owns which field of a Secret, as server-side apply keeps it (`metadata.managedFields`,
//! `FieldsV1`), and an apply worked out against those owners.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

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
pub(super) fn at<'a>(secret: &'a Value, path: &str) -> &'a Value {
    match path.split_once('.') {
        Some(("metadata", rest)) => {
            let (map, key) = rest.split_once('.').unwrap_or((rest, ""));
            &secret["metadata"][map][key]
        }
        Some((map, key)) => &secret[map][key],
        None => &secret[path],
    }
}

pub(super) fn set(secret: &mut Value, path: &str, value: Option<Value>) {
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
pub(super) fn owners(secret: &Value) -> BTreeMap<String, BTreeSet<String>> {
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
pub(super) enum Applied {
    Done(Value),
    Conflict(Vec<(String, String)>),
    Immutable(String),
}

pub(super) fn apply(
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
