//! "Run the sync CronJob now": a Job made from `cronjob/signon-sync-token-secrets-to-k8s` as
//! `kubectl create job --from=cronjob/…` makes it (the CronJob as controlling owner, annotation
//! `cronjob.kubernetes.io/instantiate: manual`). Signon's own task then writes every Secret with
//! its API user's longest-lived live token, which after a mint is the new one.

use async_trait::async_trait;
use secrecy::SecretString;
use serde_json::{Value, json};

use super::jobs::{CreatedJobs, Run, labels, name_hash, run_job};
use super::secret::read_key;
use super::{Cluster, TOKEN_KEY};
use crate::adapters::{AdapterError, Distributor, Permit, Placement};

#[derive(Clone)]
pub struct SyncDistributor {
    cluster: Cluster,
    cronjob: String,
    /// The sync Jobs made here: the CronJob owns them, and its `failedJobsHistoryLimit` (1 by
    /// default) deletes a failed one as soon as another fails; one gone is never made again.
    created: CreatedJobs,
}

impl SyncDistributor {
    /// The sync Job's name for a key, less its attempt number.
    fn base(&self, key: &str) -> String {
        format!("{}-tr-{}", self.cronjob, &name_hash(&[key])[..8])
    }

    pub fn new(cluster: Cluster, cronjob: &str) -> Self {
        Self {
            cluster,
            cronjob: cronjob.to_owned(),
            created: CreatedJobs::default(),
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
    super::secret::secret_words!();

    fn plan(&self, placement: &Placement) -> String {
        format!(
            "run Signon's CronJob {} once, which writes the longest-lived live token into Secret {}, and read it back",
            self.cronjob, placement.name
        )
    }

    fn placed_how(&self) -> &'static str {
        "was synced by Signon's CronJob"
    }

    async fn read(&self, placement: &Placement) -> Result<Option<SecretString>, AdapterError> {
        read_key(&self.cluster, &placement.name, TOKEN_KEY).await
    }

    fn syncs_from_issuer(&self) -> bool {
        true
    }

    fn started_before(&self, key: &str) {
        self.created.insert(&format!("{}-1", self.base(key)));
    }

    /// Runs Signon's sync, which writes the longest-lived live token; or, given a value (a
    /// rollback's old token, while the new one is still live and so still "longest-lived"),
    /// writes it as token-rotator does with `apply`, so the new token can stay alive until the
    /// consumers are back on the old one. Signon's next sync writes the same token once the new
    /// one is revoked.
    async fn place(
        &self,
        _permit: &Permit,
        placement: &Placement,
        value: Option<&SecretString>,
        rotation_id: &str,
    ) -> Result<(), AdapterError> {
        if let Some(value) = value {
            return super::secret::apply(&self.cluster, &placement.name, value, rotation_id).await;
        }
        let base = self.base(rotation_id);
        // The rotation id may carry a purpose (`<id>/rollback`); the label takes the id alone.
        let id = rotation_id.split('/').next().unwrap_or(rotation_id);
        // Once per rotation: a failed sync is the step's failure, with its reason (a second
        // Job would only fail the same way, and the history limit would delete the first).
        let run = Run {
            namespace: self.cluster.namespace(),
            base: &base,
            expect_result: false,
            attempts: 1,
            result_bytes: 0,
            cronjob: &self.cronjob,
            created: Some(&self.created),
        };
        run_job(&self.cluster, &run, |cronjob, name| {
            Ok(self.job_from(cronjob, name, id))
        })
        .await
        .map(drop)
    }
}
