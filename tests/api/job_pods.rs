//! The script Jobs boot in Signon's real pod (the sync CronJob's
//! `jobTemplate`, shaped like GOV.UK's rendered chart: `fixtures/kubernetes/README.md`), their
//! result is read from the right pod's log and only where there is one, and the sync Job runs
//! once per rotation. Each test fails on the code before its fix.

use serde_json::Value;
use token_rotator::config::{Distribution, IssuerMode};
use token_rotator::sim::kubernetes::{JobBehaviour, Rollout};

use crate::cluster::{options, rotate, world};
use crate::world::NAMESPACE;

const USER: &str = "short-url-manager@alphagov.co.uk";
const APP: &str = "Publishing API";
const SIGNON_IMAGE: &str =
    "172025368201.dkr.ecr.eu-west-1.amazonaws.com/github/alphagov/govuk/signon:v2821";

fn env_names(container: &Value) -> Vec<String> {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Defect: the Jobs got only `TR_*` variables, so Rails could not boot (no DATABASE_URL,
/// SECRET_KEY_BASE, encryption keys, writable /tmp on a read-only root).
#[tokio::test]
async fn script_jobs_run_in_signons_pod_as_its_cronjob_renders_it() {
    let (world, _) = world(
        options(IssuerMode::Job, Distribution::Apply),
        Rollout::Finishes,
    )
    .await;
    let row = rotate(&world).await;
    assert_eq!(row.phase, "done", "{row:#?}");
    let jobs = world.kubernetes.jobs();
    let mint = jobs
        .iter()
        .find(|j| j["metadata"]["labels"]["token-rotator.alphagov.co.uk/operation"] == "mint")
        .expect("the mint Job");
    let pod = &mint["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(
        container["image"], SIGNON_IMAGE,
        "the image Signon runs now"
    );
    assert_eq!(
        container["command"],
        serde_json::json!(["rails", "runner", "/token-rotator/mint.rb"])
    );
    assert!(container["args"].is_null(), "not the rake task's args");
    let names = env_names(container);
    for needed in [
        "DATABASE_URL",
        "SECRET_KEY_BASE",
        "ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY",
        "ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT",
        "TR_API_USER",
        "TR_INITIATOR",
        "TR_IDEMPOTENCY_KEY",
    ] {
        assert!(names.iter().any(|n| n == needed), "{needed} in {names:?}");
    }
    assert_eq!(
        container["envFrom"][0]["configMapRef"]["name"],
        "govuk-apps-env"
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    let mounts: Vec<&str> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert_eq!(mounts, ["/tmp", "/token-rotator"]);
    assert_eq!(container["resources"]["limits"]["memory"], "1.5Gi");
    assert_eq!(pod["serviceAccountName"], "signon");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["nodeSelector"]["kubernetes.io/arch"], "arm64");
    assert_eq!(pod["tolerations"][0]["value"], "arm64");
    assert_eq!(pod["restartPolicy"], "Never");
    // The mint applies the Secret itself: it keeps the CronJob's ServiceAccount token. The
    // scripts that only touch Signon's database get none.
    assert_eq!(pod["automountServiceAccountToken"], true);
    for job in &jobs {
        let operation = &job["metadata"]["labels"]["token-rotator.alphagov.co.uk/operation"];
        if operation != "mint" {
            let automount = &job["spec"]["template"]["spec"]["automountServiceAccountToken"];
            assert_eq!(automount, false, "{operation}");
        }
    }
    // Signon's pod labels (a NetworkPolicy may select on them) and ours.
    let labels = &mint["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/instance"], "signon");
    assert_eq!(
        labels["token-rotator.alphagov.co.uk/rotation-id"],
        row.id.as_str()
    );
}

/// Defect: a pod that cannot start (a Secret it reads is missing) was reported as a Job that
/// printed nothing; reading its log answered 400, which was taken as a permanent error.
#[tokio::test]
async fn a_job_whose_pod_cannot_start_fails_with_the_kubelets_reason_and_no_mint() {
    let (world, old) = world(
        options(IssuerMode::Job, Distribution::Apply),
        Rollout::Finishes,
    )
    .await;
    world.kubernetes.delete_secret(NAMESPACE, "signon-mysql");
    let row = rotate(&world).await;
    assert_eq!(row.phase, "failed", "{row:#?}");
    let outcome = row.outcome.clone().unwrap_or_default();
    assert!(
        outcome.contains("tried twice")
            && outcome.contains("DeadlineExceeded")
            && outcome.contains("CreateContainerConfigError secret \"signon-mysql\" not found"),
        "{outcome}"
    );
    assert_eq!(world.signon.minted().len(), 0);
    assert!(world.signon.is_live(&old));
    let texts = world.slack_texts().join("\n");
    assert!(texts.contains("signon-mysql"), "{texts}");
}

/// Defect: the pods were found by `job-name` and the "newest" taken by name order, so a pod
/// left by an earlier Job of the same name (orphaned, or not yet collected) was read instead.
#[tokio::test]
async fn the_log_read_is_the_jobs_own_pods_found_by_its_uid() {
    let (world, _) = world(
        options(IssuerMode::Job, Distribution::Apply),
        Rollout::Finishes,
    )
    .await;
    world
        .kubernetes
        .orphan_pods_for("list", "Mysql2::Error: an earlier run's failure\n");
    let row = rotate(&world).await;
    assert_eq!(row.phase, "done", "{row:#?}");
    assert_eq!(world.kubernetes.jobs_created("list"), 1, "read at once");
}

/// A mint Job whose pod (and log) is gone when its end is read: not an error of its own; the
/// second run answers the first run's token by the rotation's key, so one token is made.
#[tokio::test]
async fn a_mint_whose_log_is_lost_is_recovered_by_its_key_not_minted_twice() {
    let (world, old) = world(
        options(IssuerMode::Job, Distribution::Apply),
        Rollout::Finishes,
    )
    .await;
    world.kubernetes.lose_pods("mint", 1);
    let row = rotate(&world).await;
    assert_eq!(row.phase, "done", "{row:#?}");
    assert_eq!(world.signon.minted().len(), 1, "one token");
    assert_eq!(world.kubernetes.jobs_created("mint"), 2, "the second run");
    assert!(!world.signon.is_live(&old));
}

/// Defect: the sync Job's log was read although it prints nothing of ours. (The HTTP issuer
/// here and below: only the sync Job runs.)
#[tokio::test]
async fn the_sync_jobs_log_is_never_read() {
    let (world, _) = world(
        options(IssuerMode::Http, Distribution::Sync),
        Rollout::Finishes,
    )
    .await;
    let row = rotate(&world).await;
    assert_eq!(row.phase, "done", "{row:#?}");
    let sync_logs: Vec<_> = world
        .kubernetes
        .requests()
        .into_iter()
        .filter(|r| {
            r.resource == "pods/log"
                && r.name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("signon-sync-token-secrets-to-k8s"))
        })
        .collect();
    assert!(sync_logs.is_empty(), "{sync_logs:?}");
}

/// Defect: a failed sync Job (owned by the CronJob) was deleted by `failedJobsHistoryLimit: 1`
/// when the next one failed, then made again by name: the two looped.
#[tokio::test]
async fn a_failed_sync_runs_once_and_is_the_steps_failure_with_its_reason() {
    let (world, old) = world(
        options(IssuerMode::Http, Distribution::Sync),
        Rollout::Finishes,
    )
    .await;
    world.kubernetes.next_jobs(
        "sync",
        JobBehaviour::Fail("Kubeclient::HttpError: 403 Forbidden".into()),
        20,
    );
    let row = rotate(&world).await;
    assert!(
        row.phase == "rolled_back" || row.phase == "failed",
        "{row:#?}"
    );
    let outcome = row.outcome.clone().unwrap_or_default();
    assert!(
        outcome.contains("BackoffLimitExceeded") && outcome.contains("403 Forbidden"),
        "{outcome}"
    );
    assert_eq!(world.kubernetes.jobs_created("sync"), 1, "never made again");
    let texts = world.slack_texts().join("\n");
    assert!(
        texts.contains("403 Forbidden"),
        "the reason is in Slack: {texts}"
    );
    assert!(world.signon.is_live(&old), "the old token stays alive");
    assert_eq!(world.secret(USER, APP).as_deref(), Some(old.as_str()));
}

/// The journal, not the process, remembers that a sync Job was made: after a restart, a sync
/// Job the CronJob's history limit deleted meanwhile is the step's failure, not made again.
#[tokio::test]
async fn a_sync_job_deleted_while_the_service_was_down_is_not_made_again() {
    let sims = crate::world::Sims::start().await;
    let opts = || options(IssuerMode::Http, Distribution::Sync);
    let world = sims.world_with(None, opts()).await;
    let old = world.seed(USER, APP);
    world.kubernetes.next_jobs(
        "sync",
        JobBehaviour::Fail("Kubeclient::HttpError: 403 Forbidden".into()),
        20,
    );
    world.app.post_webhook(crate::helpers::capture("01-")).await;
    world
        .tick_until(|w| w.kubernetes.jobs_created("sync") == 1)
        .await;
    assert_eq!(world.kubernetes.jobs_created("sync"), 1);
    let (sims, dir) = world.crash().await;
    // While it is down, the Job fails and the CronJob's history limit deletes it.
    sims.production().kubernetes.finish_and_remove_jobs("sync");
    let world = sims.world_with(Some(dir), opts()).await;
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert!(
        row.phase == "rolled_back" || row.phase == "failed",
        "{row:#?}"
    );
    let outcome = row.outcome.clone().unwrap_or_default();
    assert!(
        outcome.contains("was deleted before its end was read"),
        "{outcome}"
    );
    // `finish_and_remove_jobs` took the first Job out of the count with it: any Job counted
    // now was made after the restart.
    assert_eq!(
        world.kubernetes.jobs_created("sync"),
        0,
        "never made again, across the restart"
    );
    assert!(world.signon.is_live(&old));
}

/// Signon's Kubernetes client reads the ServiceAccount token the kubelet mounts: a mint that
/// writes its Secret in a pod without one makes the token and then fails (kubeclient's
/// "Token file … does not exist"); the simulator's pod is as strict.
#[tokio::test]
async fn a_mint_that_writes_its_secret_needs_the_serviceaccount_token() {
    use std::collections::BTreeMap;
    use token_rotator::sim::kubernetes::JobRun;

    let (world, _) = world(
        options(IssuerMode::Job, Distribution::Apply),
        Rollout::Finishes,
    )
    .await;
    let runner = token_rotator::sim::rails::runner(world.signon.clone(), &world.kubernetes);
    let env: BTreeMap<String, String> = [
        ("TR_INITIATOR", token_rotator::sim::signon::INITIATOR),
        ("TR_API_USER", USER),
        ("TR_APPLICATION", APP),
        ("TR_EXPIRES_IN", "86400"),
        ("TR_WRITE_SECRET", "true"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let run = |key: &str, token: bool| JobRun {
        namespace: NAMESPACE.to_owned(),
        image: SIGNON_IMAGE.to_owned(),
        command: ["rails", "runner", "/token-rotator/mint.rb"]
            .map(str::to_owned)
            .to_vec(),
        env: {
            let mut env = env.clone();
            env.insert("TR_IDEMPOTENCY_KEY".into(), key.into());
            env
        },
        mounts: vec!["/tmp".into(), "/token-rotator".into()],
        read_only_root: true,
        service_account_token: token,
    };
    let log = runner(&run("without", false)).unwrap_err();
    assert!(
        log.contains("could not be written: ArgumentError: Token file /var/run/secrets/kubernetes.io/serviceaccount/token does not exist"),
        "{log}"
    );
    let log = runner(&run("with", true)).unwrap();
    assert!(log.contains("\"ok\":true"), "{log}");
    // So does Signon's sync task.
    let sync = |token: bool| JobRun {
        command: ["rake", "kubernetes:sync_token_secrets"]
            .map(str::to_owned)
            .to_vec(),
        ..run("sync", token)
    };
    let log = runner(&sync(false)).unwrap_err();
    assert!(
        log.contains("rake aborted!\nArgumentError: Token file"),
        "{log}"
    );
    runner(&sync(true)).unwrap();
}
