//! Deployments: a Deployment controller, a HorizontalPodAutoscaler and Reloader acting on them;
//! their API (list, watch, get, the restart patch) is [`api`].
//!
//! The controller, as kubernetes.io/docs/concepts/workloads/controllers/deployment/ describes it:
//! - a spec change bumps `metadata.generation`; the controller has not seen it until
//!   `status.observedGeneration` catches up (one read later here: status lags);
//! - a pod template change makes a new ReplicaSet: `deployment.kubernetes.io/revision` goes up
//!   and the new pods replace the old ones one at a time (maxSurge 25%: one extra pod),
//!   `updatedReplicas` and `availableReplicas` moving gradually; a change of `replicas` alone
//!   (the HPA) makes no new ReplicaSet and restarts no pod;
//! - the `Progressing` condition: `NewReplicaSetCreated`/`ReplicaSetUpdated` while pods become
//!   available, `NewReplicaSetAvailable` when done, and `status: "False"`,
//!   `reason: ProgressDeadlineExceeded` once `progressDeadlineSeconds` pass without progress
//!   (#failed-deployment), by the simulator's clock.
//!
//! Reloader (github.com/stakater/Reloader README): a Deployment annotated
//! `reloader.stakater.com/auto: "true"` (GOV.UK's chart sets it:
//! `charts/generic-govuk-app/templates/deployment.yaml`), `secret.reloader.stakater.com/auto:
//! "true"`, or naming the Secret in `secret.reloader.stakater.com/reload` rolls when a Secret
//! it reads changes.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::KubernetesSim;

mod api;
pub(super) use api::{get, list, patch};

pub const REVISION: &str = "deployment.kubernetes.io/revision";

/// How a Deployment's new pods come up when its pod template changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollout {
    /// One more new pod is available at each look.
    Finishes,
    /// Healthy but slow: each new pod becomes available this long after the one before
    /// (within `progressDeadlineSeconds`, so the controller sees progress).
    Slow(Duration),
    /// The first new pod never becomes ready (bad image, crash loop): the controller reports
    /// `ProgressDeadlineExceeded` once the deadline passes.
    Stuck,
    /// No Deployment controller looks at it (kube-controller-manager down): its status never
    /// moves, so no verdict ever comes.
    Unobserved,
}

/// A rollout under way: how many new pods are available, and when the last one became so.
struct Progress {
    available: i64,
    since: Timestamp,
}

pub(super) struct SimDeployment {
    object: Value,
    rollout: Rollout,
    /// The template changed and the controller has not yet made the new ReplicaSet.
    template_changed: bool,
    progress: Option<Progress>,
}

/// How a pod template reads the Secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretUse {
    /// `env[].valueFrom.secretKeyRef` (GOV.UK's way).
    Env,
    EnvFrom,
    Volume,
}

fn condition(type_: &str, status: &str, reason: &str, message: String, now: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message,
           "lastUpdateTime": now, "lastTransitionTime": now})
}

impl SimDeployment {
    pub(super) fn object(&self) -> &Value {
        &self.object
    }

    fn name(&self) -> String {
        self.object["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    fn replicas(&self) -> i64 {
        self.object["spec"]["replicas"].as_i64().unwrap_or(1)
    }

    fn revision(&self) -> i64 {
        self.object["metadata"]["annotations"][REVISION]
            .as_str()
            .and_then(|r| r.parse().ok())
            .unwrap_or(1)
    }

    /// A spec change: a new generation the controller has yet to observe.
    fn spec_changed(&mut self, template: bool) {
        let generation = self.object["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
        self.object["metadata"]["generation"] = json!(generation);
        self.template_changed |= template;
    }

    /// One look by the Deployment controller at `now`.
    fn reconcile(&mut self, now: Timestamp) {
        if self.rollout == Rollout::Unobserved {
            return;
        }
        let at = now.to_string();
        // Paused (`spec.paused`): the controller observes the spec but makes no new ReplicaSet
        // for a changed template (`pkg/controller/deployment/deployment_controller.go`:
        // `if d.Spec.Paused { return dc.sync(ctx, d, rsList) }`, and `sync` does not create
        // one), sets `Progressing` to `Unknown`/`DeploymentPaused` "Deployment is paused"
        // (`sync.go`, `checkPausedConditions`) and checks no progress deadline ("If you pause
        // a Deployment rollout, Kubernetes does not check progress against your specified
        // deadline", kubernetes.io/docs/concepts/workloads/controllers/deployment/).
        if self.object["spec"]["paused"] == true {
            let generation = self.object["metadata"]["generation"].clone();
            let status = &mut self.object["status"];
            status["observedGeneration"] = generation;
            let mut conditions: Vec<Value> = status["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|c| c["type"] != "Progressing")
                .collect();
            conditions.push(condition(
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused".into(),
                &at,
            ));
            status["conditions"] = json!(conditions);
            return;
        }
        let name = self.name();
        let replicas = self.replicas();
        let generation = self.object["metadata"]["generation"].as_i64().unwrap_or(1);
        let observed = self.object["status"]["observedGeneration"]
            .as_i64()
            .unwrap_or(0);
        let revision = self.revision();
        let deadline = self.object["spec"]["progressDeadlineSeconds"]
            .as_i64()
            .unwrap_or(600);
        let mut progressing = None;
        if observed < generation {
            self.object["status"]["observedGeneration"] = json!(generation);
            if std::mem::take(&mut self.template_changed) {
                let revision = self.revision() + 1;
                self.object["metadata"]["annotations"][REVISION] = json!(revision.to_string());
                self.progress = Some(Progress {
                    available: 0,
                    since: now,
                });
                progressing = Some(condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetCreated",
                    format!("Created new replica set \"{name}-{revision}\""),
                    &at,
                ));
            }
        } else if let Some(progress) = &mut self.progress {
            let step = match self.rollout {
                Rollout::Finishes => true,
                Rollout::Slow(each) => {
                    now.duration_since(progress.since)
                        >= SignedDuration::try_from(each).unwrap_or_default()
                }
                Rollout::Stuck | Rollout::Unobserved => false,
            };
            if step {
                progress.available += 1;
                progress.since = now;
                progressing = Some(condition(
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    format!("ReplicaSet \"{name}-{revision}\" is progressing."),
                    &at,
                ));
            } else {
                if now.duration_since(progress.since) > SignedDuration::from_secs(deadline) {
                    progressing = Some(condition(
                        "Progressing",
                        "False",
                        "ProgressDeadlineExceeded",
                        format!("ReplicaSet \"{name}-{revision}\" has timed out progressing."),
                        &at,
                    ));
                }
            }
            if progress.available >= replicas {
                self.progress = None;
                progressing = Some(condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    format!("ReplicaSet \"{name}-{revision}\" has successfully progressed."),
                    &at,
                ));
            }
        }
        // While new pods come up: one surge pod not yet available beside the old ones left.
        let (total, updated, available) = match &self.progress {
            Some(p) => (replicas + 1, (p.available + 1).min(replicas), replicas),
            None => (replicas, replicas, replicas),
        };
        let status = &mut self.object["status"];
        status["replicas"] = json!(total);
        status["updatedReplicas"] = json!(updated);
        status["readyReplicas"] = json!(available);
        status["availableReplicas"] = json!(available);
        status["unavailableReplicas"] = json!(total - available);
        if let Some(progressing) = progressing {
            let mut conditions: Vec<Value> = status["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|c| c["type"] != "Progressing")
                .collect();
            conditions.push(progressing);
            status["conditions"] = json!(conditions);
        }
    }

    /// What a reader sees: the state the controller reached at its last look; then it looks
    /// (a change is a new `resourceVersion`, from `version`).
    fn read(&mut self, now: Timestamp, version: impl FnOnce() -> String) -> Value {
        let seen = self.object.clone();
        self.reconcile(now);
        let mut before = seen.clone();
        before["metadata"]["resourceVersion"] = self.object["metadata"]["resourceVersion"].clone();
        if before != self.object {
            self.object["metadata"]["resourceVersion"] = json!(version());
        }
        seen
    }
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
        let mut annotations = json!({REVISION: "1"});
        if reloader {
            annotations["reloader.stakater.com/auto"] = json!("true");
        }
        let now = self.now().to_string();
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "generation": 1,
                         "uid": uuid::Uuid::new_v4().to_string(), "creationTimestamp": now,
                         "annotations": annotations, "resourceVersion": self.next_version()},
            "spec": {"replicas": 2, "progressDeadlineSeconds": 600, "revisionHistoryLimit": 2,
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                     "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}, "annotations": {}},
                                  "spec": pod_spec}},
            "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2,
                       "readyReplicas": 2, "availableReplicas": 2, "conditions": [
                condition("Available", "True", "MinimumReplicasAvailable",
                          "Deployment has minimum availability.".into(), &now),
                condition("Progressing", "True", "NewReplicaSetAvailable",
                          format!("ReplicaSet \"{name}-1\" has successfully progressed."), &now),
            ]},
        });
        self.deployments
            .lock()
            .expect("lock never poisoned")
            .insert(
                (namespace.to_owned(), name.to_owned()),
                SimDeployment {
                    object: deployment,
                    rollout,
                    template_changed: false,
                    progress: None,
                },
            );
    }

    /// A Deployment's `generation`: how many times its spec changed, plus one.
    pub fn generation(&self, namespace: &str, name: &str) -> i64 {
        let deployments = self.deployments.lock().expect("lock never poisoned");
        deployments
            .get(&(namespace.to_owned(), name.to_owned()))
            .and_then(|d| d.object["metadata"]["generation"].as_i64())
            .unwrap_or(0)
    }

    /// Its `deployment.kubernetes.io/revision` as the controller has it: how many ReplicaSets
    /// (pod templates) it has had.
    pub fn revision(&self, namespace: &str, name: &str) -> i64 {
        let deployments = self.deployments.lock().expect("lock never poisoned");
        deployments
            .get(&(namespace.to_owned(), name.to_owned()))
            .map_or(0, SimDeployment::revision)
    }

    /// `kubectl rollout pause`: `spec.paused: true`, a spec change like any other.
    pub fn pause(&self, namespace: &str, name: &str) {
        let mut deployments = self.deployments.lock().expect("lock never poisoned");
        if let Some(d) = deployments.get_mut(&(namespace.to_owned(), name.to_owned())) {
            d.object["spec"]["paused"] = json!(true);
            d.spec_changed(false);
            d.object["metadata"]["resourceVersion"] = json!(self.next_version());
        }
    }

    /// The HorizontalPodAutoscaler sets `replicas` (through the scale subresource): a new
    /// generation, no new pod template.
    pub fn scale(&self, namespace: &str, name: &str, replicas: i64) {
        let mut deployments = self.deployments.lock().expect("lock never poisoned");
        if let Some(d) = deployments.get_mut(&(namespace.to_owned(), name.to_owned())) {
            d.object["spec"]["replicas"] = json!(replicas);
            d.spec_changed(false);
            d.object["metadata"]["resourceVersion"] = json!(self.next_version());
        }
    }

    /// Reloader: Deployments that watch `secret` roll when it changes.
    pub(super) fn secret_changed(&self, namespace: &str, secret: &str) {
        let now = self.now().to_string();
        let mut deployments = self.deployments.lock().expect("lock never poisoned");
        for ((ns, _), d) in deployments.iter_mut() {
            let annotations = &d.object["metadata"]["annotations"];
            let watched = annotations["reloader.stakater.com/auto"] == "true"
                || annotations["secret.reloader.stakater.com/auto"] == "true"
                || annotations["secret.reloader.stakater.com/reload"]
                    .as_str()
                    .is_some_and(|names| names.split(',').any(|n| n.trim() == secret));
            if ns == namespace && watched && reads(&d.object, secret) {
                d.object["spec"]["template"]["metadata"]["annotations"]["reloader.stakater.com/last-reloaded-from"] = json!(
                    format!("{{\"type\":\"SECRET\",\"name\":\"{secret}\",\"when\":\"{now}\"}}")
                );
                d.spec_changed(true);
                d.object["metadata"]["resourceVersion"] = json!(self.next_version());
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
