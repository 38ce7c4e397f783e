//! The Kubernetes simulator refuses what the API server refuses, with the same
//! status and `Status` body, and its controllers do what the cluster's do. One test per rule;
//! the source of each is beside the rule in `src/sim/kubernetes/`.

mod jobs;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use reqwest::Method;
use serde_json::{Value, json};
use token_rotator::clock::{Clock, ManualClock};
use token_rotator::sim::Running;
use token_rotator::sim::kubernetes::{JobBehaviour, KubernetesSim, Rollout, SecretUse};

use jobs::{job, job_with};

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
