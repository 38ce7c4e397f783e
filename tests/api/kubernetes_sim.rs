//! The Kubernetes simulator refuses what the API server refuses, with the same
//! status and `Status` body, and its controllers do what the cluster's do. One test per rule;
//! the source of each is beside the rule in `src/sim/kubernetes/`.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use reqwest::Method;
use serde_json::{Value, json};
use token_rotator::clock::{Clock, ManualClock};
use token_rotator::sim::Running;
use token_rotator::sim::kubernetes::{JobBehaviour, KubernetesSim, Rollout, SecretUse};

const NS: &str = "apps";
const APPLY: &str = "application/apply-patch+yaml";

struct Api {
    sim: Arc<KubernetesSim>,
    clock: Arc<ManualClock>,
    running: Running,
    client: reqwest::Client,
}

impl Api {
    async fn start() -> Self {
        token_rotator::install_crypto_provider();
        let clock = Arc::new(ManualClock::new(Timestamp::now()));
        let sim = KubernetesSim::with_clock(clock.clone() as Arc<dyn Clock>);
        sim.set_runner(Arc::new(|run| Ok(format!("ran {:?}\n", run.command))));
        sim.add_sync_cronjob(NS, "signon-sync-token-secrets-to-k8s");
        let running = sim.start().await.unwrap();
        Self {
            sim,
            clock,
            running,
            client: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        kind: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.running.url()));
        if let Some(body) = body {
            request = request.header("content-type", kind).body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let code = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn apply(&self, name: &str, manager: &str, force: bool, body: Value) -> (u16, Value) {
        let path = format!(
            "/api/v1/namespaces/{NS}/secrets/{name}?fieldManager={manager}{}",
            if force { "&force=true" } else { "" }
        );
        self.call(Method::PATCH, &path, APPLY, Some(body)).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, "", None).await
    }

    async fn create_job(&self, job: Value) -> (u16, Value) {
        let path = format!("/apis/batch/v1/namespaces/{NS}/jobs");
        self.call(Method::POST, &path, "application/json", Some(job))
            .await
    }
}

fn secret(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque", "data": data})
}

fn managers(secret: &Value) -> Vec<String> {
    secret["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_status(body: &Value, code: u16, reason: &str, message: &str) {
    assert_eq!(body["kind"], "Status", "{body:#}");
    assert_eq!(body["status"], "Failure");
    assert_eq!(body["code"], code);
    assert_eq!(body["reason"], reason);
    assert!(
        body["message"].as_str().unwrap().contains(message),
        "{body:#}"
    );
}

#[tokio::test]
async fn apply_conflicts_name_the_owner_equal_values_are_shared_and_force_takes_the_field() {
    let api = Api::start().await;
    api.sim.put(NS, "s", "bearer_token", "one");
    // The same value: no conflict, both own it.
    let (code, body) = api
        .apply(
            "s",
            "rotator",
            false,
            secret("s", json!({"bearer_token": "b25l"})),
        )
        .await;
    assert_eq!(code, 200, "{body:#}");
    assert_eq!(managers(&body), ["rotator", "signon"]);
    // Another value: 409 naming the real manager and the field.
    let (code, body) = api
        .apply(
            "s",
            "rotator",
            false,
            secret("s", json!({"bearer_token": "dHdv"})),
        )
        .await;
    assert_eq!(code, 409);
    assert_status(
        &body,
        409,
        "Conflict",
        "Apply failed with 1 conflict: conflict with \"signon\": .data.bearer_token",
    );
    assert_eq!(
        body["details"]["causes"][0]["reason"],
        "FieldManagerConflict"
    );
    assert_eq!(
        api.sim.value(NS, "s", "bearer_token").as_deref(),
        Some("one")
    );
    // Forced: the field changes hands.
    let (code, body) = api
        .apply(
            "s",
            "rotator",
            true,
            secret("s", json!({"bearer_token": "dHdv"})),
        )
        .await;
    assert_eq!(code, 200);
    let owned = &body["metadata"]["managedFields"];
    assert_eq!(owned[0]["manager"], "rotator");
    assert_eq!(owned[0]["fieldsV1"]["f:data"]["f:bearer_token"], json!({}));
    assert!(
        owned
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["manager"] != "signon" || m["fieldsV1"]["f:data"].is_null()),
        "{owned:#}"
    );
}

/// A fault that answers for the API server (here a 200 whose body is not JSON) wrote nothing:
/// the admissions, which tests count writes by, do not show it as a write.
#[tokio::test]
async fn a_faulted_answer_is_no_admitted_write() {
    let api = Api::start().await;
    api.sim.put(NS, "s", "bearer_token", "one");
    api.sim
        .faults
        .next("apply", token_rotator::sim::Fault::Malformed, 1);
    let body = secret("s", json!({"bearer_token": "dHdv"}));
    let (code, _) = api.apply("s", "token-rotator", true, body.clone()).await;
    assert_eq!(code, 200, "the fault answers 200 with half an answer");
    assert_eq!(
        api.sim.value(NS, "s", "bearer_token").as_deref(),
        Some("one")
    );
    assert!(
        api.sim.admissions().is_empty(),
        "{:#?}",
        api.sim.admissions()
    );
    let (code, _) = api.apply("s", "token-rotator", true, body).await;
    assert_eq!(code, 200);
    assert_eq!(api.sim.admissions().len(), 1, "the real write is admitted");
}

#[tokio::test]
async fn a_field_left_out_of_an_apply_goes_unless_someone_else_owns_it() {
    let api = Api::start().await;
    let (code, _) = api
        .apply(
            "s",
            "rotator",
            false,
            secret("s", json!({"a": "YQ==", "b": "Yg=="})),
        )
        .await;
    assert_eq!(code, 201, "an apply that creates");
    let (_, body) = api
        .apply("s", "rotator", false, secret("s", json!({"a": "YQ=="})))
        .await;
    assert!(body["data"]["b"].is_null(), "{body:#}");
    // Creating by apply is authorised as `create` too.
    assert!(
        api.sim
            .requests()
            .iter()
            .any(|r| r.verb == "create" && r.resource == "secrets")
    );
}

#[tokio::test]
async fn what_the_api_server_refuses_before_storing_anything() {
    let api = Api::start().await;
    api.sim.put(NS, "s", "bearer_token", "one");
    // `type` is immutable.
    let mut tls = secret("s", json!({"bearer_token": "b25l"}));
    tls["type"] = json!("kubernetes.io/tls");
    let (code, body) = api.apply("s", "rotator", true, tls).await;
    assert_eq!(code, 422);
    assert_status(
        &body,
        422,
        "Invalid",
        "Secret \"s\" is invalid: type: Invalid value: \"kubernetes.io/tls\": field is immutable",
    );
    // A name that is not a DNS-1123 subdomain.
    let (code, body) = api
        .apply("Bad_Name", "rotator", true, secret("Bad_Name", json!({})))
        .await;
    assert_eq!(code, 422);
    assert_status(
        &body,
        422,
        "Invalid",
        "a lowercase RFC 1123 subdomain must consist of",
    );
    assert_eq!(body["details"]["causes"][0]["field"], "metadata.name");
    // The name in the body is the URL's.
    let (code, body) = api
        .apply("s", "rotator", true, secret("t", json!({})))
        .await;
    assert_eq!(code, 400);
    assert_status(
        &body,
        400,
        "BadRequest",
        "does not match the name on the URL",
    );
    // The type in the body is the URL's.
    let mut config_map = secret("s", json!({}));
    config_map["kind"] = json!("ConfigMap");
    let (code, _) = api.apply("s", "rotator", true, config_map).await;
    assert_eq!(code, 400);
    // A Job's label values: at most 63 characters.
    let mut job = job("labelled", "Never");
    job["metadata"]["labels"] = json!({"token-rotator.alphagov.co.uk/rotation-id": "x".repeat(64)});
    let (code, body) = api.create_job(job).await;
    assert_eq!(code, 422);
    assert_status(&body, 422, "Invalid", "must be no more than 63 characters");
    // A Job's pods never restart in place.
    let (code, body) = api.create_job(job_with("always", "Always")).await;
    assert_eq!(code, 422);
    assert_status(
        &body,
        422,
        "Invalid",
        "spec.template.spec.restartPolicy: Unsupported value: \"Always\"",
    );
    // A protobuf body: the simulator speaks JSON only, and says so.
    let path = format!("/apis/batch/v1/namespaces/{NS}/jobs");
    let (code, _) = api
        .call(
            Method::POST,
            &path,
            "application/vnd.kubernetes.protobuf",
            Some(json!({})),
        )
        .await;
    assert_eq!(code, 415);
}

/// A Job whose container boots in Signon's image: the database URL from its Secret.
fn job(name: &str, restart: &str) -> Value {
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

fn job_with(name: &str, restart: &str) -> Value {
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

#[tokio::test]
async fn deployment_status_lags_and_an_hpa_makes_a_generation_but_no_revision() {
    let api = Api::start().await;
    api.sim.add_deployment(
        NS,
        "frontend",
        "s",
        SecretUse::Env,
        false,
        Rollout::Finishes,
    );
    let path = format!("/apis/apps/v1/namespaces/{NS}/deployments/frontend");
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}});
    let (code, _) = api
        .call(
            Method::PATCH,
            &path,
            "application/strategic-merge-patch+json",
            Some(patch),
        )
        .await;
    assert_eq!(code, 200);
    let (_, seen) = api.get(&path).await;
    assert_eq!(seen["metadata"]["generation"], 2);
    assert_eq!(seen["status"]["observedGeneration"], 1, "not yet observed");
    let (_, seen) = api.get(&path).await;
    assert_eq!(seen["status"]["observedGeneration"], 2);
    assert_eq!(
        seen["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    assert_eq!(
        seen["status"]["updatedReplicas"], 1,
        "one new pod at a time"
    );
    assert_eq!(
        seen["status"]["replicas"], 3,
        "a surge pod beside the old ones"
    );
    api.sim.scale(NS, "frontend", 4);
    for _ in 0..5 {
        api.get(&path).await;
    }
    let (_, seen) = api.get(&path).await;
    assert_eq!(seen["metadata"]["generation"], 3);
    assert_eq!(
        seen["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    let progressing = seen["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .unwrap()
        .clone();
    assert_eq!(progressing["reason"], "NewReplicaSetAvailable");
}
