//! The part of the Kubernetes API token-rotator calls, in kube's real wire format: Secrets (get,
//! server-side apply with per-field ownership), Jobs (create, get; their pods with a lifecycle
//! and logs; deleted by TTL and by their CronJob's history limits), CronJobs (get), Deployments
//! (list, get, the restart patch; a controller whose status lags and can miss its progress
//! deadline; an HPA), Leases (get, create, update; for leader election), and the discovery
//! documents kubectl reads first. Every request is recorded with the verb the API server
//! authorises, so tests can hold the shipped RBAC Role against what was really asked for.
//!
//! It refuses what the API server refuses, with the same status and `Status` body: each rule
//! names its source beside it.
//!
//! Jobs "run" through a [`JobRunner`]: the code standing in for the container (see
//! [`super::rails`], which does what the Signon scripts do, against the Signon simulator), inside
//! Signon's image ([`image`]).

mod admission;
mod deployments;
mod discovery;
pub mod image;
mod jobs;
mod leases;
mod pods;
mod secrets;
mod validation;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

pub use admission::{Admission, Denial, Policies};
pub use deployments::{Rollout, SecretUse};
pub use jobs::{JobBehaviour, JobRun, JobRunner};
pub use pods::LOG_PIECE;

use super::{Faults, Running};
use crate::clock::{Clock, SystemClock};

/// One API request as RBAC sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiRequest {
    pub verb: String,
    /// `""` (core), `"batch"` or `"apps"`.
    pub group: String,
    /// `secrets`, `jobs`, `pods`, `pods/log`, `cronjobs`, `deployments`.
    pub resource: String,
    pub namespace: String,
    pub name: Option<String>,
}

pub struct KubernetesSim {
    pub faults: Faults,
    /// Before every answer (the bench's latency profile).
    pub latency: Arc<super::Latency>,
    /// The controllers' time: TTLs and progress deadlines pass by it.
    clock: Arc<dyn Clock>,
    /// `(namespace, name)` → the stored Secret object.
    secrets: Mutex<BTreeMap<(String, String), Value>>,
    jobs: Mutex<BTreeMap<(String, String), jobs::SimJob>>,
    cronjobs: Mutex<BTreeMap<(String, String), Value>>,
    deployments: Mutex<BTreeMap<(String, String), deployments::SimDeployment>>,
    leases: Mutex<BTreeMap<(String, String), Value>>,
    /// `(namespace, name)` → the Pod, its log and how it runs. Pods outlive their Job only when
    /// orphaned.
    pods: Mutex<BTreeMap<(String, String), pods::SimPod>>,
    /// `(namespace, name)` → a ConfigMap's data.
    config_maps: Mutex<BTreeMap<(String, String), BTreeMap<String, String>>>,
    /// What the next Jobs of an operation do, in order; then they run.
    job_plan: Mutex<BTreeMap<String, VecDeque<JobBehaviour>>>,
    runner: Mutex<Option<JobRunner>>,
    /// Operation → how many of its next Jobs lose their pod once finished.
    lost_pods: Mutex<BTreeMap<String, usize>>,
    /// Operation → the log of an orphaned pod each of its Jobs is made beside.
    orphans: Mutex<BTreeMap<String, String>>,
    /// Every Job created, `(name, operation, as created)`, deleted ones included.
    created_jobs: Mutex<Vec<(String, String, Value)>>,
    requests: Mutex<Vec<ApiRequest>>,
    /// The writes to Secrets, Jobs and Deployments, as admission would see them.
    admissions: Mutex<Vec<Admission>>,
    /// Admission policies in force (tests put the shipped ones there); none: every write passes.
    policies: Mutex<Option<Policies>>,
    /// The most Jobs running (created, not finished) at once.
    peak_jobs: Mutex<usize>,
    resource_version: Mutex<u64>,
}

impl KubernetesSim {
    pub fn new() -> Arc<Self> {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// A cluster whose controllers keep `clock`'s time (the tests' manual clock).
    pub fn with_clock(clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self {
            faults: Faults::default(),
            latency: Arc::default(),
            clock,
            secrets: Mutex::default(),
            jobs: Mutex::default(),
            cronjobs: Mutex::default(),
            deployments: Mutex::default(),
            leases: Mutex::default(),
            pods: Mutex::default(),
            config_maps: Mutex::default(),
            job_plan: Mutex::default(),
            runner: Mutex::default(),
            created_jobs: Mutex::default(),
            orphans: Mutex::default(),
            lost_pods: Mutex::default(),
            requests: Mutex::default(),
            admissions: Mutex::default(),
            policies: Mutex::default(),
            peak_jobs: Mutex::default(),
            resource_version: Mutex::default(),
        })
    }

    fn now(&self) -> jiff::Timestamp {
        self.clock.now()
    }

    /// A ConfigMap with `data`, as `kubectl apply` would leave it.
    pub fn put_config_map(&self, namespace: &str, name: &str, data: &[(&str, &str)]) {
        let data = data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.config_maps
            .lock()
            .expect("lock never poisoned")
            .insert((namespace.to_owned(), name.to_owned()), data);
    }

    fn config_map(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, String>> {
        let maps = self.config_maps.lock().expect("lock never poisoned");
        maps.get(&(namespace.to_owned(), name.to_owned())).cloned()
    }

    pub async fn start(self: &Arc<Self>) -> std::io::Result<Running> {
        let router = Router::new()
            .route(
                "/api/v1/namespaces/{namespace}/secrets/{name}",
                get(secrets::get_secret).patch(secrets::apply_secret),
            )
            .route(
                "/apis/batch/v1/namespaces/{namespace}/jobs",
                get(jobs::list_jobs).post(jobs::create_job),
            )
            .route(
                "/apis/batch/v1/namespaces/{namespace}/jobs/{name}",
                get(jobs::get_job),
            )
            .route(
                "/apis/batch/v1/namespaces/{namespace}/cronjobs/{name}",
                get(jobs::get_cronjob),
            )
            .route("/api/v1/namespaces/{namespace}/pods", get(pods::list_pods))
            .route(
                "/api/v1/namespaces/{namespace}/pods/{name}",
                get(pods::get_pod),
            )
            .route(
                "/api/v1/namespaces/{namespace}/pods/{name}/log",
                get(pods::pod_log),
            )
            .route(
                "/apis/apps/v1/namespaces/{namespace}/deployments",
                get(deployments::list),
            )
            .route(
                "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
                get(deployments::get).patch(deployments::patch),
            )
            .route(
                "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases",
                axum::routing::post(leases::create_lease),
            )
            .route(
                "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}",
                get(leases::get_lease).put(leases::update_lease),
            )
            .merge(discovery::routes())
            .layer(middleware::from_fn_with_state(Arc::clone(self), record))
            .with_state(Arc::clone(self));
        super::serve(super::delayed(router, Arc::clone(&self.latency))).await
    }

    /// Every request received so far, in order.
    /// The most Jobs that were running (created, not yet finished) at once.
    pub fn peak_jobs(&self) -> usize {
        *self.peak_jobs.lock().expect("lock never poisoned")
    }

    pub fn requests(&self) -> Vec<ApiRequest> {
        self.requests.lock().expect("lock never poisoned").clone()
    }

    /// What a Job's container does: set by whoever plays the image (the world, the demo). It
    /// runs in Signon's image, which boots only in Signon's environment ([`image::boot`]).
    pub fn set_runner(&self, runner: JobRunner) {
        *self.runner.lock().expect("lock never poisoned") = Some(image::signon(runner));
    }

    /// The next `times` Jobs of `operation` (`mint`, `revoke`, `list`, `sync`) behave so.
    pub fn next_jobs(&self, operation: &str, behaviour: JobBehaviour, times: usize) {
        let mut plan = self.job_plan.lock().expect("lock never poisoned");
        plan.entry(operation.to_owned())
            .or_default()
            .extend(std::iter::repeat_n(behaviour, times));
    }

    fn next_version(&self) -> String {
        let mut version = self.resource_version.lock().expect("lock never poisoned");
        *version += 1;
        version.to_string()
    }

    /// Records a request the API server authorises beyond the one its method names (an apply
    /// that creates is also authorised as `create`).
    fn record_also(&self, verb: &str, group: &str, resource: &str, namespace: &str, name: &str) {
        self.requests
            .lock()
            .expect("lock never poisoned")
            .push(ApiRequest {
                verb: verb.to_owned(),
                group: group.to_owned(),
                resource: resource.to_owned(),
                namespace: namespace.to_owned(),
                name: Some(name.to_owned()),
            });
    }
}

/// Records the request as RBAC would name it, from its method and path.
async fn record(State(sim): State<Arc<KubernetesSim>>, request: Request, next: Next) -> Response {
    let parts: Vec<&str> = request.uri().path().trim_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => ("?", &parts[..0]),
    };
    if let ["namespaces", namespace, resource, rest @ ..] = rest {
        let (name, subresource) = match rest {
            [] => (None, None),
            [name] => (Some((*name).to_owned()), None),
            [name, sub, ..] => (Some((*name).to_owned()), Some(*sub)),
        };
        // `?watch=true` is its own verb (kubernetes.io/docs/reference/access-authn-authz/
        // authorization/#determine-the-request-verb).
        let watch = request
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
        let verb = match (request.method().clone(), &name) {
            (Method::GET, _) if watch => "watch",
            (Method::GET, None) => "list",
            (Method::GET, Some(_)) => "get",
            (Method::POST, _) => "create",
            (Method::PATCH, _) => "patch",
            (Method::PUT, _) => "update",
            (Method::DELETE, _) => "delete",
            _ => "?",
        };
        let resource = match subresource {
            Some(sub) => format!("{resource}/{sub}"),
            None => (*resource).to_owned(),
        };
        sim.requests
            .lock()
            .expect("lock never poisoned")
            .push(ApiRequest {
                verb: verb.to_owned(),
                group: group.to_owned(),
                resource: resource.clone(),
                namespace: (*namespace).to_owned(),
                name: name.clone(),
            });
        let writes = matches!(verb, "create" | "patch" | "update" | "delete");
        if writes && admission::ADMITTED.contains(&resource.as_str()) {
            let (group, namespace) = (group.to_owned(), (*namespace).to_owned());
            return admit(&sim, request, next, group, resource, namespace, name).await;
        }
    }
    next.run(request).await
}

/// Runs a write and records what admission would have been shown: the object before and after.
async fn admit(
    sim: &KubernetesSim,
    request: Request,
    next: Next,
    group: String,
    resource: String,
    namespace: String,
    name: Option<String>,
) -> Response {
    // A create names its object in the body.
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 16 << 20).await else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "unreadable body".into(),
        );
    };
    let name = name.or_else(|| {
        serde_json::from_slice::<Value>(&bytes).ok()?["metadata"]["name"]
            .as_str()
            .map(str::to_owned)
    });
    let deleting = parts.method == Method::DELETE;
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
    let Some(name) = name else {
        return next.run(request).await;
    };
    let before = sim.stored(&resource, &namespace, &name);
    let response = next.run(request).await;
    // A fault answered instead of the API server: nothing was written, whatever the status.
    if response.status().is_success() && response.extensions().get::<super::Injected>().is_none() {
        let after = if deleting {
            None
        } else {
            sim.stored(&resource, &namespace, &name)
        };
        let operation = match (&before, &after) {
            (_, None) => "DELETE",
            (None, Some(_)) => "CREATE",
            (Some(_), Some(_)) => "UPDATE",
        };
        sim.admitted(Admission {
            operation,
            group,
            resource,
            namespace,
            name,
            object: after.unwrap_or(Value::Null),
            old_object: before.unwrap_or(Value::Null),
        });
    }
    response
}

pub(super) fn status(code: StatusCode, reason: &str, message: String) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16(),
    });
    (code, axum::Json(body)).into_response()
}

fn not_found(kind: &str, name: &str) -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("{kind} \"{name}\" not found"),
    )
}

fn list_of(kind: &str, api_version: &str, items: Vec<Value>, version: String) -> Response {
    axum::Json(json!({
        "kind": kind, "apiVersion": api_version,
        "metadata": {"resourceVersion": version}, "items": items,
    }))
    .into_response()
}
