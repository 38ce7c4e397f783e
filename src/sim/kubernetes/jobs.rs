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

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::pods::{Selector, Start, job_labels, matches, pod_for};
use super::validation::{dns1123_label, dns1123_subdomain, invalid, labels, type_meta};
use super::{KubernetesSim, list_of, not_found, status};

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
    include_str!("../../../fixtures/kubernetes/signon-sync-token-secrets-to-k8s.json");

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

    /// Deletes a Job and, in the background, its pods (`propagationPolicy: Background`, what
    /// the TTL and CronJob controllers use).
    fn delete_job(&self, key: &(String, String)) {
        let removed = self.jobs.lock().expect("lock never poisoned").remove(key);
        if let Some(job) = removed {
            let uid = job.object["metadata"]["uid"].clone();
            let mut pods = self.pods.lock().expect("lock never poisoned");
            pods.retain(|_, p| p.object["metadata"]["ownerReferences"][0]["uid"] != uid);
        }
    }

    /// The controllers' clean-up as of now: Jobs past their TTL, pods past their grace period.
    pub(super) fn collect_garbage(&self) {
        let now = self.now();
        let expired: Vec<(String, String)> = {
            let jobs = self.jobs.lock().expect("lock never poisoned");
            jobs.iter()
                .filter(|(_, j)| {
                    let ttl = j.object["spec"]["ttlSecondsAfterFinished"].as_i64();
                    matches!((ttl, j.finished_at), (Some(ttl), Some(at)) if at + SignedDuration::from_secs(ttl) <= now)
                })
                .map(|(k, _)| k.clone())
                .collect()
        };
        for key in expired {
            self.delete_job(&key);
        }
        let mut pods = self.pods.lock().expect("lock never poisoned");
        pods.retain(|_, p| {
            p.object["metadata"]["deletionTimestamp"]
                .as_str()
                .and_then(|t| t.parse::<Timestamp>().ok())
                .is_none_or(|deleted| now < deleted + SignedDuration::from_secs(30))
        });
    }

    /// A CronJob's history limits, applied to the finished Jobs it controls.
    fn apply_history_limits(&self, namespace: &str, owner_uid: &str) {
        let cronjob = {
            let cronjobs = self.cronjobs.lock().expect("lock never poisoned");
            cronjobs
                .iter()
                .find(|((ns, _), c)| ns == namespace && c["metadata"]["uid"] == owner_uid)
                .map(|(_, c)| c.clone())
        };
        let Some(cronjob) = cronjob else { return };
        let mut doomed = Vec::new();
        for (kind, field, default) in [
            ("Complete", "successfulJobsHistoryLimit", 3),
            ("Failed", "failedJobsHistoryLimit", 1),
        ] {
            let limit = cronjob["spec"][field].as_u64().unwrap_or(default) as usize;
            let jobs = self.jobs.lock().expect("lock never poisoned");
            let mut owned: Vec<(String, String, String)> = jobs
                .iter()
                .filter(|((ns, _), j)| {
                    ns == namespace
                        && j.object["metadata"]["ownerReferences"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|o| o["uid"] == owner_uid && o["controller"] == true)
                        && condition(&j.object) == Some(kind)
                })
                .map(|((ns, name), j)| {
                    let started = j.object["status"]["startTime"].as_str().unwrap_or("");
                    (started.to_owned(), name.clone(), ns.clone())
                })
                .collect();
            owned.sort();
            let excess = owned.len().saturating_sub(limit);
            doomed.extend(
                owned
                    .into_iter()
                    .take(excess)
                    .map(|(_, name, ns)| (ns, name)),
            );
        }
        for key in doomed {
            self.delete_job(&key);
        }
    }

    /// One more read of a Job: the first starts its pod, the next finishes it.
    fn advance_job(&self, key: &(String, String)) -> Option<Value> {
        let now = self.now().to_string();
        let mut jobs = self.jobs.lock().expect("lock never poisoned");
        let job = jobs.get_mut(key)?;
        job.reads += 1;
        if finished(&job.object) {
            return Some(job.object.clone());
        }
        let pod_key = (key.0.clone(), job.pod.clone());
        if job.reads == 1 {
            let spec = job.object["spec"]["template"]["spec"].clone();
            let start = self.start_container(&key.0, &spec);
            let mut pods = self.pods.lock().expect("lock never poisoned");
            if let Some(pod) = pods.get_mut(&pod_key) {
                match start {
                    Start::Ready(_) => pod.set_running(&now),
                    Start::Waiting { reason, message } => {
                        pod.set_waiting(reason, message.as_deref());
                        // It waits until the deadline fails the Job.
                        job.behaviour = JobBehaviour::Hang(1);
                    }
                }
            }
            return Some(job.object.clone());
        }
        let spec = job.object["spec"]["template"]["spec"].clone();
        let container = &spec["containers"][0];
        let outcome = match job.behaviour.clone() {
            JobBehaviour::Run => {
                let env = match self.start_container(&key.0, &spec) {
                    Start::Ready(env) => env,
                    Start::Waiting { .. } => BTreeMap::new(),
                };
                let run = JobRun {
                    namespace: key.0.clone(),
                    image: container["image"].as_str().unwrap_or("").to_owned(),
                    command: command(&job.object),
                    env,
                    mounts: container["volumeMounts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|m| m["mountPath"].as_str().map(str::to_owned))
                        .collect(),
                    read_only_root: container["securityContext"]["readOnlyRootFilesystem"] == true,
                };
                let runner = self.runner.lock().expect("lock never poisoned").clone();
                match runner {
                    // The runner may write Secrets: run it without holding the Jobs' lock.
                    Some(runner) => {
                        drop(jobs);
                        let result = runner(&run);
                        jobs = self.jobs.lock().expect("lock never poisoned");
                        Some(result)
                    }
                    None => Some(Err("no image: the simulator has no job runner".into())),
                }
            }
            JobBehaviour::Fail(log) => Some(Err(log)),
            JobBehaviour::NoResult(log) => Some(Ok(log)),
            JobBehaviour::Hang(0) => Some(Err(DEADLINE.into())),
            JobBehaviour::Hang(n) => {
                job.behaviour = JobBehaviour::Hang(n - 1);
                None
            }
        };
        let job = jobs.get_mut(key)?;
        let Some(outcome) = outcome else {
            return Some(job.object.clone());
        };
        let deadline = matches!(&outcome, Err(log) if log == DEADLINE);
        let (kind, interim, reason, message) = match &outcome {
            Ok(_) => (
                "Complete",
                "SuccessCriteriaMet",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            ),
            Err(_) if deadline => ("Failed", "FailureTarget", "DeadlineExceeded", DEADLINE),
            Err(_) => (
                "Failed",
                "FailureTarget",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            ),
        };
        // Since Kubernetes 1.31 a finished Job has the interim condition first
        // (kubernetes.io/docs/concepts/workloads/controllers/job/#termination-of-job-pods).
        let conditions = json!([
            {"type": interim, "status": "True", "reason": reason, "message": message,
             "lastTransitionTime": now},
            {"type": kind, "status": "True", "reason": reason, "message": message,
             "lastTransitionTime": now},
        ]);
        let started = job.object["status"]["startTime"].clone();
        job.object["status"] = json!({
            "startTime": started, "active": 0, "ready": 0,
            "succeeded": i32::from(kind == "Complete"),
            "failed": i32::from(kind == "Failed"),
            "conditions": conditions,
        });
        if kind == "Complete" {
            job.object["status"]["completionTime"] = json!(now);
        }
        job.finished_at = Some(self.now());
        let object = job.object.clone();
        let owner = object["metadata"]["ownerReferences"][0]["uid"]
            .as_str()
            .map(str::to_owned);
        drop(jobs);
        let lost = {
            let mut lost = self.lost_pods.lock().expect("lock never poisoned");
            match lost.get_mut(&operation_of(&object)) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    true
                }
                _ => false,
            }
        };
        {
            let mut pods = self.pods.lock().expect("lock never poisoned");
            if lost {
                // The node went away with the pod after the Job controller counted it.
                pods.remove(&pod_key);
            } else if let Some(pod) = pods.get_mut(&pod_key) {
                if deadline {
                    // The Job controller deletes its active pods; they terminate in their grace
                    // period, a waiting container still waiting.
                    pod.object["metadata"]["deletionTimestamp"] = json!(now);
                } else {
                    let (code, log) = match outcome {
                        Ok(log) => (0, log),
                        Err(log) => (1, log),
                    };
                    pod.set_terminated(code, log, &now);
                }
            }
        }
        if let Some(owner) = owner {
            self.apply_history_limits(&key.0, &owner);
        }
        self.collect_garbage();
        Some(object)
    }
}

const DEADLINE: &str = "Job was active longer than specified deadline";

fn condition(job: &Value) -> Option<&'static str> {
    let conditions = job["status"]["conditions"].as_array()?;
    ["Complete", "Failed"].into_iter().find(|kind| {
        conditions
            .iter()
            .any(|c| c["type"] == *kind && c["status"] == "True")
    })
}

fn finished(job: &Value) -> bool {
    condition(job).is_some()
}

fn operation_of(job: &Value) -> String {
    operation(&command(job))
}

/// What the API server refuses in a Job before storing it (`pkg/apis/batch/validation`,
/// `pkg/apis/core/validation` for its pod template).
fn validate_job(job: &Value, name: &str) -> Vec<String> {
    let mut errors = dns1123_subdomain("metadata.name", name);
    // The pods get the label `job-name=<name>`, so a Job's name is at most 63 characters
    // (kubernetes.io/docs/concepts/workloads/controllers/job/#writing-a-job-spec).
    if name.len() > 63 {
        errors.push(format!(
            "metadata.name: Invalid value: {name:?}: must be no more than 63 characters"
        ));
    }
    errors.extend(labels("metadata.labels", &job["metadata"]["labels"]));
    let template = &job["spec"]["template"];
    errors.extend(labels(
        "spec.template.labels",
        &template["metadata"]["labels"],
    ));
    let spec = &template["spec"];
    match spec["restartPolicy"].as_str() {
        Some("Never" | "OnFailure") => {}
        other => errors.push(format!(
            "spec.template.spec.restartPolicy: Unsupported value: {:?}: supported values: \"OnFailure\", \"Never\"",
            other.unwrap_or("Always")
        )),
    }
    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    if containers.is_empty() {
        errors.push("spec.template.spec.containers: Required value".into());
    }
    for (i, c) in containers.iter().enumerate() {
        let field = format!("spec.template.spec.containers[{i}]");
        errors.extend(dns1123_label(
            &format!("{field}.name"),
            c["name"].as_str().unwrap_or(""),
        ));
        if c["image"].as_str().is_none_or(str::is_empty) {
            errors.push(format!("{field}.image: Required value"));
        }
    }
    errors
}

pub(super) async fn create_job(
    State(sim): State<Arc<KubernetesSim>>,
    Path(namespace): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    // The simulator speaks JSON only; a real API server also takes protobuf (kubectl's typed
    // clients send it), so this refusal is the simulator's, said plainly.
    if !content_type.starts_with("application/json") {
        return status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json; got {content_type:?}"
            ),
        );
    }
    if let Some(fault) = sim.faults.check("create job").await {
        return fault;
    }
    let Ok(mut job) = serde_json::from_slice::<Value>(&body) else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "body is not JSON".into(),
        );
    };
    if let Some(refused) = type_meta(&job, "batch/v1", "Job") {
        return refused;
    }
    let name = job["metadata"]["name"].as_str().unwrap_or("").to_owned();
    if name.is_empty() {
        return invalid(
            "Job",
            "batch",
            "",
            &["metadata.name: Required value: name or generateName is required".into()],
        );
    }
    let errors = validate_job(&job, &name);
    if !errors.is_empty() {
        return invalid("Job", "batch", &name, &errors);
    }
    let key = (namespace.clone(), name.clone());
    let mut jobs = sim.jobs.lock().expect("lock never poisoned");
    if jobs.contains_key(&key) {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("jobs.batch \"{name}\" already exists"),
        );
    }
    let operation = operation_of(&job);
    let behaviour = sim
        .job_plan
        .lock()
        .expect("lock never poisoned")
        .get_mut(&operation)
        .and_then(|queue| queue.pop_front())
        .unwrap_or(JobBehaviour::Run);
    let orphan = sim
        .orphans
        .lock()
        .expect("lock never poisoned")
        .get(&operation)
        .cloned();
    if let Some(log) = orphan {
        sim.leave_orphan_pod(&namespace, &name, &log);
    }
    let now = sim.now().to_string();
    let uid = uuid::Uuid::new_v4().to_string();
    job["apiVersion"] = json!("batch/v1");
    job["kind"] = json!("Job");
    job["metadata"]["namespace"] = json!(namespace);
    job["metadata"]["uid"] = json!(uid);
    job["metadata"]["resourceVersion"] = json!(sim.next_version());
    job["metadata"]["creationTimestamp"] = json!(now);
    // The API server's defaulting: the controller's labels on the template and as the selector
    // (kubernetes.io/docs/concepts/workloads/controllers/job/#specifying-your-own-pod-selector).
    let controller = job_labels(&name, &uid);
    if !job["spec"]["template"]["metadata"]["labels"].is_object() {
        job["spec"]["template"]["metadata"]["labels"] = json!({});
    }
    for (k, v) in controller.as_object().into_iter().flatten() {
        job["spec"]["template"]["metadata"]["labels"][k] = v.clone();
    }
    job["spec"]["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
    for (field, default) in [("completions", 1), ("parallelism", 1), ("backoffLimit", 6)] {
        if job["spec"][field].is_null() {
            job["spec"][field] = json!(default);
        }
    }
    job["status"] = json!({"startTime": now, "active": 1, "ready": 0});
    let pod = pod_for(&job, &namespace, &now);
    let pod_name = pod.object["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    sim.pods
        .lock()
        .expect("lock never poisoned")
        .insert((namespace.clone(), pod_name.clone()), pod);
    sim.created_jobs
        .lock()
        .expect("lock never poisoned")
        .push((name, operation, job.clone()));
    jobs.insert(
        key,
        SimJob {
            object: job.clone(),
            reads: 0,
            behaviour,
            pod: pod_name,
            finished_at: None,
        },
    );
    let running = jobs.values().filter(|j| !finished(&j.object)).count();
    let mut peak = sim.peak_jobs.lock().expect("lock never poisoned");
    *peak = (*peak).max(running);
    (StatusCode::CREATED, Json(job)).into_response()
}

pub(super) async fn get_job(
    State(sim): State<Arc<KubernetesSim>>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    if let Some(fault) = sim.faults.check("get job").await {
        return fault;
    }
    sim.collect_garbage();
    match sim.advance_job(&(namespace, name.clone())) {
        Some(job) => Json(job).into_response(),
        None => not_found("jobs.batch", &name),
    }
}

pub(super) async fn list_jobs(
    State(sim): State<Arc<KubernetesSim>>,
    Path(namespace): Path<String>,
    Query(query): Query<Selector>,
) -> Response {
    sim.collect_garbage();
    let jobs = sim.jobs.lock().expect("lock never poisoned");
    let items = jobs
        .iter()
        .filter(|((ns, _), j)| {
            *ns == namespace
                && matches(
                    &j.object["metadata"]["labels"],
                    query.label_selector.as_deref(),
                )
        })
        .map(|(_, j)| j.object.clone())
        .collect();
    list_of("JobList", "batch/v1", items, sim.next_version())
}

pub(super) async fn get_cronjob(
    State(sim): State<Arc<KubernetesSim>>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    if let Some(fault) = sim.faults.check("get cronjob").await {
        return fault;
    }
    let cronjobs = sim.cronjobs.lock().expect("lock never poisoned");
    match cronjobs.get(&(namespace, name.clone())) {
        Some(cronjob) => Json(cronjob.clone()).into_response(),
        None => not_found("cronjobs.batch", &name),
    }
}
