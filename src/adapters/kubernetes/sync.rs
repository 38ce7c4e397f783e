//! "Run the sync CronJob now": a Job made from `cronjob/signon-sync-token-secrets-to-k8s` as
//! `kubectl create job --from=cronjob/…` makes it (the CronJob as controlling owner, annotation
//! `cronjob.kubernetes.io/instantiate: manual`). Signon's own task then writes every Secret with
//! its API user's longest-lived live token, which after a mint is the new one.

use async_trait::async_trait;
use k8s_openapi::api::batch::v1::CronJob;
use secrecy::SecretString;
use serde_json::{Value, json};

use super::jobs::{labels, name_hash, run_job};
use super::secret::read_key;
use super::{Cluster, TOKEN_KEY, UPSTREAM};
use crate::adapters::{AdapterError, Distributor, Permit, Placement};

#[derive(Clone)]
pub struct SyncDistributor {
    cluster: Cluster,
    cronjob: String,
}

impl SyncDistributor {
    pub fn new(cluster: Cluster, cronjob: &str) -> Self {
        Self {
            cluster,
            cronjob: cronjob.to_owned(),
        }
    }

    /// The Job `kubectl create job --from=cronjob/<cronjob> <name>` would create.
    fn job_from(&self, cronjob: &Value, name: &str, rotation_id: &str) -> Value {
        let template = &cronjob["spec"]["jobTemplate"];
        let mut job = json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": self.cluster.namespace(),
                "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
                "labels": template["metadata"]["labels"].clone(),
                "ownerReferences": [{
                    "apiVersion": "batch/v1", "kind": "CronJob",
                    "name": self.cronjob, "uid": cronjob["metadata"]["uid"],
                    "controller": true,
                }],
            },
            "spec": template["spec"].clone(),
        });
        let ours = labels("sync", rotation_id);
        let merged = job["metadata"]["labels"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut merged = merged;
        for (k, v) in ours.as_object().into_iter().flatten() {
            merged.insert(k.clone(), v.clone());
        }
        job["metadata"]["labels"] = Value::Object(merged);
        job
    }
}

#[async_trait]
impl Distributor for SyncDistributor {
    async fn read(&self, placement: &Placement) -> Result<Option<SecretString>, AdapterError> {
        read_key(&self.cluster, &placement.name, TOKEN_KEY).await
    }

    fn syncs_from_signon(&self) -> bool {
        true
    }

    /// Runs Signon's sync; `value` is not needed (Signon has it).
    async fn place(
        &self,
        _permit: &Permit,
        _placement: &Placement,
        _value: Option<&SecretString>,
        rotation_id: &str,
    ) -> Result<(), AdapterError> {
        let cronjobs = self.cluster.api::<CronJob>(self.cluster.namespace());
        let cronjob = self
            .cluster
            .timed(
                &format!("get cronjobs/{}", self.cronjob),
                cronjobs.get(&self.cronjob),
            )
            .await?;
        let cronjob = serde_json::to_value(&cronjob)
            .map_err(|e| AdapterError::permanent(UPSTREAM, format!("cronjob: {e}")))?;
        let base = format!("{}-tr-{}", self.cronjob, &name_hash(&[rotation_id])[..8]);
        // The rotation id may carry a purpose (`<id>/rollback`); the label takes the id alone.
        let id = rotation_id.split('/').next().unwrap_or(rotation_id);
        run_job(
            &self.cluster,
            self.cluster.namespace(),
            &base,
            false,
            |name| self.job_from(&cronjob, name, id),
        )
        .await
        .map(drop)
    }
}
