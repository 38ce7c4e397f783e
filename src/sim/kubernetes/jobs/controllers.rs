//! The Job, TTL-after-finished and CronJob controllers, one step per read of a Job: the pod
//! started or finished as the Job's [`JobBehaviour`] says, finished Jobs deleted past their TTL
//! or beyond their CronJob's history limits (the sources are cited in `super`).

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::{JobBehaviour, JobRun, command, finished, operation_of};
use crate::sim::kubernetes::KubernetesSim;
use crate::sim::kubernetes::pods::Start;

impl KubernetesSim {
    /// Deletes a Job and, in the background, its pods (`propagationPolicy: Background`, what
    /// the TTL and CronJob controllers use).
    pub(super) fn delete_job(&self, key: &(String, String)) {
        let removed = self.jobs.lock().expect("lock never poisoned").remove(key);
        if let Some(job) = removed {
            let uid = job.object["metadata"]["uid"].clone();
            let mut pods = self.pods.lock().expect("lock never poisoned");
            pods.retain(|_, p| p.object["metadata"]["ownerReferences"][0]["uid"] != uid);
        }
    }

    /// The controllers' clean-up as of now: Jobs past their TTL, pods past their grace period.
    pub(in crate::sim::kubernetes) fn collect_garbage(&self) {
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
    pub(super) fn advance_job(&self, key: &(String, String)) -> Option<Value> {
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
                    // The pod's own setting wins; unset, the ServiceAccount's, which (the
                    // simulator keeping none) defaults to mounting (kubernetes.io/docs/tasks/
                    // configure-pod-container/configure-service-account/
                    // #opt-out-of-api-credential-automounting).
                    service_account_token: spec["automountServiceAccountToken"] != false,
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

pub(super) fn condition(job: &Value) -> Option<&'static str> {
    let conditions = job["status"]["conditions"].as_array()?;
    ["Complete", "Failed"].into_iter().find(|kind| {
        conditions
            .iter()
            .any(|c| c["type"] == *kind && c["status"] == "True")
    })
}
