//! The discovery documents a client such as kubectl reads before anything else: `/version`,
//! `/api`, `/apis` and each group version's resource list (legacy, unaggregated discovery:
//! kubernetes.io/docs/concepts/overview/kubernetes-api/#discovery-api; kubectl falls back to
//! it when the answer is not `application/json;g=apidiscovery.k8s.io`). Only the resources
//! simulated are listed, with the verbs the real API server lists for them.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn resource(name: &str, kind: &str, short: &[&str]) -> Value {
    json!({"name": name, "singularName": kind.to_lowercase(), "namespaced": true, "kind": kind,
           "verbs": VERBS, "shortNames": short})
}

fn list(group_version: &str, resources: Vec<Value>) -> Json<Value> {
    Json(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
                "resources": resources}),
    )
}

fn group(name: &str) -> Value {
    let version = json!({"groupVersion": format!("{name}/v1"), "version": "v1"});
    json!({"name": name, "versions": [version], "preferredVersion": version})
}

pub(super) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/version",
            get(|| async {
                Json(json!({"major": "1", "minor": "37", "gitVersion": "v1.37.0",
                            "platform": "linux/amd64"}))
            }),
        )
        .route(
            "/api",
            get(|| async {
                Json(json!({"kind": "APIVersions", "versions": ["v1"],
                            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                            "serverAddress": "127.0.0.1"}]}))
            }),
        )
        .route(
            "/apis",
            get(|| async {
                Json(
                    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                        group("apps"), group("batch"), group("coordination.k8s.io"),
                    ]}),
                )
            }),
        )
        .route(
            "/api/v1",
            get(|| async {
                let log = json!({"name": "pods/log", "singularName": "", "namespaced": true,
                                 "kind": "Pod", "verbs": ["get"]});
                list(
                    "v1",
                    vec![
                        resource("configmaps", "ConfigMap", &["cm"]),
                        resource("pods", "Pod", &["po"]),
                        log,
                        resource("secrets", "Secret", &[]),
                    ],
                )
            }),
        )
        .route(
            "/apis/apps/v1",
            get(|| async {
                list(
                    "apps/v1",
                    vec![resource("deployments", "Deployment", &["deploy"])],
                )
            }),
        )
        .route(
            "/apis/batch/v1",
            get(|| async {
                list(
                    "batch/v1",
                    vec![
                        resource("cronjobs", "CronJob", &["cj"]),
                        resource("jobs", "Job", &[]),
                    ],
                )
            }),
        )
        .route(
            "/apis/coordination.k8s.io/v1",
            get(|| async {
                list(
                    "coordination.k8s.io/v1",
                    vec![resource("leases", "Lease", &[])],
                )
            }),
        )
}
