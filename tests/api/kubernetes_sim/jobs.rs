//! Jobs, their pods and the CronJob's history, as the Job and CronJob controllers keep them.

use super::*;

/// A Job whose container boots in Signon's image: the database URL from its Secret.
pub(super) fn job(name: &str, restart: &str) -> Value {
    let env = json!([
        {"name": "DATABASE_URL",
         "valueFrom": {"secretKeyRef": {"name": "signon-mysql", "key": "DATABASE_URL"}}},
        {"name": "SECRET_KEY_BASE", "value": "k"},
        {"name": "ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY", "value": "k"},
        {"name": "ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT", "value": "k"},
    ]);
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
           "spec": {"backoffLimit": 0, "ttlSecondsAfterFinished": 60,
                    "template": {"spec": {"restartPolicy": restart, "containers": [
                        {"name": "signon", "image": "signon",
                         "command": ["rake", "users:list"], "env": env}]}}}})
}

pub(super) fn job_with(name: &str, restart: &str) -> Value {
    job(name, restart)
}

async fn pods_of(api: &Api, job: &Value) -> Vec<Value> {
    let uid = job["metadata"]["uid"].as_str().unwrap();
    let (_, list) = api
        .get(&format!(
            "/api/v1/namespaces/{NS}/pods?labelSelector=batch.kubernetes.io/controller-uid%3D{uid}"
        ))
        .await;
    list["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_jobs_pod_has_a_lifecycle_and_a_log_only_once_its_container_ran() {
    let api = Api::start().await;
    let (code, created) = api.create_job(job("list-1", "Never")).await;
    assert_eq!(code, 201);
    // The API server's defaulting: the controller's labels and selector.
    let uid = created["metadata"]["uid"].as_str().unwrap();
    assert_eq!(
        created["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        uid
    );
    let pods = pods_of(&api, &created).await;
    assert_eq!(pods.len(), 1);
    let pod = pods[0]["metadata"]["name"].as_str().unwrap().to_owned();
    assert!(
        pod.starts_with("list-1-") && pod.len() == "list-1-".len() + 5,
        "{pod}"
    );
    assert_eq!(pods[0]["status"]["phase"], "Pending");
    let log = format!("/api/v1/namespaces/{NS}/pods/{pod}/log?container=signon");
    let (code, body) = api.get(&log).await;
    assert_eq!(code, 400);
    assert_status(
        &body,
        400,
        "BadRequest",
        &format!("container \"signon\" in pod \"{pod}\" is waiting to start: ContainerCreating"),
    );
    let (code, body) = api
        .get(&format!(
            "/api/v1/namespaces/{NS}/pods/{pod}/log?container=other"
        ))
        .await;
    assert_eq!(code, 400);
    assert_status(
        &body,
        400,
        "BadRequest",
        "container other is not valid for pod",
    );
    let job_path = format!("/apis/batch/v1/namespaces/{NS}/jobs/list-1");
    api.get(&job_path).await;
    assert_eq!(
        pods_of(&api, &created).await[0]["status"]["phase"],
        "Running"
    );
    let (_, finished) = api.get(&job_path).await;
    let types: Vec<&str> = finished["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["SuccessCriteriaMet", "Complete"]);
    assert_eq!(
        pods_of(&api, &created).await[0]["status"]["phase"],
        "Succeeded"
    );
    let (code, body) = api.get(&log).await;
    assert_eq!(code, 200);
    assert!(body.as_str().unwrap().contains("users:list"), "{body}");
    // ttlSecondsAfterFinished: the Job and its pod go, by the cluster's clock.
    api.clock.advance(Duration::from_secs(61));
    let (code, _) = api.get(&job_path).await;
    assert_eq!(code, 404);
    let (code, body) = api.get(&log).await;
    assert_eq!(code, 404);
    assert_status(&body, 404, "NotFound", &format!("pods \"{pod}\" not found"));
}

#[tokio::test]
async fn a_pod_whose_references_do_not_resolve_waits_then_the_deadline_fails_the_job() {
    let api = Api::start().await;
    api.sim.delete_secret(NS, "signon-mysql");
    let mut job = job("mint-1", "Never");
    job["spec"]["activeDeadlineSeconds"] = json!(300);
    let (_, created) = api.create_job(job).await;
    let path = format!("/apis/batch/v1/namespaces/{NS}/jobs/mint-1");
    api.get(&path).await;
    let pod = &pods_of(&api, &created).await[0];
    assert_eq!(pod["status"]["phase"], "Pending");
    let waiting = &pod["status"]["containerStatuses"][0]["state"]["waiting"];
    assert_eq!(waiting["reason"], "CreateContainerConfigError");
    assert_eq!(waiting["message"], "secret \"signon-mysql\" not found");
    let mut failed = Value::Null;
    for _ in 0..4 {
        failed = api.get(&path).await.1;
    }
    let last = failed["status"]["conditions"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["type"].as_str(), last["reason"].as_str()),
        (Some("Failed"), Some("DeadlineExceeded"))
    );
    // Its pod is deleted: terminating for its grace period, then gone.
    assert!(!pods_of(&api, &created).await[0]["metadata"]["deletionTimestamp"].is_null());
    api.clock.advance(Duration::from_secs(31));
    assert!(pods_of(&api, &created).await.is_empty());
}

#[tokio::test]
async fn the_cronjob_keeps_one_failed_job_of_its_own_manual_ones_included() {
    let api = Api::start().await;
    let (_, cronjob) = api
        .get(&format!(
            "/apis/batch/v1/namespaces/{NS}/cronjobs/signon-sync-token-secrets-to-k8s"
        ))
        .await;
    assert_eq!(cronjob["spec"]["failedJobsHistoryLimit"], 1);
    api.sim
        .next_jobs("sync", JobBehaviour::Fail("boom".into()), 2);
    for name in ["sync-a", "sync-b"] {
        let mut job = json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob",
                             "name": "signon-sync-token-secrets-to-k8s", "uid": cronjob["metadata"]["uid"],
                             "controller": true}]},
            "spec": cronjob["spec"]["jobTemplate"]["spec"].clone()});
        job["spec"]["template"]["metadata"] = json!({});
        let (code, body) = api.create_job(job).await;
        assert_eq!(code, 201, "{body:#}");
        api.clock.advance(Duration::from_secs(1));
        let path = format!("/apis/batch/v1/namespaces/{NS}/jobs/{name}");
        api.get(&path).await;
        api.get(&path).await;
    }
    let (code, _) = api
        .get(&format!("/apis/batch/v1/namespaces/{NS}/jobs/sync-a"))
        .await;
    assert_eq!(code, 404, "the older failed one is deleted");
    let (code, _) = api
        .get(&format!("/apis/batch/v1/namespaces/{NS}/jobs/sync-b"))
        .await;
    assert_eq!(code, 200);
}
