//! Jobs: made in Signon's own pod (the sync CronJob's `jobTemplate`, which GOV.UK's chart gives
//! Signon's image, database, secrets, security context and node placement; our scripts mounted
//! from a ConfigMap) or from the CronJob as it is, named after the rotation so a restarted
//! service finds its own Job instead of starting another; read back until they finish; their
//! result read from the log of the Job's newest pod. A script Job that fails, times out
//! (`activeDeadlineSeconds`) or prints no result line is tried once more under a second name,
//! then reported with its log tail.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::batch::v1::Job;
use kube::api::PostParams;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Cluster, UPSTREAM};
use crate::adapters::AdapterError;

mod log;
mod template;
use log::result_line;
use log::{PodLog, pod_log};
pub use template::JobTemplate;

/// Labels on every Job token-rotator makes (and its pods), to find them and to see whose they are.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "token-rotator");
pub const ROTATION_LABEL: &str = "token-rotator.alphagov.co.uk/rotation-id";
pub const OPERATION_LABEL: &str = "token-rotator.alphagov.co.uk/operation";
/// The label the Job controller puts on a Job's pods: the Job's uid, which (unlike its name)
/// no other Job ever had (kubernetes.io/docs/reference/labels-annotations-taints/
/// #batchkubernetesiocontroller-uid; `job-name` is shared by a Job re-created under its name).
pub const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
/// Where the scripts ConfigMap is mounted in the pod.
pub const SCRIPTS_MOUNT: &str = "/token-rotator";

/// What a finished Job said.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    /// The script's result line (`{"token_rotator":1,"ok":true,…}`).
    Result(Value),
    /// Completed; the Job prints no result line of ours (Signon's sync task).
    Completed,
}

/// A short, stable name part from the rotation and what the Job is for.
pub fn name_hash(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(hash.finalize())[..12].to_owned()
}

/// `token-rotator-<script>-<hash of rotation and token>`: the same for a retried step.
/// A Job's name is a DNS label: `check_initiator` is named `check-initiator`.
pub fn jobs_name(script: &str, rotation_key: &str, extra: &str) -> String {
    format!(
        "token-rotator-{}-{}",
        script.replace('_', "-"),
        name_hash(&[rotation_key, script, extra])
    )
}

pub(super) fn labels(operation: &str, rotation_id: &str) -> Value {
    let mut labels = BTreeMap::new();
    labels.insert(MANAGED_BY.0, MANAGED_BY.1.to_owned());
    labels.insert(ROTATION_LABEL, rotation_id.to_owned());
    labels.insert(OPERATION_LABEL, operation.to_owned());
    json!(labels)
}

/// How a Job is run.
pub struct Run<'a> {
    pub namespace: &'a str,
    /// Names are `<base>-1`, `<base>-2`.
    pub base: &'a str,
    /// The Job must print our result line (its log is read only then, or to say why it failed).
    pub expect_result: bool,
    /// How many Jobs at most: 2 for the scripts; 1 for the sync, whose failure is the step's.
    pub attempts: u8,
    /// How long the result line may be, in bytes: the log is read back far enough to hold it
    /// (0: a short one, as most scripts print).
    pub result_bytes: usize,
    /// The CronJob whose `jobTemplate` the Job is made from (read only when one is made).
    pub cronjob: &'a str,
    /// Jobs created by this process: one gone before its end was read is not made again (the
    /// sync CronJob's history limits delete the Jobs it owns; making it again would loop).
    pub created: Option<&'a CreatedJobs>,
}

/// The Jobs of this process running now in one cluster, at most `max`: a Job is made only when
/// a slot is free (else the step waits, as for a running Job), and its slot is free again once
/// it is seen finished or gone. Counted in this process: after a restart, Jobs still running
/// from before are not counted (they finish within their deadline).
#[derive(Clone)]
pub(super) struct JobSlots {
    max: usize,
    running: Arc<Mutex<BTreeSet<String>>>,
}

impl JobSlots {
    pub(super) fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            running: Arc::default(),
        }
    }

    /// A slot for `name` (it may hold one already), or how many run.
    fn take(&self, name: &str) -> Result<(), usize> {
        let mut running = self.running.lock().expect("lock never poisoned");
        if running.contains(name) || running.len() < self.max {
            running.insert(name.to_owned());
            Ok(())
        } else {
            Err(running.len())
        }
    }

    fn free(&self, name: &str) {
        self.running
            .lock()
            .expect("lock never poisoned")
            .remove(name);
    }
}

/// The names of the Jobs this process created, for [`Run::created`].
#[derive(Clone, Default)]
pub struct CreatedJobs(Arc<Mutex<BTreeSet<String>>>);

impl CreatedJobs {
    pub(super) fn insert(&self, name: &str) {
        self.0
            .lock()
            .expect("lock never poisoned")
            .insert(name.to_owned());
    }

    fn contains(&self, name: &str) -> bool {
        self.0.lock().expect("lock never poisoned").contains(name)
    }
}

/// Runs the Job `build(name)` to its end: `Pending` while it runs; tried once more (as
/// `<base>-2`) when the first fails, times out or says nothing, if `attempts` allows; then a
/// permanent error with what its log ended with. `build(cronjob, name)` is called only to
/// create a Job, with the CronJob as the API server has it now.
pub async fn run_job(
    cluster: &Cluster,
    run: &Run<'_>,
    build: impl Fn(&Value, &str) -> Result<Value, String>,
) -> Result<JobOutcome, AdapterError> {
    let mut failures = Vec::new();
    for attempt in 1..=run.attempts {
        let name = format!("{}-{attempt}", run.base);
        let state = ensure(cluster, run, &name, &build).await?;
        let failure = match state {
            State::Running => {
                return Err(AdapterError::pending(
                    UPSTREAM,
                    format!("jobs/{name} is running"),
                ));
            }
            State::Complete(None) => return Ok(JobOutcome::Completed),
            State::Complete(Some(log)) => match result_line(&log.text) {
                Some(line) if line["ok"] == json!(true) => {
                    return Ok(JobOutcome::Result(line));
                }
                Some(line) => refusal(&name, &line)?,
                None => format!("jobs/{name} printed no result line; {}", log.describe()),
            },
            State::Failed { reason, log } => match result_line(&log.text) {
                Some(line) => format!("{} ({reason})", refusal(&name, &line)?),
                None => format!("jobs/{name} failed ({reason}); {}", log.describe()),
            },
            State::Gone => format!(
                "jobs/{name} was deleted before its end was read (the CronJob's history limit, \
                 or its TTL); not making it again"
            ),
        };
        tracing::warn!(job = %name, %failure, "Job did not succeed");
        failures.push(failure);
    }
    let tried = match run.attempts {
        1 => String::new(),
        2 => "tried twice: ".to_owned(),
        n => format!("tried {n} times: "),
    };
    Err(AdapterError::permanent(
        UPSTREAM,
        format!("{tried}{}", failures.join("; then ")),
    ))
}

/// The upstream of a script's refusal: Signon said no (nothing was written), as opposed to the
/// Job machinery failing (`kubernetes`).
pub const REFUSED_BY: &str = "signon";

/// Whether a Job of `base` (either attempt) is still there, running or finished.
pub async fn job_exists(
    cluster: &Cluster,
    namespace: &str,
    base: &str,
) -> Result<bool, AdapterError> {
    let jobs = cluster.api::<Job>(namespace);
    for attempt in 1..=2 {
        let name = format!("{base}-{attempt}");
        let found = cluster
            .timed(&format!("get jobs/{name}"), jobs.get_opt(&name))
            .await?;
        if found.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A result line with `ok: false`: a refusal (`"refused": code`, checked before anything was
/// written) is final at once, since running the script again cannot change the answer; any
/// other error is worth the second run, which finds what the first one made by its key.
fn refusal(name: &str, line: &Value) -> Result<String, AdapterError> {
    let error = line["error"].as_str().unwrap_or("no error given");
    match line["refused"].as_str() {
        Some(code) => Err(AdapterError::permanent(
            REFUSED_BY,
            format!("Signon refused ({code}): {error} (jobs/{name})"),
        )),
        None => Ok(format!("jobs/{name} says: {error}")),
    }
}

enum State {
    Running,
    /// With the log when it was read (only where a result line is wanted).
    Complete(Option<PodLog>),
    Failed {
        reason: String,
        log: PodLog,
    },
    /// Created by us, then deleted before we saw its end.
    Gone,
}

/// Makes the Job from the CronJob as the API server has it now.
async fn create(
    cluster: &Cluster,
    run: &Run<'_>,
    name: &str,
    build: &impl Fn(&Value, &str) -> Result<Value, String>,
) -> Result<Job, AdapterError> {
    let jobs = cluster.api::<Job>(run.namespace);
    let cronjob = cluster.cronjob(run.namespace, run.cronjob).await?;
    let spec = build(&cronjob, name)
        .map_err(|e| AdapterError::permanent(UPSTREAM, format!("jobs/{name}: {e}")))?;
    let job: Job = serde_json::from_value(spec).map_err(|e| {
        AdapterError::permanent(UPSTREAM, format!("jobs/{name}: bad template: {e}"))
    })?;
    let created = cluster
        .timed(
            &format!("create jobs/{name}"),
            jobs.create(&PostParams::default(), &job),
        )
        .await;
    match created {
        Ok(job) => Ok(job),
        // Created meanwhile (another pass, or a restart): it is ours, by its name.
        Err(e) if e.to_string().contains("conflict") => {
            cluster
                .timed(&format!("get jobs/{name}"), jobs.get(name))
                .await
        }
        Err(e) => Err(e),
    }
}

/// Finds the Job, or creates it; then where it is, with its log once it has finished.
async fn ensure(
    cluster: &Cluster,
    run: &Run<'_>,
    name: &str,
    build: &impl Fn(&Value, &str) -> Result<Value, String>,
) -> Result<State, AdapterError> {
    let jobs = cluster.api::<Job>(run.namespace);
    let found = cluster
        .timed(&format!("get jobs/{name}"), jobs.get_opt(name))
        .await?;
    let job = match found {
        Some(job) => job,
        None if run.created.is_some_and(|c| c.contains(name)) => {
            cluster.job_slots.free(name);
            return Ok(State::Gone);
        }
        None => {
            // The slot first: a step waiting for one costs the API server nothing.
            if let Err(running) = cluster.job_slots.take(name) {
                return Err(AdapterError::pending(
                    UPSTREAM,
                    format!(
                        "jobs/{name} waits for a slot: {running} Jobs running (kubernetes.max_jobs)"
                    ),
                ));
            }
            let job = match create(cluster, run, name, build).await {
                Ok(job) => job,
                Err(e) => {
                    cluster.job_slots.free(name);
                    return Err(e);
                }
            };
            if let Some(created) = run.created {
                created.insert(name);
            }
            job
        }
    };
    let conditions = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let finished = conditions
        .iter()
        .find(|c| c.status == "True" && (c.type_ == "Complete" || c.type_ == "Failed"));
    let Some(condition) = finished else {
        return Ok(State::Running);
    };
    cluster.job_slots.free(name);
    if condition.type_ == "Complete" {
        if !run.expect_result {
            return Ok(State::Complete(None));
        }
        let log = pod_log(cluster, run.namespace, &job, run.result_bytes).await?;
        return Ok(State::Complete(Some(log)));
    }
    let mut reason = condition.reason.clone().unwrap_or_default();
    if let Some(message) = condition.message.as_deref().filter(|m| !m.is_empty()) {
        reason = format!("{reason}: {message}");
    }
    Ok(State::Failed {
        reason,
        log: pod_log(cluster, run.namespace, &job, run.result_bytes).await?,
    })
}
