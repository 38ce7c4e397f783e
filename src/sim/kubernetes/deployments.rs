//! Deployments: list, get, and the patch `kubectl rollout restart` sends. A change to a pod
//! template bumps `generation`; whether the rollout then finishes is the test's [`Rollout`].
//! Reloader is played too: a Deployment annotated `reloader.stakater.com/auto: "true"` rolls when
//! a Secret it reads changes.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{KubernetesSim, list_of, not_found, status};

/// What a Deployment does when its pod template changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollout {
    /// New pods become available: `updatedReplicas == availableReplicas == replicas`.
    Finishes,
    /// New pods never become ready (bad image, crash loop): the rollout never finishes.
    Stuck,
}

pub(super) struct SimDeployment {
    object: Value,
    rollout: Rollout,
}

/// How a pod template reads the Secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretUse {
    /// `env[].valueFrom.secretKeyRef` (GOV.UK's way).
    Env,
    EnvFrom,
    Volume,
}

impl KubernetesSim {
    /// A Deployment of 2 replicas, fully rolled out, whose pods read `secret` as `how` says.
    pub fn add_deployment(
        &self,
        namespace: &str,
        name: &str,
        secret: &str,
        how: SecretUse,
        reloader: bool,
        rollout: Rollout,
    ) {
        let mut container = json!({"name": "app", "image": format!("{name}:1")});
        let mut pod_spec = json!({});
        match how {
            SecretUse::Env => {
                container["env"] = json!([{"name": "PUBLISHING_API_BEARER_TOKEN",
                    "valueFrom": {"secretKeyRef": {"name": secret, "key": "bearer_token"}}}]);
            }
            SecretUse::EnvFrom => {
                container["envFrom"] = json!([{"secretRef": {"name": secret}}]);
            }
            SecretUse::Volume => {
                container["volumeMounts"] = json!([{"name": "token", "mountPath": "/token"}]);
                pod_spec["volumes"] = json!([{"name": "token", "secret": {"secretName": secret}}]);
            }
        }
        pod_spec["containers"] = json!([container]);
        let annotations = if reloader {
            json!({"reloader.stakater.com/auto": "true"})
        } else {
            json!({})
        };
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "generation": 1,
                         "annotations": annotations, "resourceVersion": self.next_version()},
            "spec": {"replicas": 2, "progressDeadlineSeconds": 600,
                     "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}, "annotations": {}},
                                  "spec": pod_spec}},
            "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2,
                       "readyReplicas": 2, "availableReplicas": 2},
        });
        self.deployments
            .lock()
            .expect("lock never poisoned")
            .insert(
                (namespace.to_owned(), name.to_owned()),
                SimDeployment {
                    object: deployment,
                    rollout,
                },
            );
    }

    /// A Deployment's `generation`: how many times its pod template changed, plus one.
    pub fn generation(&self, namespace: &str, name: &str) -> i64 {
        let deployments = self.deployments.lock().expect("lock never poisoned");
        deployments
            .get(&(namespace.to_owned(), name.to_owned()))
            .and_then(|d| d.object["metadata"]["generation"].as_i64())
            .unwrap_or(0)
    }

    /// Reloader: Deployments that watch their Secrets roll when `secret` changes.
    pub(super) fn secret_changed(&self, namespace: &str, secret: &str) {
        let mut deployments = self.deployments.lock().expect("lock never poisoned");
        for ((ns, _), d) in deployments.iter_mut() {
            let watched =
                d.object["metadata"]["annotations"]["reloader.stakater.com/auto"] == "true";
            if ns == namespace && watched && reads(&d.object, secret) {
                d.object["spec"]["template"]["metadata"]["annotations"]["reloader.stakater.com/last-reloaded-from"] =
                    json!(secret);
                rolled(d);
            }
        }
    }
}

/// Whether the pod template reads `secret` (env, envFrom or a volume).
fn reads(deployment: &Value, secret: &str) -> bool {
    let spec = &deployment["spec"]["template"]["spec"];
    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    containers.iter().any(|c| {
        c["env"].as_array().is_some_and(|env| {
            env.iter()
                .any(|e| e["valueFrom"]["secretKeyRef"]["name"] == secret)
        }) || c["envFrom"]
            .as_array()
            .is_some_and(|from| from.iter().any(|f| f["secretRef"]["name"] == secret))
    }) || spec["volumes"]
        .as_array()
        .is_some_and(|v| v.iter().any(|v| v["secret"]["secretName"] == secret))
}

/// A new pod template: a new generation, and a rollout that finishes or sticks.
fn rolled(d: &mut SimDeployment) {
    let generation = d.object["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
    d.object["metadata"]["generation"] = json!(generation);
    let replicas = d.object["spec"]["replicas"].as_i64().unwrap_or(1);
    let (updated, available) = match d.rollout {
        Rollout::Finishes => (replicas, replicas),
        Rollout::Stuck => (1, replicas - 1),
    };
    d.object["status"] = json!({
        "observedGeneration": generation, "replicas": replicas, "updatedReplicas": updated,
        "readyReplicas": available, "availableReplicas": available,
    });
}

pub(super) async fn list(
    State(sim): State<Arc<KubernetesSim>>,
    Path(namespace): Path<String>,
) -> Response {
    if let Some(fault) = sim.faults.check("list deployments").await {
        return fault;
    }
    let deployments = sim.deployments.lock().expect("lock never poisoned");
    let items = deployments
        .iter()
        .filter(|((ns, _), _)| *ns == namespace)
        .map(|(_, d)| d.object.clone())
        .collect();
    list_of("DeploymentList", "apps/v1", items, sim.next_version())
}

pub(super) async fn get(
    State(sim): State<Arc<KubernetesSim>>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    if let Some(fault) = sim.faults.check("get deployment").await {
        return fault;
    }
    let deployments = sim.deployments.lock().expect("lock never poisoned");
    match deployments.get(&(namespace, name.clone())) {
        Some(d) => Json(d.object.clone()).into_response(),
        None => not_found("deployments.apps", &name),
    }
}

/// The restart patch: a merge of `spec.template.metadata.annotations`, as `kubectl rollout
/// restart` sends (strategic merge and JSON merge read the same here).
pub(super) async fn patch(
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
    let Some(d) = deployments.get_mut(&(namespace, name.clone())) else {
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
    let annotations = &mut d.object["spec"]["template"]["metadata"]["annotations"];
    let before = annotations.clone();
    for (k, v) in new {
        annotations[k] = v.clone();
    }
    if *annotations != before {
        rolled(d);
    }
    Json(d.object.clone()).into_response()
}
