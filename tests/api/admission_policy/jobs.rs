//! Jobs someone holding token-rotator's ServiceAccount token could create with its RBAC (create
//! on every Job of `apps`): the writes they are made from (`job_code`, `job_reach` use them
//! too), Signon's ServiceAccount token only for a mint that writes the Secret, and the sync Job
//! held to the CronJob it is made from.

use serde_json::{Value, json};

use super::{JOBS, LEAST_PRIVILEGE, Write, admitted, denied, find, shipped, writes};

fn command(a: &token_rotator::sim::kubernetes::Admission) -> Value {
    a.object["spec"]["template"]["spec"]["containers"][0]["command"].clone()
}

fn env(a: &token_rotator::sim::kubernetes::Admission, name: &str) -> Option<String> {
    a.object["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str().map(str::to_owned))
}

pub(super) fn push(list: &mut Value, item: Value) {
    match list.as_array_mut() {
        Some(items) => items.push(item),
        None => *list = json!([item]),
    }
}

/// The mint that writes the Secret itself (with the ServiceAccount token), a list (without),
/// and the sync Job from the CronJob.
pub(super) async fn jobs() -> (Write, Write, Write) {
    let writes = writes().await;
    let mint = find(&writes, "jobs", "CREATE", &|a| {
        command(a)[2] == "/token-rotator/mint.rb"
            && env(a, "TR_WRITE_SECRET").as_deref() == Some("true")
    });
    // Not a mint that leaves the Secret to the sync: also without the token.
    let quiet = find(&writes, "jobs", "CREATE", &|a| {
        command(a)[2] == "/token-rotator/mint.rb"
            && env(a, "TR_WRITE_SECRET").as_deref() == Some("false")
    });
    assert_eq!(
        quiet.admission.object["spec"]["template"]["spec"]["automountServiceAccountToken"],
        false
    );
    let list = find(&writes, "jobs", "CREATE", &|a| {
        command(a)[2] == "/token-rotator/list.rb"
    });
    let sync = find(&writes, "jobs", "CREATE", &|a| {
        command(a) == json!(["rake"])
    });
    (mint, list, sync)
}

#[tokio::test]
async fn only_a_mint_that_writes_the_secret_gets_the_serviceaccount_token() {
    let policies = shipped();
    let (mint, list, _) = jobs().await;
    let p = &policies;
    let token = "mount no ServiceAccount token";
    assert_eq!(list.clone().pod()["automountServiceAccountToken"], false);
    assert_eq!(
        mint.clone().pod()["automountServiceAccountToken"],
        true,
        "the CronJob's own"
    );
    denied(
        p,
        &list,
        &|w| w.pod()["automountServiceAccountToken"] = json!(true),
        JOBS,
        token,
    );
    // Unset, the ServiceAccount's default mounts it.
    denied(
        p,
        &list,
        &|w| {
            w.pod()
                .as_object_mut()
                .unwrap()
                .remove("automountServiceAccountToken");
        },
        JOBS,
        token,
    );
    // A mint that leaves the Secret to Signon's sync needs none either.
    denied(
        p,
        &mint,
        &|w| {
            let env = w.container()["env"].as_array_mut().unwrap();
            let write = env
                .iter_mut()
                .find(|e| e["name"] == "TR_WRITE_SECRET")
                .unwrap();
            write["value"] = json!("false");
        },
        JOBS,
        token,
    );
    // Nor any other script with TR_WRITE_SECRET set.
    denied(
        p,
        &list,
        &|w| {
            push(
                &mut w.container()["env"],
                json!({"name": "TR_WRITE_SECRET", "value": "true"}),
            );
            w.pod()["automountServiceAccountToken"] = json!(true);
        },
        JOBS,
        token,
    );
}

#[tokio::test]
async fn the_sync_job_is_the_cronjobs_own_and_needs_the_cronjob() {
    let policies = shipped();
    let (_, list, sync) = jobs().await;
    let p = &policies;
    let exactly = "with the CronJob's pod exactly";
    denied(
        p,
        &sync,
        &|w| w.container()["args"] = json!(["db:seed"]),
        LEAST_PRIVILEGE,
        "run one of its scripts",
    );
    denied(
        p,
        &sync,
        &|w| w.container()["args"] = json!(["db:seed"]),
        JOBS,
        exactly,
    );
    denied(
        p,
        &sync,
        &|w| w.pod()["securityContext"]["runAsNonRoot"] = json!(false),
        LEAST_PRIVILEGE,
        "run as Signon's pods do",
    );
    denied(
        p,
        &sync,
        &|w| w.pod()["securityContext"]["runAsNonRoot"] = json!(false),
        JOBS,
        exactly,
    );
    denied(
        p,
        &sync,
        &|w| {
            push(
                &mut w.container()["env"],
                json!({"name": "RAILS_LOG_LEVEL", "value": "debug"}),
            );
        },
        JOBS,
        exactly,
    );
    denied(
        p,
        &sync,
        &|w| w.admission.object["metadata"]["ownerReferences"] = json!([]),
        LEAST_PRIVILEGE,
        "run one of its scripts",
    );
    denied(
        p,
        &sync,
        &|w| w.admission.object["metadata"]["ownerReferences"] = json!([]),
        JOBS,
        exactly,
    );
    // Another CronJob of the same name (a uid that is not the parameter's).
    denied(
        p,
        &sync,
        &|w| {
            w.admission.object["metadata"]["ownerReferences"][0]["uid"] =
                json!("00000000-0000-0000-0000-000000000000");
        },
        JOBS,
        exactly,
    );
    // A script Job may not pass for one from the CronJob.
    denied(
        p,
        &list,
        &|w| {
            w.admission.object["metadata"]["ownerReferences"] =
                sync.admission.object["metadata"]["ownerReferences"].clone();
        },
        JOBS,
        exactly,
    );
    // Without the label token-rotator-jobs does not judge a Job; then least-privilege refuses it.
    let mut unlabelled = list.clone();
    unlabelled.admission.object["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("app.kubernetes.io/managed-by");
    let answer = unlabelled.denials(p, super::SERVICE_ACCOUNT);
    assert_eq!(answer.len(), 1, "{answer:#?}");
    assert_eq!(answer[0].policy, LEAST_PRIVILEGE);
    assert!(
        answer[0]
            .message
            .contains("are labelled app.kubernetes.io/managed-by=token-rotator")
    );
    // Signon's CronJob gone: token-rotator's Jobs are refused, no one else's write is judged.
    let missing = super::denials(p, &list.admission, super::SERVICE_ACCOUNT, &|_, _| None);
    assert!(
        missing
            .iter()
            .any(|d| d.policy == JOBS && d.message.contains("no params found")),
        "{missing:#?}"
    );
}

#[tokio::test]
async fn what_the_api_server_adds_and_an_image_pinned_by_digest_are_admitted() {
    let policies = shipped();
    let (mint, list, _) = jobs().await;
    // The API server's defaults on the scripts volume (ConfigMapVolumeSource.defaultMode 0644).
    admitted(&policies, &list, &|w| {
        let volumes = w.pod()["volumes"].as_array_mut().unwrap();
        let scripts = volumes
            .iter_mut()
            .find(|v| v["name"] == "token-rotator-scripts")
            .unwrap();
        scripts["configMap"]["defaultMode"] = json!(420);
    });
    // `[signon.job] image`, pinned by digest, and resources of its own.
    admitted(&policies, &mint, &|w| {
        let signon = w.container()["image"].as_str().unwrap().to_owned();
        let (repository, _) = signon.split_once(':').unwrap();
        w.container()["image"] = json!(format!("{repository}@sha256:{}", "a".repeat(64)));
        w.container()["resources"] =
            json!({"requests": {"cpu": "100m", "memory": "1Gi"}, "limits": {"memory": "1Gi"}});
    });
}
