//! Deployment writes someone holding token-rotator's ServiceAccount token could make with its
//! RBAC (patch on every Deployment of `apps`), each denied: `object` against `oldObject`, only
//! the pod template's restart annotation may change.

use serde_json::{Value, json};

use super::{LEAST_PRIVILEGE, admitted, denied, find, shipped, writes};

#[tokio::test]
async fn deployment_changes_beyond_the_restart_annotation_are_denied() {
    let policies = shipped();
    let writes = writes().await;
    let p = &policies;
    let restart = find(&writes, "deployments", "UPDATE", &|_| true);
    let only = "only by its restart annotation";
    denied(
        p,
        &restart,
        &|w| w.container()["image"] = json!("busybox:1.36"),
        LEAST_PRIVILEGE,
        only,
    );
    denied(
        p,
        &restart,
        &|w| w.admission.object["spec"]["replicas"] = json!(0),
        LEAST_PRIVILEGE,
        only,
    );
    // Paused: the consumers never roll onto the new token, and the old one is revoked.
    denied(
        p,
        &restart,
        &|w| w.admission.object["spec"]["paused"] = json!(true),
        LEAST_PRIVILEGE,
        only,
    );
    denied(
        p,
        &restart,
        &|w| w.admission.object["spec"]["strategy"] = json!({"type": "Recreate"}),
        LEAST_PRIVILEGE,
        only,
    );
    denied(
        p,
        &restart,
        &|w| w.admission.object["spec"]["progressDeadlineSeconds"] = json!(2_147_483_647),
        LEAST_PRIVILEGE,
        only,
    );
    denied(
        p,
        &restart,
        &|w| w.admission.object["spec"]["minReadySeconds"] = json!(3600),
        LEAST_PRIVILEGE,
        only,
    );
    denied(
        p,
        &restart,
        &|w| {
            w.admission.object["spec"]["template"]["metadata"]["annotations"]["sidecar.istio.io/inject"] =
                json!("false");
        },
        LEAST_PRIVILEGE,
        only,
    );
    denied(
        p,
        &restart,
        &|w| {
            w.admission.object["spec"]["template"]["metadata"]["labels"]["app"] = json!("other");
        },
        LEAST_PRIVILEGE,
        only,
    );
    // Reloader's (or any) annotation on the Deployment itself.
    denied(
        p,
        &restart,
        &|w| {
            w.admission.object["metadata"]["annotations"]["reloader.stakater.com/auto"] =
                json!("false");
        },
        LEAST_PRIVILEGE,
        only,
    );
    denied(
        p,
        &restart,
        &|w| w.admission.object["metadata"]["labels"]["x"] = json!("y"),
        LEAST_PRIVILEGE,
        only,
    );
    denied(
        p,
        &restart,
        &|w| {
            w.admission.object["metadata"]["ownerReferences"] = json!([{
                "apiVersion": "v1", "kind": "ConfigMap", "name": "gone",
                "uid": "00000000-0000-0000-0000-000000000000",
            }]);
        },
        LEAST_PRIVILEGE,
        only,
    );
    denied(
        p,
        &restart,
        &|w| w.admission.object["metadata"]["finalizers"] = json!(["example.com/never"]),
        LEAST_PRIVILEGE,
        only,
    );
    denied(
        p,
        &restart,
        &|w| {
            w.admission.operation = "DELETE";
            w.admission.object = Value::Null;
        },
        LEAST_PRIVILEGE,
        only,
    );
    denied(
        p,
        &restart,
        &|w| {
            w.admission.operation = "CREATE";
            w.admission.old_object = Value::Null;
        },
        LEAST_PRIVILEGE,
        only,
    );
    // The restart itself, at any time, is what token-rotator does.
    admitted(p, &restart, &|w| {
        w.admission.object["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] =
            json!("2030-01-01T00:00:00Z");
    });
}
