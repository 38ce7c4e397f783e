//! What a Job said: its newest pod's log, or why there is none, and our result line in it; the
//! log's tail as it may be shown (anything shaped like a token redacted).

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams};
use serde_json::{Value, json};

use super::{CONTROLLER_UID, Cluster};
use crate::adapters::AdapterError;

/// The log lines read back for a short result: Rails' boot lines and any warning before it.
const TAIL_LINES: usize = 100;

/// The longest piece of a line a container runtime writes to the node's log file. A longer
/// line is written as several pieces (CRI "partial" lines: containerd splits at
/// `max_container_log_line_size`, 16 KiB by default; CRI-O's conmon at its 8 KiB buffer); the
/// kubelet joins them again in the log it answers, but its `tailLines` counts pieces. Taking the
/// smaller size reads a few lines too many at worst, never too few.
pub(super) const LOG_PIECE: usize = 8 * 1024;

/// How many of the node's log lines to ask for so that a result line of `result_bytes` arrives
/// whole after the boot lines' worth: a line asked for from its middle would come back cut.
fn tail_lines(result_bytes: usize) -> i64 {
    i64::try_from(TAIL_LINES + result_bytes.div_ceil(LOG_PIECE)).unwrap_or(i64::MAX)
}

/// What the Job's newest pod says: its log, or why there is none, and how its container ended.
#[derive(Default)]
pub(super) struct PodLog {
    pub(super) text: String,
    /// The pod's container state (`waiting: CreateContainerConfigError: secret … not found`,
    /// `terminated: OOMKilled`), or that the pod is gone.
    state: String,
}

impl PodLog {
    pub(super) fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.state.is_empty() {
            parts.push(format!("pod: {}", self.state));
        }
        if !self.text.trim().is_empty() {
            parts.push(format!("log ends: {}", tail(&self.text)));
        } else {
            parts.push("no log".to_owned());
        }
        parts.join("; ")
    }
}

/// The log of the Job's newest pod (by `creationTimestamp`; the Job controller's pods carry
/// random suffixes, so their names say nothing of their order), from its named container.
/// A pod gone (404) or a container that never started (400: "is waiting to start") has no
/// log: that is said, not an error. The log is read back far enough for a result line of
/// `result_bytes` (see [`tail_lines`]).
pub(super) async fn pod_log(
    cluster: &Cluster,
    namespace: &str,
    job: &Job,
    result_bytes: usize,
) -> Result<PodLog, AdapterError> {
    let name = job.metadata.name.clone().unwrap_or_default();
    let Some(uid) = job.metadata.uid.as_deref() else {
        return Ok(PodLog::default());
    };
    let container = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.containers.first())
        .map(|c| c.name.clone());
    let pods = cluster.api::<Pod>(namespace);
    let listed = cluster
        .timed(
            &format!("list pods ({CONTROLLER_UID}={uid}, jobs/{name})"),
            pods.list(&ListParams::default().labels(&format!("{CONTROLLER_UID}={uid}"))),
        )
        .await?;
    let newest = listed
        .items
        .into_iter()
        .max_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
    let Some(pod) = newest else {
        return Ok(PodLog {
            text: String::new(),
            state: "gone (deleted with its Job's deadline, or by the node)".into(),
        });
    };
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let state = container_state(&pod, container.as_deref());
    let params = LogParams {
        container,
        tail_lines: Some(tail_lines(result_bytes)),
        ..LogParams::default()
    };
    let text = cluster
        .timed_tolerating(
            &format!("get pods/{pod_name}/log"),
            &[400, 404],
            pods.logs(&pod_name, &params),
        )
        .await?
        .unwrap_or_default();
    Ok(PodLog { text, state })
}

/// How the pod's container is, in words, when that says more than its log: waiting (with the
/// kubelet's reason and message), terminated other than by exiting 0, or the pod's own reason.
fn container_state(pod: &Pod, container: Option<&str>) -> String {
    let Some(status) = pod.status.as_ref() else {
        return String::new();
    };
    let statuses = status.container_statuses.clone().unwrap_or_default();
    let mine = statuses
        .iter()
        .find(|s| Some(s.name.as_str()) == container)
        .or(statuses.first());
    let mut words = Vec::new();
    if let Some(reason) = status.reason.as_deref() {
        words.push(format!(
            "{reason} {}",
            status.message.as_deref().unwrap_or_default()
        ));
    }
    if let Some(state) = mine.and_then(|s| s.state.as_ref()) {
        if let Some(waiting) = &state.waiting {
            words.push(format!(
                "waiting: {} {}",
                waiting.reason.as_deref().unwrap_or_default(),
                waiting.message.as_deref().unwrap_or_default()
            ));
        }
        if let Some(ended) = state.terminated.as_ref().filter(|t| t.exit_code != 0) {
            words.push(format!(
                "exited {} ({})",
                ended.exit_code,
                ended.reason.as_deref().unwrap_or_default()
            ));
        }
    }
    words.join("; ").trim().to_owned()
}

/// The last line of our result protocol in a log: a JSON object with `"token_rotator": 1`.
pub(super) fn result_line(log: &str) -> Option<Value> {
    log.lines()
        .rev()
        .filter(|l| l.trim_start().starts_with('{'))
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .find(|v| v["token_rotator"] == json!(1))
}

/// The log's last lines, on one line, with anything shaped like a token taken out.
fn tail(log: &str) -> String {
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
    fn a_long_result_is_read_back_from_its_first_piece() {
        assert_eq!(tail_lines(0), 100);
        // 3 MB in 8 KiB pieces is 367 of the node's lines, and the boot lines before them.
        assert_eq!(tail_lines(3_000_000), 100 + 367);
    }

    #[test]
    fn a_log_tail_never_carries_something_shaped_like_a_token() {
        let token = "Zq3v9xJk2LmN4pQr6StU8wXy0AbCdEfGhIjKlMnOpQ";
        let tail = tail(&format!("boot\nerror: token {token} rejected\n"));
        assert!(!tail.contains(token), "{tail}");
        assert!(tail.contains("error: token [redacted] rejected"), "{tail}");
    }
}
