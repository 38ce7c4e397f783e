//! Secret writes someone holding token-rotator's ServiceAccount token could make with its RBAC
//! (get, patch and create on every Secret of `apps`), each denied: only `signon-token-*`, only
//! Opaque and mutable, and only its key `bearer_token` and token-rotator's annotation change.

use serde_json::{Value, json};

use super::{LEAST_PRIVILEGE, admitted, denied, find, shipped, writes};

#[tokio::test]
async fn secret_writes_beyond_the_token_and_its_annotation_are_denied() {
    let policies = shipped();
    let writes = writes().await;
    let p = &policies;
    let changed = find(&writes, "secrets", "UPDATE", &|_| true);
    let created = find(&writes, "secrets", "CREATE", &|_| true);
    let only_tokens = "writes only signon-token-* Secrets";
    let opaque = "are of type Opaque and never immutable";
    let only_key = "changes only a Secret's key bearer_token";
    for write in [&changed, &created] {
        denied(
            p,
            write,
            &|w| w.admission.object["metadata"]["name"] = json!("signon-app-publishing-api"),
            LEAST_PRIVILEGE,
            only_tokens,
        );
        // A token for Signon's ServiceAccount, minted by the API server, readable with `get`.
        denied(
            p,
            write,
            &|w| {
                w.admission.object["type"] = json!("kubernetes.io/service-account-token");
                w.admission.object["metadata"]["annotations"]["kubernetes.io/service-account.name"] =
                    json!("signon");
            },
            LEAST_PRIVILEGE,
            opaque,
        );
        // Signon's sync could never write it again.
        denied(
            p,
            write,
            &|w| w.admission.object["immutable"] = json!(true),
            LEAST_PRIVILEGE,
            opaque,
        );
        // An owner that does not exist: the garbage collector deletes the Secret.
        denied(
            p,
            write,
            &|w| {
                w.admission.object["metadata"]["ownerReferences"] = json!([{
                    "apiVersion": "v1", "kind": "ConfigMap", "name": "gone",
                    "uid": "00000000-0000-0000-0000-000000000000",
                }]);
            },
            LEAST_PRIVILEGE,
            only_key,
        );
        denied(
            p,
            write,
            &|w| w.admission.object["metadata"]["finalizers"] = json!(["example.com/never"]),
            LEAST_PRIVILEGE,
            only_key,
        );
        denied(
            p,
            write,
            &|w| w.admission.object["metadata"]["labels"] = json!({"app": "x"}),
            LEAST_PRIVILEGE,
            only_key,
        );
        // Another controller's instructions, such as a reflector's copy of another Secret in.
        denied(
            p,
            write,
            &|w| {
                w.admission.object["metadata"]["annotations"]["reflector.v1.k8s.emberstack.com/reflects"] =
                    json!("kube-system/aws-credentials");
            },
            LEAST_PRIVILEGE,
            only_key,
        );
        // A consumer reading the Secret with envFrom would take this key as a variable.
        denied(
            p,
            write,
            &|w| w.admission.object["data"]["RUBYOPT"] = json!("LXIvdG1wL2V2aWwucmI="),
            LEAST_PRIVILEGE,
            only_key,
        );
    }
    denied(
        p,
        &changed,
        &|w| {
            w.admission.operation = "DELETE";
            w.admission.object = Value::Null;
        },
        LEAST_PRIVILEGE,
        only_tokens,
    );
    // What others put there stays: a key, a label, an annotation, an owner.
    let kept = |w: &mut super::Write| {
        w.admission.old_object["data"]["oauth_id"] = json!("aWQ=");
        w.admission.old_object["metadata"]["labels"] = json!({"app": "signon"});
    };
    admitted(p, &changed, &|w| {
        kept(w);
        w.admission.object["data"]["oauth_id"] = json!("aWQ=");
        w.admission.object["metadata"]["labels"] = json!({"app": "signon"});
    });
    denied(p, &changed, &|w| kept(w), LEAST_PRIVILEGE, only_key);
}
