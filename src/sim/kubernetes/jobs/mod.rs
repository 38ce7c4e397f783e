//! Jobs, as the API server stores them and the Job, CronJob and TTL-after-finished controllers
//! move them on; and CronJobs to make Jobs from.
//!
//! A created Job gets its uid, the controller's labels and one pod (see `pods`); each read of
//! the Job is a step of its controllers: the first starts the pod (or leaves it waiting, when
//! its `env`/`envFrom`/volumes do not resolve), the next finishes it as its [`JobBehaviour`]
//! (queued by the test per operation, else `Run`) says. `Run` hands the container's command and
//! resolved environment to the [`JobRunner`] and keeps what it printed as the pod's log.
//!
//! Deletion, as the cluster does it:
//! - `activeDeadlineSeconds`: the Job fails `DeadlineExceeded` and its running pods are deleted
//!   (kubernetes.io/docs/concepts/workloads/controllers/job/#job-termination-and-cleanup);
//!   a deleted pod stays listed, terminating, for its grace period (30 s);
//! - `ttlSecondsAfterFinished`: the Job and its pods are deleted that long after it finished
//!   (kubernetes.io/docs/concepts/workloads/controllers/ttlafterfinished/);
//! - a CronJob's `successfulJobsHistoryLimit` (3) and `failedJobsHistoryLimit` (1): the oldest
//!   finished Jobs it controls beyond them are deleted, manual ones (`kubectl create job
//!   --from=cronjob/…`) included (kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/
//!   #jobs-history-limits; `pkg/controller/cronjob/cronjob_controllerv2.go`
//!   `cleanupFinishedJobs`, which counts every Job whose controller is the CronJob).

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::KubernetesSim;

mod api;
mod controllers;
pub(in crate::sim::kubernetes) use api::{create_job, get_cronjob, get_job, list_jobs};
use controllers::condition;

/// What a Job's container was asked to do, and what the kubelet gave it.
#[derive(Debug, Clone)]
pub struct JobRun {
    pub namespace: String,
    pub image: String,
    pub command: Vec<String>,
    /// Every variable, references resolved (`env`, `envFrom`).
    pub env: BTreeMap<String, String>,
    /// The container's `volumeMounts[].mountPath`s.
    pub mounts: Vec<String>,
    /// `securityContext.readOnlyRootFilesystem`.
    pub read_only_root: bool,
    /// The kubelet mounted the ServiceAccount's token at
    /// `/var/run/secrets/kubernetes.io/serviceaccount` (`automountServiceAccountToken`).
    pub service_account_token: bool,
}

impl JobRun {
    /// `mint`, `revoke`, `list` (from `rails runner /…/<op>.rb`) or `sync` (the sync rake task).
    pub fn operation(&self) -> String {
        operation(&self.command)
    }
}

fn operation(command: &[String]) -> String {
    if command.iter().any(|c| c == "kubernetes:sync_token_secrets") {
        return "sync".into();
    }
    command
        .iter()
        .find_map(|c| c.strip_suffix(".rb"))
        .and_then(|path| path.rsplit('/').next())
        .unwrap_or("?")
        .to_owned()
}

/// Plays the container: `Ok(log)` exits 0, `Err(log)` exits 1.
pub type JobRunner = Arc<dyn Fn(&JobRun) -> Result<String, String> + Send + Sync>;

/// How a Job ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobBehaviour {
    /// The container runs (through the runner).
    Run,
    /// Exits 1 with this log, without running.
    Fail(String),
    /// Exits 0 having printed this, and no result line.
    NoResult(String),
    /// Never finishes until `activeDeadlineSeconds` fails it (after this many more reads).
    Hang(u32),
}

pub(super) struct SimJob {
    object: Value,
    reads: u32,
    behaviour: JobBehaviour,
    /// Its pod's name (the pod itself is in `pods`).
    pod: String,
    finished_at: Option<Timestamp>,
}

impl SimJob {
    pub(super) fn object(&self) -> &Value {
        &self.object
    }
}

fn command(job: &Value) -> Vec<String> {
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut command = strings(&container["command"]);
    command.extend(strings(&container["args"]));
    command
}

/// The fixture: Signon's `sync-token-secrets-to-k8s` CronJob as GOV.UK's chart renders it
/// (`fixtures/kubernetes/README.md` says from which files).
const SYNC_CRONJOB: &str =
    include_str!("../../../../fixtures/kubernetes/signon-sync-token-secrets-to-k8s.json");

/// The Secrets (name, key) Signon's pod reads (`charts/app-config/values-production.yaml`,
/// signon's `extraEnv`; `cron-task.yaml` for `SECRET_KEY_BASE` and `SENTRY_DSN`).
const SIGNON_SECRETS: [(&str, &[&str]); 8] = [
    ("signon-rails-secret-key-base", &["secret-key-base"]),
    ("signon-sentry", &["dsn"]),
    ("anonymous-user-id", &["ANONYMOUS_USER_ID_SECRET"]),
    ("signon-notify", &["GOVUK_NOTIFY_API_KEY"]),
    (
        "active-record-encryption",
        &[
            "ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY",
            "ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT",
        ],
    ),
    ("signon-mysql", &["DATABASE_URL"]),
    ("signon-devise-pepper", &["DEVISE_PEPPER"]),
    ("signon-devise-secret", &["DEVISE_SECRET_KEY"]),
];

impl KubernetesSim {
    /// Signon as GOV.UK deploys it in `namespace`: its sync CronJob `name` as the chart renders
    /// it, the Secrets and the `govuk-apps-env` ConfigMap its pod reads, and token-rotator's
    /// scripts ConfigMap (`deploy/signon/kustomization.yaml`).
    pub fn add_sync_cronjob(&self, namespace: &str, name: &str) {
        let mut cronjob: Value = serde_json::from_str(SYNC_CRONJOB).expect("the fixture is JSON");
        cronjob["metadata"]["name"] = json!(name);
        cronjob["metadata"]["namespace"] = json!(namespace);
        cronjob["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
        cronjob["metadata"]["resourceVersion"] = json!(self.next_version());
        cronjob["metadata"]["creationTimestamp"] = json!(self.now().to_string());
        self.cronjobs
            .lock()
            .expect("lock never poisoned")
            .insert((namespace.to_owned(), name.to_owned()), cronjob);
        for (secret, keys) in SIGNON_SECRETS {
            for key in keys {
                self.put_as(
                    namespace,
                    secret,
                    key,
                    &format!("{secret}-{key}-value"),
                    "helm",
                );
            }
        }
        self.put_config_map(
            namespace,
            "govuk-apps-env",
            &[
                ("GOVUK_ENVIRONMENT", "production"),
                ("RAILS_ENV", "production"),
            ],
        );
        self.put_config_map(
            namespace,
            "token-rotator-signon-scripts",
            &[
                ("common.rb", ""),
                ("list.rb", ""),
                ("mint.rb", ""),
                ("revoke.rb", ""),
                ("check_initiator.rb", ""),
                ("inventory.rb", ""),
            ],
        );
    }

    /// The next `times` Jobs of `operation` lose their pod (and log) once they have finished,
    /// as when its node is drained or goes away: the Job's status stays.
    pub fn lose_pods(&self, operation: &str, times: usize) {
        *self
            .lost_pods
            .lock()
            .expect("lock never poisoned")
            .entry(operation.to_owned())
            .or_default() += times;
    }

    /// Deletes a Secret, as `kubectl delete secret` does.
    pub fn delete_secret(&self, namespace: &str, name: &str) {
        self.secrets
            .lock()
            .expect("lock never poisoned")
            .remove(&(namespace.to_owned(), name.to_owned()));
    }

    /// Every Job made, as the API server stored it at creation (for assertions on their
    /// specs), those deleted since included.
    pub fn jobs(&self) -> Vec<Value> {
        let created = self.created_jobs.lock().expect("lock never poisoned");
        created
            .iter()
            .map(|(_, _, object)| object.clone())
            .collect()
    }

    /// The Jobs made for one operation, those the cluster deleted since (TTL, history limits)
    /// included, but not those [`Self::finish_and_remove_jobs`] took away.
    pub fn jobs_of(&self, operation: &str) -> usize {
        self.jobs_created(operation)
    }

    /// The Jobs made for one operation, those the cluster deleted since included.
    pub fn jobs_created(&self, operation: &str) -> usize {
        let created = self.created_jobs.lock().expect("lock never poisoned");
        created.iter().filter(|(_, op, _)| op == operation).count()
    }

    /// What the TTL-after-finished controller does once `ttlSecondsAfterFinished` has passed:
    /// each Job of `operation` runs to its end, then it is deleted, its pod and log with it.
    pub fn finish_and_remove_jobs(&self, operation: &str) {
        let keys: Vec<(String, String)> = {
            let jobs = self.jobs.lock().expect("lock never poisoned");
            jobs.iter()
                .filter(|(_, j)| operation_of(&j.object) == operation)
                .map(|(key, _)| key.clone())
                .collect()
        };
        for key in keys {
            for _ in 0..10 {
                match self.advance_job(&key) {
                    Some(job) if finished(&job) => break,
                    Some(_) => {}
                    None => break,
                }
            }
            self.delete_job(&key);
            self.created_jobs
                .lock()
                .expect("lock never poisoned")
                .retain(|(name, _, _)| *name != key.1);
        }
    }
}

fn finished(job: &Value) -> bool {
    condition(job).is_some()
}

fn operation_of(job: &Value) -> String {
    operation(&command(job))
}
