//! Jobs, the pods that run them and their logs, and CronJobs to make Jobs from.
//!
//! A created Job is `active` when first read back and finishes on the next read: its
//! [`JobBehaviour`] (queued by the test per operation, else `Run`) decides how. `Run` hands the
//! container's command and environment to the [`JobRunner`] and keeps what it printed as the
//! pod's log.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{KubernetesSim, list_of, not_found, status};

/// What a Job's container was asked to do.
#[derive(Debug, Clone)]
pub struct JobRun {
    pub namespace: String,
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
}

impl JobRun {
    /// `mint`, `revoke`, `list` (from `rails runner /…/<op>.rb`) or `sync` (the sync rake task).
    pub fn operation(&self) -> String {
        if self
            .command
            .iter()
            .any(|c| c == "kubernetes:sync_token_secrets")
        {
            return "sync".into();
        }
        self.command
            .iter()
            .find_map(|c| c.strip_suffix(".rb"))
            .and_then(|path| path.rsplit('/').next())
            .unwrap_or("?")
            .to_owned()
    }
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
    log: String,
}

fn container_run(namespace: &str, job: &Value) -> JobRun {
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
    let env = container["env"]
        .as_array()
        .map(|vars| {
            vars.iter()
                .filter_map(|v| {
                    Some((
                        v["name"].as_str()?.to_owned(),
                        v["value"].as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    JobRun {
        namespace: namespace.to_owned(),
        command,
        env,
    }
}

impl KubernetesSim {
    /// Adds a CronJob as GOV.UK's chart renders Signon's `sync-token-secrets-to-k8s`.
    pub fn add_sync_cronjob(&self, namespace: &str, name: &str) {
        let cronjob = json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{name}"),
                         "resourceVersion": self.next_version()},
            "spec": {
                "schedule": "9 1 * * *",
                "jobTemplate": {"spec": {
                    "backoffLimit": 0,
                    "template": {"spec": {
                        "serviceAccountName": "signon",
                        "restartPolicy": "Never",
                        "containers": [{"name": "cron-task", "image": "signon:latest",
                                        "command": ["rake"], "args": ["kubernetes:sync_token_secrets"]}],
                    }},
                }},
            },
        });
        self.cronjobs
            .lock()
            .expect("lock never poisoned")
            .insert((namespace.to_owned(), name.to_owned()), cronjob);
    }

    /// Every Job created, as stored (for assertions on their specs).
    pub fn jobs(&self) -> Vec<Value> {
        let jobs = self.jobs.lock().expect("lock never poisoned");
        jobs.values().map(|j| j.object.clone()).collect()
    }

    /// The Jobs created for one operation.
    pub fn jobs_of(&self, operation: &str) -> usize {
        let jobs = self.jobs.lock().expect("lock never poisoned");
        jobs.iter()
            .filter(|((ns, _), j)| container_run(ns, &j.object).operation() == operation)
            .count()
    }

    /// What the TTL-after-finished controller does once `ttlSecondsAfterFinished` has passed:
    /// each Job of `operation` runs to its end, then it is deleted, its pod and log with it.
    pub fn finish_and_remove_jobs(&self, operation: &str) {
        let keys: Vec<(String, String)> = {
            let jobs = self.jobs.lock().expect("lock never poisoned");
            jobs.iter()
                .filter(|((ns, _), j)| container_run(ns, &j.object).operation() == operation)
                .map(|(key, _)| key.clone())
                .collect()
        };
        for key in keys {
            for _ in 0..10 {
                match self.advance_job(&key) {
                    Some(job) if job["status"]["conditions"].is_array() => break,
                    Some(_) => {}
                    None => break,
                }
            }
            self.jobs.lock().expect("lock never poisoned").remove(&key);
        }
    }

    /// One more read of a Job: the first says `active`, the next finishes it.
    fn advance_job(&self, key: &(String, String)) -> Option<Value> {
        let mut jobs = self.jobs.lock().expect("lock never poisoned");
        let job = jobs.get_mut(key)?;
        job.reads += 1;
        let finished = job.object["status"]["conditions"].is_array();
        if finished || job.reads < 2 {
            return Some(job.object.clone());
        }
        let run = container_run(&key.0, &job.object);
        let outcome = match job.behaviour.clone() {
            JobBehaviour::Run => {
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
            JobBehaviour::Hang(0) => {
                Some(Err("Job was active longer than specified deadline".into()))
            }
            JobBehaviour::Hang(n) => {
                job.behaviour = JobBehaviour::Hang(n - 1);
                None
            }
        };
        let job = jobs.get_mut(key)?;
        if let Some(outcome) = outcome {
            let (kind, reason, log) = match outcome {
                Ok(log) => ("Complete", "Completed", log),
                Err(log) if log.contains("deadline") => ("Failed", "DeadlineExceeded", log),
                Err(log) => ("Failed", "BackoffLimitExceeded", log),
            };
            job.log = log;
            job.object["status"] = json!({
                "active": 0,
                "succeeded": i32::from(kind == "Complete"),
                "failed": i32::from(kind == "Failed"),
                "conditions": [{"type": kind, "status": "True", "reason": reason}],
            });
        }
        Some(job.object.clone())
    }
}

pub(super) async fn create_job(
    State(sim): State<Arc<KubernetesSim>>,
    Path(namespace): Path<String>,
    body: Bytes,
) -> Response {
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
    let Some(name) = job["metadata"]["name"].as_str().map(str::to_owned) else {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "Job.batch \"\" is invalid: metadata.name: Required value".into(),
        );
    };
    if name.len() > 63 {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!(
                "Job.batch \"{name}\" is invalid: metadata.name: must be no more than 63 characters"
            ),
        );
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
    let operation = container_run(&namespace, &job).operation();
    let behaviour = sim
        .job_plan
        .lock()
        .expect("lock never poisoned")
        .get_mut(&operation)
        .and_then(|queue| queue.pop_front())
        .unwrap_or(JobBehaviour::Run);
    job["metadata"]["namespace"] = json!(namespace);
    job["metadata"]["uid"] = json!(format!("uid-job-{name}"));
    job["metadata"]["resourceVersion"] = json!(sim.next_version());
    job["metadata"]["creationTimestamp"] = json!(jiff::Timestamp::now().to_string());
    job["status"] = json!({"active": 1});
    jobs.insert(
        key,
        SimJob {
            object: job.clone(),
            reads: 0,
            behaviour,
            log: String::new(),
        },
    );
    (StatusCode::CREATED, Json(job)).into_response()
}

pub(super) async fn get_job(
    State(sim): State<Arc<KubernetesSim>>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    if let Some(fault) = sim.faults.check("get job").await {
        return fault;
    }
    match sim.advance_job(&(namespace, name.clone())) {
        Some(job) => Json(job).into_response(),
        None => not_found("jobs.batch", &name),
    }
}

#[derive(Deserialize)]
pub(super) struct Selector {
    #[serde(rename = "labelSelector")]
    label_selector: Option<String>,
}

/// `key=value,key=value` selectors only: all token-rotator sends.
fn matches(labels: &Value, selector: Option<&str>) -> bool {
    selector
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .all(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            labels[k].as_str() == Some(v)
        })
}

pub(super) async fn list_jobs(
    State(sim): State<Arc<KubernetesSim>>,
    Path(namespace): Path<String>,
    Query(query): Query<Selector>,
) -> Response {
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

/// One pod per Job that has started, labelled as the Job controller labels it.
pub(super) async fn list_pods(
    State(sim): State<Arc<KubernetesSim>>,
    Path(namespace): Path<String>,
    Query(query): Query<Selector>,
) -> Response {
    if let Some(fault) = sim.faults.check("list pods").await {
        return fault;
    }
    let jobs = sim.jobs.lock().expect("lock never poisoned");
    let items = jobs
        .iter()
        .filter(|((ns, _), _)| *ns == namespace)
        .map(|((_, name), j)| {
            let phase = match j.object["status"]["conditions"][0]["type"].as_str() {
                Some("Complete") => "Succeeded",
                Some("Failed") => "Failed",
                _ => "Running",
            };
            json!({
                "metadata": {"name": format!("{name}-sim01"), "namespace": namespace,
                             "labels": {"job-name": name, "batch.kubernetes.io/job-name": name},
                             "creationTimestamp": j.object["metadata"]["creationTimestamp"]},
                "status": {"phase": phase},
            })
        })
        .filter(|pod| matches(&pod["metadata"]["labels"], query.label_selector.as_deref()))
        .collect();
    list_of("PodList", "v1", items, sim.next_version())
}

pub(super) async fn pod_log(
    State(sim): State<Arc<KubernetesSim>>,
    Path((namespace, pod)): Path<(String, String)>,
) -> Response {
    if let Some(fault) = sim.faults.check("pod log").await {
        return fault;
    }
    let job = pod.strip_suffix("-sim01").unwrap_or(&pod).to_owned();
    let jobs = sim.jobs.lock().expect("lock never poisoned");
    match jobs.get(&(namespace, job)) {
        Some(j) => j.log.clone().into_response(),
        None => not_found("pods", &pod),
    }
}

pub(super) async fn get_cronjob(
    State(sim): State<Arc<KubernetesSim>>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let cronjobs = sim.cronjobs.lock().expect("lock never poisoned");
    match cronjobs.get(&(namespace, name.clone())) {
        Some(cronjob) => Json(cronjob.clone()).into_response(),
        None => not_found("cronjobs.batch", &name),
    }
}
