//! Jobs: created from a template (Signon's image and ServiceAccount, our scripts mounted from a
//! ConfigMap) or from a CronJob, named after the rotation so a restarted service finds its own
//! Job instead of starting another; read back until they finish; their result read from the
//! pod's log. A Job that fails, times out (`activeDeadlineSeconds`) or prints no result line is
//! tried once more under a second name, then reported with its log tail.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams, PostParams};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Cluster, UPSTREAM};
use crate::adapters::AdapterError;

/// Labels on every Job token-rotator makes (and its pods), to find them and to see whose they are.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "token-rotator");
pub const ROTATION_LABEL: &str = "token-rotator.alphagov.co.uk/rotation-id";
pub const OPERATION_LABEL: &str = "token-rotator.alphagov.co.uk/operation";

/// How to run Signon's image for our scripts (`[signon.job]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTemplate {
    pub image: String,
    /// Where Signon runs (its ServiceAccount and Secrets are there): GOV.UK's `apps`.
    pub namespace: String,
    pub service_account: String,
    /// Holds `deploy/signon/*.rb`, mounted at `/token-rotator`.
    pub scripts_config_map: String,
    pub ttl_seconds_after_finished: i32,
    pub active_deadline_seconds: i64,
    pub cpu: String,
    pub memory: String,
    /// `[signon] initiator`: the email of the Signon superadmin the scripts act as. Signon's
    /// `EventLog` refuses `ACCESS_TOKEN_GENERATED` and `ACCESS_TOKEN_REVOKED` without an
    /// initiator (`app/models/event_log.rb`), and only a superadmin may make or revoke API
    /// tokens (`app/policies/authorisation_policy.rb`).
    pub initiator: String,
}

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
pub fn jobs_name(script: &str, rotation_key: &str, extra: &str) -> String {
    format!(
        "token-rotator-{script}-{}",
        name_hash(&[rotation_key, script, extra])
    )
}

impl JobTemplate {
    /// `rails runner /token-rotator/<script>.rb` with `env`, labelled for `rotation_id`.
    pub fn script_job(
        &self,
        name: &str,
        script: &str,
        rotation_id: &str,
        env: &[(&str, String)],
    ) -> Value {
        let labels = labels(script, rotation_id);
        let env: Vec<Value> = env
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": self.namespace, "labels": labels},
            "spec": {
                "backoffLimit": 0,
                "ttlSecondsAfterFinished": self.ttl_seconds_after_finished,
                "activeDeadlineSeconds": self.active_deadline_seconds,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": self.service_account,
                        "restartPolicy": "Never",
                        "containers": [{
                            "name": "signon",
                            "image": self.image,
                            "command": ["rails", "runner", format!("/token-rotator/{script}.rb")],
                            "env": env,
                            "resources": {"requests": {"cpu": self.cpu, "memory": self.memory},
                                          "limits": {"memory": self.memory}},
                            "securityContext": {"allowPrivilegeEscalation": false},
                            "volumeMounts": [{"name": "scripts", "mountPath": "/token-rotator",
                                              "readOnly": true}],
                        }],
                        "volumes": [{"name": "scripts",
                                     "configMap": {"name": self.scripts_config_map}}],
                    },
                },
            },
        })
    }
}

pub(super) fn labels(operation: &str, rotation_id: &str) -> Value {
    let mut labels = BTreeMap::new();
    labels.insert(MANAGED_BY.0, MANAGED_BY.1.to_owned());
    labels.insert(ROTATION_LABEL, rotation_id.to_owned());
    labels.insert(OPERATION_LABEL, operation.to_owned());
    json!(labels)
}

/// Runs the Job `build(name)` in `namespace` to its end: `Pending` while it runs; tried once
/// more (as `<base>-2`) when the first fails, times out or says nothing; then a permanent error
/// with what its log ended with. `expect_result`: the Job must print our result line.
pub async fn run_job(
    cluster: &Cluster,
    namespace: &str,
    base: &str,
    expect_result: bool,
    build: impl Fn(&str) -> Value,
) -> Result<JobOutcome, AdapterError> {
    let mut failures = Vec::new();
    for attempt in 1..=2 {
        let name = format!("{base}-{attempt}");
        let state = ensure(cluster, namespace, &name, &build(&name)).await?;
        let failure = match state {
            State::Running => {
                return Err(AdapterError::pending(
                    UPSTREAM,
                    format!("jobs/{name} is running"),
                ));
            }
            State::Complete(log) => match (result_line(&log), expect_result) {
                (Some(line), true) if line["ok"] == json!(true) => {
                    return Ok(JobOutcome::Result(line));
                }
                (Some(line), true) => refusal(&name, &line)?,
                (None, true) => format!(
                    "jobs/{name} printed no result line; log ends: {}",
                    tail(&log)
                ),
                (_, false) => return Ok(JobOutcome::Completed),
            },
            State::Failed { reason, log } => match result_line(&log) {
                Some(line) => format!("{} ({reason})", refusal(&name, &line)?),
                None => format!("jobs/{name} failed ({reason}); log ends: {}", tail(&log)),
            },
        };
        tracing::warn!(job = %name, %failure, "Job did not succeed");
        failures.push(failure);
    }
    Err(AdapterError::permanent(
        UPSTREAM,
        format!("tried twice: {}", failures.join("; then ")),
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
    Complete(String),
    Failed { reason: String, log: String },
}

/// Finds the Job, or creates it; then where it is, with its log once it has finished.
async fn ensure(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    spec: &Value,
) -> Result<State, AdapterError> {
    let jobs = cluster.api::<Job>(namespace);
    let found = cluster
        .timed(&format!("get jobs/{name}"), jobs.get_opt(name))
        .await?;
    let job = match found {
        Some(job) => job,
        None => {
            let job: Job = serde_json::from_value(spec.clone()).map_err(|e| {
                AdapterError::permanent(UPSTREAM, format!("jobs/{name}: bad template: {e}"))
            })?;
            let created = cluster
                .timed(
                    &format!("create jobs/{name}"),
                    jobs.create(&PostParams::default(), &job),
                )
                .await;
            match created {
                Ok(job) => job,
                // Created meanwhile (another pass, or a restart): it is ours, by its name.
                Err(e) if e.to_string().contains("conflict") => {
                    cluster
                        .timed(&format!("get jobs/{name}"), jobs.get(name))
                        .await?
                }
                Err(e) => return Err(e),
            }
        }
    };
    let conditions = job.status.and_then(|s| s.conditions).unwrap_or_default();
    let finished = conditions
        .iter()
        .find(|c| c.status == "True" && (c.type_ == "Complete" || c.type_ == "Failed"));
    let Some(condition) = finished else {
        return Ok(State::Running);
    };
    let log = pod_log(cluster, namespace, name).await?;
    Ok(if condition.type_ == "Complete" {
        State::Complete(log)
    } else {
        State::Failed {
            reason: condition.reason.clone().unwrap_or_default(),
            log,
        }
    })
}

/// The log of the Job's newest pod; empty when its pods are gone.
async fn pod_log(cluster: &Cluster, namespace: &str, job: &str) -> Result<String, AdapterError> {
    let pods = cluster.api::<Pod>(namespace);
    let listed = cluster
        .timed(
            &format!("list pods (job-name={job})"),
            pods.list(&ListParams::default().labels(&format!("job-name={job}"))),
        )
        .await?;
    let newest = listed
        .items
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .next_back();
    let Some(pod) = newest else {
        return Ok(String::new());
    };
    let params = LogParams {
        tail_lines: Some(100),
        ..LogParams::default()
    };
    cluster
        .timed(&format!("get pods/{pod}/log"), pods.logs(&pod, &params))
        .await
}

/// The last line of our result protocol in a log: a JSON object with `"token_rotator": 1`.
pub fn result_line(log: &str) -> Option<Value> {
    log.lines()
        .rev()
        .filter(|l| l.trim_start().starts_with('{'))
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .find(|v| v["token_rotator"] == json!(1))
}

/// The log's last lines, on one line, with anything shaped like a token taken out.
pub fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().rev().take(5).collect();
    let flat = lines.into_iter().rev().collect::<Vec<_>>().join(" | ");
    let mut out = String::new();
    for word in flat.split_inclusive(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    {
        let core: String = word
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        // A Doorkeeper token is 43 URL-safe base64 characters: long, with both cases (names of
        // Secrets and hex digests are lower case and stay readable).
        let mixed = core.chars().any(|c| c.is_ascii_uppercase())
            && core.chars().any(|c| c.is_ascii_lowercase());
        if core.len() >= 32 && mixed {
            out.push_str("[redacted]");
            out.push_str(&word[core.len()..]);
        } else {
            out.push_str(word);
        }
    }
    out.chars().take(600).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_result_is_the_last_line_of_ours_after_any_noise() {
        let log = "I, booting\n{\"token_rotator\":1,\"ok\":false}\nnoise\n{\"token_rotator\":1,\"ok\":true,\"id\":\"7\"}\n";
        assert_eq!(result_line(log).unwrap()["id"], "7");
        assert_eq!(result_line("Rails booted\n"), None);
    }

    #[test]
    fn a_log_tail_never_carries_something_shaped_like_a_token() {
        let token = "Zq3v9xJk2LmN4pQr6StU8wXy0AbCdEfGhIjKlMnOpQ";
        let tail = tail(&format!("boot\nerror: token {token} rejected\n"));
        assert!(!tail.contains(token), "{tail}");
        assert!(tail.contains("error: token [redacted] rejected"), "{tail}");
    }
}
