//! The consumers of a Secret and their rollout: the Deployments whose pod template reads it
//! (`env[].valueFrom.secretKeyRef`, `envFrom[].secretRef`, or a volume), their revision before
//! the Secret changed (the baseline), the restart `kubectl rollout restart` does for those
//! Reloader does not watch, and whether each has rolled since, judged as `kubectl rollout
//! status` judges it (`staging/src/k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go`,
//! `DeploymentStatusViewer.Status`).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{ListParams, Patch, PatchParams};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::secret::read_key;
use super::{Cluster, FIELD_MANAGER};
use crate::adapters::{AdapterError, Permit};
use crate::domain::parameterize::parameterize;

/// Kubernetes' default `progressDeadlineSeconds`.
const DEFAULT_PROGRESS_DEADLINE: i64 = 600;
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// Set by the Deployment controller on the Deployment: the revision of its newest ReplicaSet,
/// which goes up only when the pod template changes (not when an HPA changes `replicas`).
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// The `Progressing` condition's reason once `progressDeadlineSeconds` passed without progress
/// (`deploymentutil.TimedOutReason`).
pub const DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";

/// Each consumer's state before the Secret changed, journaled with the rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    pub generations: BTreeMap<String, i64>,
    /// Each one's `deployment.kubernetes.io/revision`: a rollout is a newer one.
    #[serde(default)]
    pub revisions: BTreeMap<String, i64>,
    /// Those Reloader does not roll when this Secret changes: token-rotator restarts them.
    #[serde(default)]
    pub unwatched: BTreeSet<String>,
    /// Whether the Secret's value is to change (else its consumers already run on the token, as
    /// after Signon's own nightly sync of an adopted token, and no rollout is awaited).
    pub changed: bool,
    /// Taken before a rollback restored the old token: the consumers must roll back onto it.
    #[serde(default)]
    pub rollback: bool,
}

/// Where the rollout is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutState {
    /// Deployments not yet rolled onto the new token.
    pub waiting: Vec<String>,
    /// Deployments whose controller says `ProgressDeadlineExceeded` for this rollout, with its
    /// message: stuck, as `kubectl rollout status` fails ("exceeded its progress deadline").
    pub exceeded: Vec<String>,
    /// The longest `progressDeadlineSeconds` among them.
    pub deadline_seconds: i64,
    /// The longest a rollout of them may take without the controller saying
    /// `ProgressDeadlineExceeded`: each new pod's becoming available restarts the progress
    /// deadline, and a rollout has at most `replicas + 1` such steps (one surge pod), so
    /// `progressDeadlineSeconds × (replicas + 2)` (one step more for the controller to look).
    /// Past it, no verdict is coming (a controller not running, a Deployment paused since).
    pub max_wait_seconds: i64,
}

/// `kubectl rollout restart`'s refusal (`staging/src/k8s.io/kubectl/pkg/polymorphichelpers/
/// objectrestarter.go`: `if obj.Spec.Paused { return nil, errors.New("can't restart paused
/// deployment (run rollout resume first)") }`).
fn paused_refusal(name: &str) -> String {
    format!(
        "Deployment {name:?} is paused: not restarting it (kubectl refuses to restart a paused Deployment: \"can't restart paused deployment (run rollout resume first)\"); it would never read the new token, so revoking the old one would break it: resume it or restart it by hand, then rotate again"
    )
}

fn is_paused(d: &Deployment) -> bool {
    d.spec.paused.unwrap_or(false)
}

#[derive(Clone)]
pub struct Deployments {
    cluster: Cluster,
    /// Reloader is not installed: restart every consumer ourselves.
    pub restart: bool,
}

fn reads(deployment: &Deployment, secret: &str) -> bool {
    let Some(spec) = deployment.spec.template.spec.as_ref() else {
        return false;
    };
    let env = spec.containers.iter().any(|c| {
        c.env.iter().flatten().any(|e| {
            e.value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
                .is_some_and(|r| r.name == secret)
        }) || c
            .env_from
            .iter()
            .flatten()
            .any(|f| f.secret_ref.as_ref().is_some_and(|r| r.name == secret))
    });
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .any(|v| v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) == Some(secret));
    env || volume
}

/// Whether Reloader rolls `deployment` when `secret` changes (github.com/stakater/Reloader
/// README: `reloader.stakater.com/auto`, `secret.reloader.stakater.com/auto`, or the Secret
/// named in `secret.reloader.stakater.com/reload`). GOV.UK's chart sets the first on every
/// app's Deployment (`charts/generic-govuk-app/templates/deployment.yaml`); others may not.
fn watched_by_reloader(deployment: &Deployment, secret: &str) -> bool {
    let Some(annotations) = deployment.metadata.annotations.as_ref() else {
        return false;
    };
    let is_true = |key: &str| annotations.get(key).is_some_and(|v| v == "true");
    is_true("reloader.stakater.com/auto")
        || is_true("secret.reloader.stakater.com/auto")
        || annotations
            .get("secret.reloader.stakater.com/reload")
            .is_some_and(|names| names.split(',').any(|n| n.trim() == secret))
}

fn revision(deployment: &Deployment) -> i64 {
    deployment
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// `kubectl rollout status` on one Deployment: `Ok(true)` rolled out, `Ok(false)` waiting,
/// `Err(message)` past its progress deadline.
fn rollout_status(d: &Deployment) -> Result<bool, String> {
    let generation = d.metadata.generation.unwrap_or(0);
    let status = d.status.clone().unwrap_or_default();
    if generation > status.observed_generation.unwrap_or(0) {
        // "Waiting for deployment spec update to be observed..."
        return Ok(false);
    }
    let progressing = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_.as_deref() == Some("Progressing"));
    if let Some(c) = progressing.filter(|c| c.reason.as_deref() == Some(DEADLINE_EXCEEDED)) {
        return Err(c.message.clone().unwrap_or_default());
    }
    let updated = status.updated_replicas.unwrap_or(0);
    if d.spec.replicas.unwrap_or(1) > updated {
        return Ok(false);
    }
    if status.replicas.unwrap_or(0) > updated {
        return Ok(false);
    }
    Ok(status.available_replicas.unwrap_or(0) >= updated)
}

impl Deployments {
    pub fn new(cluster: Cluster, restart: bool) -> Self {
        Self { cluster, restart }
    }

    /// The Deployments that read `secret`, with their generation and revision now.
    pub async fn baseline(&self, secret: &str) -> Result<Baseline, AdapterError> {
        let api = self.cluster.api::<Deployment>(self.cluster.namespace());
        let listed = self
            .cluster
            .timed("list deployments", api.list(&ListParams::default()))
            .await?;
        let consumers: Vec<(String, &Deployment)> = listed
            .items
            .iter()
            .filter(|d| reads(d, secret))
            .filter_map(|d| Some((d.metadata.name.clone()?, d)))
            .collect();
        Ok(Baseline {
            generations: consumers
                .iter()
                .map(|(n, d)| (n.clone(), d.metadata.generation.unwrap_or(0)))
                .collect(),
            revisions: consumers
                .iter()
                .map(|(n, d)| (n.clone(), revision(d)))
                .collect(),
            unwatched: consumers
                .iter()
                .filter(|(_, d)| !watched_by_reloader(d, secret))
                .map(|(n, _)| n.clone())
                .collect(),
            changed: true,
            rollback: false,
        })
    }

    /// The consumers token-rotator restarts: all of them without Reloader, else those Reloader
    /// does not watch for this Secret.
    pub fn to_restart<'a>(&self, baseline: &'a Baseline) -> Vec<&'a String> {
        baseline
            .generations
            .keys()
            .filter(|name| self.restart || baseline.unwatched.contains(*name))
            .collect()
    }

    /// `kubectl rollout restart` for each consumer [`Self::to_restart`] names: the pod
    /// template annotation `kubectl.kubernetes.io/restartedAt`. `stamp` is fixed per rotation
    /// (and purpose), so a retried step changes nothing twice. A paused Deployment is refused
    /// as kubectl refuses it (permanent: a person must resume it); on the way back
    /// (`baseline.rollback`) it is left alone instead, since it never left the old token.
    pub async fn restart(
        &self,
        _permit: &Permit,
        baseline: &Baseline,
        stamp: &str,
    ) -> Result<(), AdapterError> {
        let api = self.cluster.api::<Deployment>(self.cluster.namespace());
        let patch =
            json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}});
        for name in self.to_restart(baseline) {
            let found = self
                .cluster
                .timed(&format!("get deployments/{name}"), api.get_opt(name))
                .await?;
            match found {
                // Deleted meanwhile: nothing to restart.
                None => continue,
                Some(d) if is_paused(&d) && baseline.rollback => continue,
                Some(d) if is_paused(&d) => {
                    return Err(AdapterError::permanent("kubernetes", paused_refusal(name)));
                }
                Some(_) => {}
            }
            self.cluster
                .timed(
                    &format!("patch deployments/{name}"),
                    api.patch(
                        name,
                        &PatchParams::apply(FIELD_MANAGER),
                        &Patch::Strategic(&patch),
                    ),
                )
                .await?;
        }
        Ok(())
    }

    /// Which consumers have not rolled since `baseline`, as `kubectl rollout status` judges:
    /// rolled means a new pod template (a newer `deployment.kubernetes.io/revision`, never a
    /// newer `generation` alone, which an HPA also makes) whose rollout the controller has
    /// observed and finished. `changed`: the Secret's value changed in this rotation (else only
    /// a healthy Deployment is awaited).
    pub async fn check(
        &self,
        baseline: &Baseline,
        changed: bool,
    ) -> Result<RolloutState, AdapterError> {
        let api = self.cluster.api::<Deployment>(self.cluster.namespace());
        let mut waiting = Vec::new();
        let mut exceeded = Vec::new();
        let mut deadline_seconds = DEFAULT_PROGRESS_DEADLINE;
        let mut max_wait_seconds = 0;
        for (name, generation) in &baseline.generations {
            let found = self
                .cluster
                .timed(&format!("get deployments/{name}"), api.get_opt(name))
                .await?;
            // Deleted meanwhile: nothing left to roll.
            let Some(d) = found else { continue };
            let deadline = d
                .spec
                .progress_deadline_seconds
                .map_or(DEFAULT_PROGRESS_DEADLINE, i64::from);
            deadline_seconds = deadline_seconds.max(deadline);
            let replicas = i64::from(d.spec.replicas.unwrap_or(1)).max(1);
            max_wait_seconds = max_wait_seconds.max(deadline.saturating_mul(replicas + 2));
            // A baseline journaled before revisions were: the generation, as then.
            let new_template = match baseline.revisions.get(name) {
                Some(before) => revision(&d) > *before,
                None => d.metadata.generation.unwrap_or(0) > *generation,
            };
            // Paused, it never rolls and its controller never says `ProgressDeadlineExceeded`
            // ("If you pause a Deployment rollout, Kubernetes does not check progress against
            // your specified deadline", kubernetes.io/docs/concepts/workloads/controllers/
            // deployment/#progress-deadline-seconds): stuck until a person resumes it.
            if is_paused(&d) && (changed && !new_template || rollout_status(&d) != Ok(true)) {
                waiting.push(name.clone());
                exceeded.push(format!(
                    "deployment {name:?} is paused: it will not roll until someone resumes it (kubectl rollout resume), and its progress deadline is not checked while paused"
                ));
                continue;
            }
            if changed && !new_template {
                waiting.push(name.clone());
                continue;
            }
            match rollout_status(&d) {
                Ok(true) => {}
                Ok(false) => waiting.push(name.clone()),
                Err(message) => {
                    waiting.push(name.clone());
                    exceeded.push(format!(
                        "deployment {name:?} exceeded its progress deadline ({DEADLINE_EXCEEDED}: {message})"
                    ));
                }
            }
        }
        Ok(RolloutState {
            waiting,
            exceeded,
            deadline_seconds,
            max_wait_seconds: max_wait_seconds.max(deadline_seconds),
        })
    }

    /// The server application's OAuth client id, from Secret `signon-app-<app>` key `oauth_id`
    /// (what Signon's `kubernetes:sync_app_secrets` writes); `None` without that Secret.
    pub async fn app_oauth_id(&self, application: &str) -> Result<Option<String>, AdapterError> {
        let name = format!("signon-app-{}", parameterize(application));
        Ok(read_key(&self.cluster, &name, "oauth_id")
            .await?
            .map(|v: SecretString| v.expose_secret().to_owned()))
    }
}
