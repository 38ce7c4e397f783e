//! Pods, as the Job controller makes them and the kubelet runs them: a random name suffix, the
//! Job's labels (`batch.kubernetes.io/controller-uid`, `job-name`), and a lifecycle — `Pending`
//! (container `ContainerCreating`, or `CreateContainerConfigError` while an `env`/`envFrom`
//! reference does not resolve), `Running`, then `Succeeded` or `Failed`. The log endpoint answers
//! 400 while the container waits and 404 once the pod is gone, as the kubelet and the API server
//! do.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{KubernetesSim, list_of, not_found, status};

/// The Job controller's labels on its pods (kubernetes.io/docs/reference/labels-annotations-
/// taints/: `batch.kubernetes.io/controller-uid`, `batch.kubernetes.io/job-name`, and the
/// legacy `controller-uid`, `job-name`), also set on the Job's template and selector.
pub(super) fn job_labels(job: &str, uid: &str) -> Value {
    json!({
        "batch.kubernetes.io/controller-uid": uid, "controller-uid": uid,
        "batch.kubernetes.io/job-name": job, "job-name": job,
    })
}

pub(super) struct SimPod {
    pub object: Value,
    pub log: String,
}

impl SimPod {
    fn container(&self) -> String {
        self.object["spec"]["containers"][0]["name"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Where its container is: `waiting` (with a reason), `running`, `terminated`.
    fn waiting(&self) -> Option<String> {
        self.object["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
            .as_str()
            .map(str::to_owned)
    }

    pub fn set_waiting(&mut self, reason: &str, message: Option<&str>) {
        let mut waiting = json!({"reason": reason});
        if let Some(message) = message {
            waiting["message"] = json!(message);
        }
        self.object["status"]["phase"] = json!("Pending");
        self.object["status"]["containerStatuses"][0]["state"] = json!({"waiting": waiting});
    }

    pub fn set_running(&mut self, at: &str) {
        self.object["status"]["phase"] = json!("Running");
        self.object["status"]["startTime"] = json!(at);
        self.object["status"]["containerStatuses"][0]["ready"] = json!(true);
        self.object["status"]["containerStatuses"][0]["state"] =
            json!({"running": {"startedAt": at}});
    }

    pub fn set_terminated(&mut self, exit_code: i32, log: String, at: &str) {
        let (phase, reason) = if exit_code == 0 {
            ("Succeeded", "Completed")
        } else {
            ("Failed", "Error")
        };
        self.object["status"]["phase"] = json!(phase);
        self.object["status"]["containerStatuses"][0]["ready"] = json!(false);
        self.object["status"]["containerStatuses"][0]["state"] = json!({"terminated": {
            "exitCode": exit_code, "reason": reason, "finishedAt": at,
        }});
        self.log = log;
    }
}

/// A pod for `job`, named as the Job controller names it (`<job>-<5 random characters>`,
/// `k8s.io/apiserver/pkg/storage/names.SimpleNameGenerator` with `utilrand.String`'s alphabet).
pub(super) fn pod_for(job: &Value, namespace: &str, created: &str) -> SimPod {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let job_name = job["metadata"]["name"].as_str().unwrap_or("");
    let uid = job["metadata"]["uid"].as_str().unwrap_or("");
    let suffix: String = (0..5)
        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
        .collect();
    let template = &job["spec"]["template"];
    let mut labels = template["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    for (k, v) in job_labels(job_name, uid).as_object().into_iter().flatten() {
        labels[k] = v.clone();
    }
    let spec = template["spec"].clone();
    let container = &spec["containers"][0];
    let object = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("{job_name}-{suffix}"), "namespace": namespace,
            "uid": uuid::Uuid::new_v4().to_string(),
            "creationTimestamp": created,
            "labels": labels,
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job_name,
                                 "uid": uid, "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": spec,
        "status": {
            "phase": "Pending",
            "containerStatuses": [{
                "name": container["name"], "image": container["image"], "imageID": "",
                "ready": false, "restartCount": 0, "started": false,
                "state": {"waiting": {"reason": "ContainerCreating"}},
            }],
        },
    });
    SimPod {
        object,
        log: String::new(),
    }
}

/// What the kubelet gives the container: its environment with every reference resolved, or
/// why it cannot start. `env[].valueFrom.secretKeyRef`/`configMapKeyRef` and `envFrom` that do
/// not resolve (and are not `optional`) keep the container in `CreateContainerConfigError`
/// with the kubelet's message (`pkg/kubelet/kubelet_pods.go` `makeEnvironmentVariables`).
/// A volume from a missing Secret or ConfigMap keeps it in `ContainerCreating` (the mount
/// fails, `pkg/volume/secret`, `pkg/volume/configmap`).
pub(super) enum Start {
    Ready(BTreeMap<String, String>),
    Waiting {
        reason: &'static str,
        message: Option<String>,
    },
}

impl KubernetesSim {
    fn secret_data(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, String>> {
        let secret = self.secret_object(namespace, name)?;
        Some(
            secret["data"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| {
                    let bytes = STANDARD.decode(v.as_str()?).ok()?;
                    Some((k.clone(), String::from_utf8(bytes).ok()?))
                })
                .collect(),
        )
    }

    pub(super) fn start_container(&self, namespace: &str, spec: &Value) -> Start {
        let config = |reason| Start::Waiting {
            reason: "CreateContainerConfigError",
            message: Some(reason),
        };
        for volume in spec["volumes"].as_array().into_iter().flatten() {
            let missing = if let Some(name) = volume["secret"]["secretName"].as_str() {
                volume["secret"]["optional"] != true
                    && self.secret_object(namespace, name).is_none()
            } else if let Some(name) = volume["configMap"]["name"].as_str() {
                volume["configMap"]["optional"] != true
                    && self.config_map(namespace, name).is_none()
            } else {
                false
            };
            if missing {
                return Start::Waiting {
                    reason: "ContainerCreating",
                    message: None,
                };
            }
        }
        let container = &spec["containers"][0];
        let mut env = BTreeMap::new();
        for from in container["envFrom"].as_array().into_iter().flatten() {
            let prefix = from["prefix"].as_str().unwrap_or("");
            let (data, kind, source) = if let Some(name) = from["secretRef"]["name"].as_str() {
                (
                    self.secret_data(namespace, name),
                    "secret",
                    &from["secretRef"],
                )
            } else if let Some(name) = from["configMapRef"]["name"].as_str() {
                (
                    self.config_map(namespace, name),
                    "configmap",
                    &from["configMapRef"],
                )
            } else {
                continue;
            };
            match data {
                Some(data) => {
                    env.extend(data.into_iter().map(|(k, v)| (format!("{prefix}{k}"), v)));
                }
                None if source["optional"] == true => {}
                None => {
                    return config(format!(
                        "{kind} \"{}\" not found",
                        source["name"].as_str().unwrap_or("")
                    ));
                }
            }
        }
        for var in container["env"].as_array().into_iter().flatten() {
            let Some(name) = var["name"].as_str() else {
                continue;
            };
            if let Some(value) = var["value"].as_str() {
                env.insert(name.to_owned(), value.to_owned());
                continue;
            }
            let from = &var["valueFrom"];
            let (reference, kind, data) = if from["secretKeyRef"].is_object() {
                let r = &from["secretKeyRef"];
                let data = self.secret_data(namespace, r["name"].as_str().unwrap_or(""));
                (r, ("secret", "Secret"), data)
            } else if from["configMapKeyRef"].is_object() {
                let r = &from["configMapKeyRef"];
                let data = self.config_map(namespace, r["name"].as_str().unwrap_or(""));
                (r, ("configmap", "ConfigMap"), data)
            } else {
                // fieldRef / resourceFieldRef: the downward API always resolves.
                continue;
            };
            let source = reference["name"].as_str().unwrap_or("");
            let key = reference["key"].as_str().unwrap_or("");
            let optional = reference["optional"] == true;
            match data.map(|d| d.get(key).cloned()) {
                Some(Some(value)) => {
                    env.insert(name.to_owned(), value);
                }
                _ if optional => {}
                None => return config(format!("{} \"{source}\" not found", kind.0)),
                Some(None) => {
                    return config(format!(
                        "couldn't find key {key} in {} {namespace}/{source}",
                        kind.1
                    ));
                }
            }
        }
        Start::Ready(env)
    }

    /// The pods of `namespace` (sorted by name, as the API server lists them: etcd's key order).
    fn pods_in(&self, namespace: &str) -> Vec<Value> {
        let pods = self.pods.lock().expect("lock never poisoned");
        pods.iter()
            .filter(|((ns, _), _)| ns == namespace)
            .map(|(_, p)| p.object.clone())
            .collect()
    }

    /// From now on each Job of `operation` is made beside an earlier pod of a Job of the same
    /// name, left by its deletion (`kubectl delete job --cascade=orphan`, or the garbage
    /// collector not there yet), whose container failed printing `log`.
    pub fn orphan_pods_for(&self, operation: &str, log: &str) {
        self.orphans
            .lock()
            .expect("lock never poisoned")
            .insert(operation.to_owned(), log.to_owned());
    }

    /// An earlier pod of a Job named `job`: it has the `job-name` label, but another Job's
    /// `controller-uid`, and its own log; it sorts after any pod the Job controller names.
    pub(super) fn leave_orphan_pod(&self, namespace: &str, job: &str, log: &str) {
        let created = (self.now() - jiff::SignedDuration::from_hours(1)).to_string();
        let old = json!({
            "metadata": {"name": job, "uid": uuid::Uuid::new_v4().to_string()},
            "spec": {"template": {"spec": {"containers": [{"name": "cron-task", "image": "signon"}]}}},
        });
        let mut pod = pod_for(&old, namespace, &created);
        // After any suffix the Job controller picks, in name order.
        let name = format!("{job}-zzzzz");
        pod.object["metadata"]["name"] = json!(name);
        pod.object["metadata"]["ownerReferences"] = json!([]);
        pod.set_terminated(1, log.to_owned(), &created);
        self.pods
            .lock()
            .expect("lock never poisoned")
            .insert((namespace.to_owned(), name), pod);
    }
}

#[derive(Deserialize)]
pub(super) struct Selector {
    #[serde(rename = "labelSelector")]
    pub label_selector: Option<String>,
}

/// Equality-based selectors (`k=v`, `k==v`, `k!=v`, `k`): what kubectl and token-rotator send
/// (kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors).
pub(super) fn matches(labels: &Value, selector: Option<&str>) -> bool {
    selector
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .all(|term| {
            if let Some((k, v)) = term.split_once("!=") {
                labels[k.trim()].as_str() != Some(v.trim())
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                labels[k.trim()].as_str() == Some(v.trim())
            } else if let Some(k) = term.strip_prefix('!') {
                labels[k].is_null()
            } else {
                !labels[term].is_null()
            }
        })
}

pub(super) async fn list_pods(
    State(sim): State<Arc<KubernetesSim>>,
    Path(namespace): Path<String>,
    Query(query): Query<Selector>,
) -> Response {
    if let Some(fault) = sim.faults.check("list pods").await {
        return fault;
    }
    sim.collect_garbage();
    let items = sim
        .pods_in(&namespace)
        .into_iter()
        .filter(|pod| matches(&pod["metadata"]["labels"], query.label_selector.as_deref()))
        .collect();
    list_of("PodList", "v1", items, sim.next_version())
}

pub(super) async fn get_pod(
    State(sim): State<Arc<KubernetesSim>>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let pods = sim.pods.lock().expect("lock never poisoned");
    match pods.get(&(namespace, name.clone())) {
        Some(pod) => Json(pod.object.clone()).into_response(),
        None => not_found("pods", &name),
    }
}

#[derive(Deserialize)]
pub(super) struct LogQuery {
    container: Option<String>,
    #[serde(rename = "tailLines")]
    tail_lines: Option<usize>,
}

/// `GET pods/<name>/log`: 404 for a pod that is not there; 400 for a container that is not
/// the pod's, or that is waiting to start (the kubelet's `validateContainerLogStatus`,
/// `pkg/kubelet/kubelet_pods.go`: "container %q in pod %q is waiting to start: %s").
pub(super) async fn pod_log(
    State(sim): State<Arc<KubernetesSim>>,
    Path((namespace, name)): Path<(String, String)>,
    Query(query): Query<LogQuery>,
) -> Response {
    if let Some(fault) = sim.faults.check("pod log").await {
        return fault;
    }
    let pods = sim.pods.lock().expect("lock never poisoned");
    let Some(pod) = pods.get(&(namespace, name.clone())) else {
        return not_found("pods", &name);
    };
    let container = pod.container();
    if let Some(asked) = query.container.filter(|c| *c != container) {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("container {asked} is not valid for pod {name}"),
        );
    }
    if let Some(reason) = pod.waiting() {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"),
        );
    }
    tail(&pod.log, query.tail_lines).into_response()
}

/// The most a container runtime writes of a line as one line of the node's log file
/// (containerd's `max_container_log_line_size`, 16 KiB by default): a longer line is split.
pub const LOG_PIECE: usize = 16 * 1024;

/// The log as the kubelet answers it: each line kept in the node's file as pieces of at most
/// [`LOG_PIECE`] bytes (`P` partial, the last `F` full), `tailLines` counted in pieces, and the
/// pieces joined again in the answer (`pkg/kubelet/kuberuntime/logs/logs.go`: a partial piece
/// is written without its newline). A tail that begins inside a long line answers that line cut.
fn tail(log: &str, tail_lines: Option<usize>) -> String {
    let mut pieces: Vec<(&[u8], bool)> = Vec::new();
    for line in log.lines() {
        let bytes = line.as_bytes();
        if bytes.is_empty() {
            pieces.push((bytes, true));
        }
        let mut chunks = bytes.chunks(LOG_PIECE).peekable();
        while let Some(chunk) = chunks.next() {
            pieces.push((chunk, chunks.peek().is_none()));
        }
    }
    let from = tail_lines.map_or(0, |n| pieces.len().saturating_sub(n));
    let mut out = Vec::new();
    for (piece, full) in &pieces[from..] {
        out.extend_from_slice(piece);
        if *full {
            out.push(b'\n');
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_counts_the_pieces_of_a_long_line_and_joins_them() {
        let long = "x".repeat(LOG_PIECE * 2 + 10);
        let log = format!("boot\n{long}\nlast\n");
        // The long line is three pieces: four lines of the node's file are boot's last one.
        assert_eq!(tail(&log, None), log);
        assert_eq!(tail(&log, Some(5)), log);
        assert_eq!(tail(&log, Some(4)), format!("{long}\nlast\n"));
        // Two lines asked for: the long line's last piece, cut, and the last line.
        assert_eq!(tail(&log, Some(2)), format!("{}\nlast\n", "x".repeat(10)));
        assert_eq!(tail("a\n\nb\n", Some(2)), "\nb\n");
    }
}
