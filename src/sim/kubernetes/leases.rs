//! Leases (`coordination.k8s.io/v1`): get, create, and update (`PUT`) with the optimistic
//! concurrency the API server enforces: an update whose `resourceVersion` is not the stored one
//! is refused with 409 Conflict, and so is a create of a Lease that exists.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{KubernetesSim, not_found, status};

impl KubernetesSim {
    /// Who holds the Lease now, as stored.
    pub fn lease_holder(&self, namespace: &str, name: &str) -> Option<String> {
        let leases = self.leases.lock().expect("lock never poisoned");
        leases
            .get(&(namespace.to_owned(), name.to_owned()))?
            .pointer("/spec/holderIdentity")?
            .as_str()
            .map(str::to_owned)
    }
}

pub(super) async fn get_lease(
    State(sim): State<Arc<KubernetesSim>>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    if let Some(fault) = sim.faults.check("get lease").await {
        return fault;
    }
    let leases = sim.leases.lock().expect("lock never poisoned");
    match leases.get(&(namespace, name.clone())) {
        Some(lease) => Json(lease.clone()).into_response(),
        None => not_found("leases.coordination.k8s.io", &name),
    }
}

pub(super) async fn create_lease(
    State(sim): State<Arc<KubernetesSim>>,
    Path(namespace): Path<String>,
    Json(mut lease): Json<Value>,
) -> Response {
    if let Some(fault) = sim.faults.check("create lease").await {
        return fault;
    }
    let Some(name) = lease.pointer("/metadata/name").and_then(Value::as_str) else {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "metadata.name is required".into(),
        );
    };
    let key = (namespace.clone(), name.to_owned());
    let mut leases = sim.leases.lock().expect("lock never poisoned");
    if leases.contains_key(&key) {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("leases.coordination.k8s.io \"{}\" already exists", key.1),
        );
    }
    stamp(&sim, &mut lease, &namespace);
    leases.insert(key, lease.clone());
    (StatusCode::CREATED, Json(lease)).into_response()
}

pub(super) async fn update_lease(
    State(sim): State<Arc<KubernetesSim>>,
    Path((namespace, name)): Path<(String, String)>,
    Json(mut lease): Json<Value>,
) -> Response {
    if let Some(fault) = sim.faults.check("update lease").await {
        return fault;
    }
    let mut leases = sim.leases.lock().expect("lock never poisoned");
    let Some(stored) = leases.get(&(namespace.clone(), name.clone())) else {
        return not_found("leases.coordination.k8s.io", &name);
    };
    let version = |v: &Value| {
        v.pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if version(&lease) != version(stored) {
        return status(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on leases.coordination.k8s.io \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
        );
    }
    stamp(&sim, &mut lease, &namespace);
    leases.insert((namespace, name), lease.clone());
    Json(lease).into_response()
}

fn stamp(sim: &KubernetesSim, lease: &mut Value, namespace: &str) {
    lease["apiVersion"] = "coordination.k8s.io/v1".into();
    lease["kind"] = "Lease".into();
    lease["metadata"]["namespace"] = namespace.into();
    lease["metadata"]["resourceVersion"] = sim.next_version().into();
}
