//! Jobs that would reach further than token-rotator's scripts need (a Secret the
//! ServiceAccount writes, a file over a script, the node, other pods' labels, more pods), each
//! denied: by token-rotator-least-privilege's fixed rules where one applies, and by
//! token-rotator-jobs, which holds every Job to Signon's sync CronJob, always.

use serde_json::json;

use super::jobs::{jobs, push};
use crate::admission_policy::{JOBS, LEAST_PRIVILEGE, denied, shipped};

#[tokio::test]
async fn jobs_that_would_reach_further_are_denied() {
    let policies = shipped();
    let (_, list, _) = jobs().await;
    let p = &policies;
    let pod = "run in the pod of Signon's CronJob as it is";
    let one = "run one container, the CronJob's own";
    let volumes = "have the CronJob's volumes, plus only ConfigMap";
    let mounts = "mount what the CronJob's container mounts";
    let what_runs = "run one of its scripts";
    let reads = "read no signon-token-* Secret";
    let node = "reach nothing of the node's";

    // Volumes and mounts: a Ruby file from a Secret the ServiceAccount writes, or laid over a
    // script, or the scripts mounted in part.
    let token_volume = json!({"name": "x", "secret": {"secretName": "signon-token-x-y"}});
    let over_script =
        json!({"name": "x", "mountPath": "/token-rotator/list.rb", "subPath": "bearer_token"});
    denied(
        p,
        &list,
        &|w| {
            push(&mut w.pod()["volumes"], token_volume.clone());
            push(&mut w.container()["volumeMounts"], over_script.clone());
        },
        LEAST_PRIVILEGE,
        reads,
    );
    denied(
        p,
        &list,
        &|w| {
            push(&mut w.pod()["volumes"], token_volume.clone());
            push(&mut w.container()["volumeMounts"], over_script.clone());
        },
        JOBS,
        volumes,
    );
    // The CronJob's own writable emptyDir, laid over a script with subPath.
    let tmp_over_script =
        json!({"name": "app-tmp", "mountPath": "/token-rotator/list.rb", "subPath": "list.rb"});
    denied(
        p,
        &list,
        &|w| push(&mut w.container()["volumeMounts"], tmp_over_script.clone()),
        LEAST_PRIVILEGE,
        what_runs,
    );
    denied(
        p,
        &list,
        &|w| push(&mut w.container()["volumeMounts"], tmp_over_script.clone()),
        JOBS,
        mounts,
    );
    denied(
        p,
        &list,
        &|w| {
            let mounts = w.container()["volumeMounts"].as_array_mut().unwrap();
            let tmp = mounts.iter_mut().find(|m| m["name"] == "app-tmp").unwrap();
            tmp["mountPath"] = json!("/usr/local/bundle");
        },
        JOBS,
        mounts,
    );
    denied(
        p,
        &list,
        &|w| {
            let mounts = w.container()["volumeMounts"].as_array_mut().unwrap();
            let scripts = mounts
                .iter_mut()
                .find(|m| m["name"] == "token-rotator-scripts")
                .unwrap();
            scripts["subPath"] = json!("mint.rb");
            scripts["mountPath"] = json!("/token-rotator/list.rb");
        },
        JOBS,
        mounts,
    );

    // The node: its namespaces, filesystem, kernel capabilities, a node of one's choosing.
    for (field, value) in [
        ("hostPID", json!(true)),
        ("hostIPC", json!(true)),
        ("hostNetwork", json!(true)),
        ("nodeName", json!("ip-10-1-2-3.eu-west-1.compute.internal")),
    ] {
        denied(
            p,
            &list,
            &|w| w.pod()[field] = value.clone(),
            LEAST_PRIVILEGE,
            node,
        );
        denied(p, &list, &|w| w.pod()[field] = value.clone(), JOBS, pod);
    }
    let host = json!({"name": "host", "hostPath": {"path": "/"}});
    denied(
        p,
        &list,
        &|w| push(&mut w.pod()["volumes"], host.clone()),
        LEAST_PRIVILEGE,
        node,
    );
    denied(
        p,
        &list,
        &|w| push(&mut w.pod()["volumes"], host.clone()),
        JOBS,
        volumes,
    );
    let add = json!({"add": ["SYS_ADMIN"], "drop": ["ALL"]});
    denied(
        p,
        &list,
        &|w| w.container()["securityContext"]["capabilities"] = add.clone(),
        LEAST_PRIVILEGE,
        node,
    );
    denied(
        p,
        &list,
        &|w| w.container()["securityContext"]["capabilities"] = add.clone(),
        JOBS,
        one,
    );
    // Where it runs is the CronJob's: nodeSelector, tolerations, affinity.
    denied(
        p,
        &list,
        &|w| w.pod()["nodeSelector"] = json!({"node-role": "control-plane"}),
        JOBS,
        pod,
    );
    denied(
        p,
        &list,
        &|w| push(&mut w.pod()["tolerations"], json!({"operator": "Exists"})),
        JOBS,
        pod,
    );
    denied(
        p,
        &list,
        &|w| {
            w.pod()["affinity"] = json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            [{"labelSelector": {"matchLabels": {"app": "signon"}}, "topologyKey": "kubernetes.io/hostname"}]}});
        },
        JOBS,
        pod,
    );
    // Labels a Service or NetworkPolicy selects on, annotations a mutating webhook acts on.
    denied(
        p,
        &list,
        &|w| {
            w.admission.object["spec"]["template"]["metadata"]["labels"]["app"] = json!("signon");
        },
        JOBS,
        "label and annotate their pods as Signon's CronJob does",
    );
    denied(
        p,
        &list,
        &|w| {
            w.admission.object["spec"]["template"]["metadata"]["annotations"] =
                json!({"vault.hashicorp.com/agent-inject": "true"});
        },
        JOBS,
        "label and annotate their pods as Signon's CronJob does",
    );
    // One pod, once; never adopting other pods.
    denied(
        p,
        &list,
        &|w| w.admission.object["spec"]["parallelism"] = json!(50),
        LEAST_PRIVILEGE,
        "run one pod, once",
    );
    denied(
        p,
        &list,
        &|w| w.admission.object["spec"]["manualSelector"] = json!(true),
        LEAST_PRIVILEGE,
        "run one pod, once",
    );
}
