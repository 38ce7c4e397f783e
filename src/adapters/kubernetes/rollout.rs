//! The consumers of a Secret and their rollout: the Deployments whose pod template reads it
//! (`env[].valueFrom.secretKeyRef`, `envFrom[].secretRef`, or a volume), their `generation`
//! before the Secret changed (the baseline), the restart `kubectl rollout restart` does where
//! Reloader is not installed, and whether each has rolled since.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{ListParams, Patch, PatchParams};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::secret::read_key;
use super::{Cluster, FIELD_MANAGER};
use crate::adapters::parameterize::parameterize;
use crate::adapters::{AdapterError, Permit};

/// Kubernetes' default `progressDeadlineSeconds`.
const DEFAULT_PROGRESS_DEADLINE: i64 = 600;
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// Each consumer's `generation` before the Secret changed, journaled with the rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    pub generations: BTreeMap<String, i64>,
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
    /// The longest `progressDeadlineSeconds` among them.
    pub deadline_seconds: i64,
}

#[derive(Clone)]
pub struct Deployments {
    cluster: Cluster,
    /// Reloader is not installed: restart the consumers ourselves.
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

impl Deployments {
    pub fn new(cluster: Cluster, restart: bool) -> Self {
        Self { cluster, restart }
    }

    /// The Deployments that read `secret`, with their generation now.
    pub async fn baseline(&self, secret: &str) -> Result<Baseline, AdapterError> {
        let api = self.cluster.api::<Deployment>(self.cluster.namespace());
        let listed = self
            .cluster
            .timed("list deployments", api.list(&ListParams::default()))
            .await?;
        let generations = listed
            .items
            .iter()
            .filter(|d| reads(d, secret))
            .filter_map(|d| Some((d.metadata.name.clone()?, d.metadata.generation.unwrap_or(0))))
            .collect();
        Ok(Baseline {
            generations,
            changed: true,
            rollback: false,
        })
    }

    /// `kubectl rollout restart` for each consumer: the pod template annotation
    /// `kubectl.kubernetes.io/restartedAt`. `stamp` is fixed per rotation, so a retried step
    /// changes nothing twice.
    pub async fn restart(
        &self,
        _permit: &Permit,
        baseline: &Baseline,
        stamp: &str,
    ) -> Result<(), AdapterError> {
        let api = self.cluster.api::<Deployment>(self.cluster.namespace());
        let patch =
            json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}});
        for name in baseline.generations.keys() {
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

    /// Which consumers have not rolled since `baseline`: rolled means a newer generation (new
    /// pods, made after the Secret changed), observed, with every replica updated and available.
    /// `changed`: the Secret's value changed in this rotation (else a rollout is not awaited,
    /// only a healthy Deployment).
    pub async fn check(
        &self,
        baseline: &Baseline,
        changed: bool,
    ) -> Result<RolloutState, AdapterError> {
        let api = self.cluster.api::<Deployment>(self.cluster.namespace());
        let mut waiting = Vec::new();
        let mut deadline_seconds = DEFAULT_PROGRESS_DEADLINE;
        for (name, before) in &baseline.generations {
            let found = self
                .cluster
                .timed(&format!("get deployments/{name}"), api.get_opt(name))
                .await?;
            // Deleted meanwhile: nothing left to roll.
            let Some(d) = found else { continue };
            let generation = d.metadata.generation.unwrap_or(0);
            let replicas = d.spec.replicas.unwrap_or(1);
            deadline_seconds = deadline_seconds.max(
                d.spec
                    .progress_deadline_seconds
                    .map_or(DEFAULT_PROGRESS_DEADLINE, i64::from),
            );
            let status = d.status.unwrap_or_default();
            let rolled = (!changed || generation > *before)
                && status.observed_generation.unwrap_or(0) >= generation
                && status.updated_replicas.unwrap_or(0) == replicas
                && status.available_replicas.unwrap_or(0) == replicas
                && status.replicas.unwrap_or(0) == replicas;
            if !rolled {
                waiting.push(name.clone());
            }
        }
        Ok(RolloutState {
            waiting,
            deadline_seconds,
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
