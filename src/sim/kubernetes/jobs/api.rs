//! The API server's side of Jobs and CronJobs: what it refuses in a Job before storing it, and
//! the create, get and list endpoints (each read is a step of the controllers, `super`).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::sim::kubernetes::pods::{Selector, job_labels, matches, pod_for};
use crate::sim::kubernetes::validation::{
    dns1123_label, dns1123_subdomain, invalid, labels, type_meta,
};
use crate::sim::kubernetes::{KubernetesSim, list_of, not_found, status};

use super::{JobBehaviour, SimJob, finished, operation_of};

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

pub(in crate::sim::kubernetes) async fn create_job(
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
    // Admission sees the object after defaulting, before it is stored (and before any pod).
    let admission = crate::sim::kubernetes::Admission {
        operation: "CREATE",
        group: "batch".into(),
        resource: "jobs".into(),
        namespace: namespace.clone(),
        name: name.clone(),
        object: job.clone(),
        old_object: Value::Null,
    };
    if let Some(denied) = sim.judge(&admission) {
        return denied;
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

pub(in crate::sim::kubernetes) async fn get_job(
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

pub(in crate::sim::kubernetes) async fn list_jobs(
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

pub(in crate::sim::kubernetes) async fn get_cronjob(
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
