//! Kubernetes and Signon the way GOV.UK runs them: Signon's scripts as Jobs (mint, list,
//! revoke), the sync CronJob, adopting a token Signon made itself, the consumers' rollout,
//! verification and rollback; and the shipped RBAC Role held against every request made.

use std::time::Duration;

use token_rotator::adapters::kubernetes::TOKEN_KEY;
use token_rotator::config::{Distribution, IssuerMode};
use token_rotator::sim::Fault;
use token_rotator::sim::kubernetes::{ApiRequest, JobBehaviour, Rollout, SecretUse};

use crate::helpers::capture;
use crate::world::{NAMESPACE, Sims, World, WorldOptions};

const USER: &str = "short-url-manager@alphagov.co.uk";
const APP: &str = "Publishing API";
const CONSUMER: &str = "short-url-manager";

pub(crate) fn options(issuer: IssuerMode, distribution: Distribution) -> WorldOptions {
    WorldOptions {
        issuer,
        distribution,
        ..WorldOptions::default()
    }
}

/// A world with the target's live token in its Secret, read by a Deployment.
pub(crate) async fn world(options: WorldOptions, rollout: Rollout) -> (World, String) {
    let reloader = options.reloader;
    let world = Sims::start().await.world_with(None, options).await;
    let old = world.seed(USER, APP);
    let secret = world.secret_name(USER, APP);
    world.kubernetes.add_deployment(
        NAMESPACE,
        CONSUMER,
        &secret,
        SecretUse::Env,
        reloader,
        rollout,
    );
    (world, old)
}

/// Signon as Jobs, with `distribution`, and a consumer that rolls.
async fn job_world(distribution: Distribution) -> (World, String) {
    world(options(IssuerMode::Job, distribution), Rollout::Finishes).await
}

pub(crate) async fn rotate(world: &World) -> token_rotator::store::rotations::RotationRow {
    assert_eq!(world.app.post_webhook(capture("01-")).await.status(), 200);
    world.run_to_the_end().await;
    let rows = world.rotations().await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    rows[0].clone()
}

fn assert_rotated(world: &World, row: &token_rotator::store::rotations::RotationRow, old: &str) {
    assert_eq!(row.phase, "done", "{row:#?}");
    let now = world.secret(USER, APP).unwrap();
    assert_ne!(now, old);
    assert!(world.signon.is_live(&now), "the Secret's token works");
    assert!(!world.signon.is_live(old), "the old token is revoked");
    assert_eq!(world.signon.minted().len(), 1);
    assert_eq!(world.signon.revoked().len(), 1);
    assert!(
        world.kubernetes.generation(NAMESPACE, CONSUMER) > 1,
        "the consumer rolled"
    );
}

async fn audit_text(world: &World, id: &str) -> String {
    world
        .audit(id)
        .await
        .iter()
        .map(|a| {
            format!(
                "{} → {}: {}\n",
                a.from_phase.as_deref().unwrap_or("-"),
                a.to_phase,
                a.reason
            )
        })
        .collect()
}

#[tokio::test]
async fn job_mint_with_server_side_apply_runs_to_done() {
    let (world, old) = job_world(Distribution::Apply).await;
    let row = rotate(&world).await;
    assert_rotated(&world, &row, &old);
    for (operation, jobs) in [("list", 1), ("mint", 1), ("revoke", 1), ("sync", 0)] {
        assert_eq!(
            world.kubernetes.jobs_of(operation),
            jobs,
            "{operation} Jobs"
        );
    }
    let audit = audit_text(&world, &row.id).await;
    assert!(
        audit.contains("it was already there"),
        "mint.rb applied the Secret:\n{audit}"
    );
    assert!(
        audit.contains("rolled onto the new token: [\"short-url-manager\"]"),
        "{audit}"
    );
    // Every Job is labelled with its rotation and runs Signon's image with Signon's account.
    for job in world.kubernetes.jobs() {
        assert_eq!(
            job["metadata"]["labels"]["token-rotator.alphagov.co.uk/rotation-id"],
            row.id.as_str()
        );
        let spec = &job["spec"]["template"]["spec"];
        assert_eq!(spec["serviceAccountName"], "signon");
        assert_eq!(spec["containers"][0]["command"][0], "rails");
        assert!(job["spec"]["ttlSecondsAfterFinished"].is_number());
    }
}

#[tokio::test]
async fn job_mint_with_the_sync_cronjob_runs_to_done() {
    let (world, old) = job_world(Distribution::Sync).await;
    let row = rotate(&world).await;
    assert_rotated(&world, &row, &old);
    assert_eq!(world.kubernetes.jobs_of("sync"), 1);
    let sync = world
        .kubernetes
        .jobs()
        .into_iter()
        .find(|j| {
            j["spec"]["template"]["spec"]["containers"][0]["args"][0]
                == "kubernetes:sync_token_secrets"
        })
        .unwrap();
    // As `kubectl create job --from=cronjob/…` makes it.
    assert_eq!(
        sync["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    let owner = &sync["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "CronJob");
    assert_eq!(owner["name"], "signon-sync-token-secrets-to-k8s");
    assert_eq!(owner["controller"], true);
    let audit = audit_text(&world, &row.id).await;
    assert!(
        audit.contains("it was synced by Signon's CronJob"),
        "{audit}"
    );
}

#[tokio::test]
async fn http_mint_restarts_consumers_where_reloader_is_not_installed() {
    let options = WorldOptions {
        reloader: false,
        ..options(IssuerMode::Http, Distribution::Apply)
    };
    let (world, old) = world(options, Rollout::Finishes).await;
    let row = rotate(&world).await;
    assert_rotated(&world, &row, &old);
    let patched: Vec<ApiRequest> = world
        .kubernetes
        .requests()
        .into_iter()
        .filter(|r| r.resource == "deployments" && r.verb == "patch")
        .collect();
    assert!(!patched.is_empty(), "the restart patch was sent");
    assert_eq!(
        world.kubernetes.generation(NAMESPACE, CONSUMER),
        2,
        "restarted once"
    );
}

#[tokio::test]
async fn a_fresh_token_signon_made_is_adopted_not_minted_and_the_old_one_revoked() {
    let (world, old) = job_world(Distribution::Sync).await;
    // Signon's nightly renewal made a two-year token; its sync has not run yet.
    let fresh = world
        .signon
        .add_token(USER, APP, Duration::from_secs(730 * 86400));
    let row = rotate(&world).await;
    assert_eq!(row.phase, "done", "{row:#?}");
    assert_eq!(row.adopted, 1);
    assert_eq!(world.signon.minted().len(), 0, "no mint");
    assert_eq!(world.kubernetes.jobs_of("mint"), 0);
    assert_eq!(world.secret(USER, APP).as_deref(), Some(fresh.as_str()));
    assert!(
        !world.signon.is_live(&old),
        "the old token is revoked: what nothing automates today"
    );
    assert!(world.signon.is_live(&fresh));
    let audit = audit_text(&world, &row.id).await;
    assert!(audit.contains("adopted token"), "{audit}");
}

#[tokio::test]
async fn an_adopted_token_already_in_the_secret_needs_no_rollout() {
    let (world, old) = job_world(Distribution::Apply).await;
    let fresh = world
        .signon
        .add_token(USER, APP, Duration::from_secs(730 * 86400));
    // Signon's sync ran at 01:09 and Reloader rolled the consumer then.
    let secret = world.secret_name(USER, APP);
    world.kubernetes.put(NAMESPACE, &secret, TOKEN_KEY, &fresh);
    let generation = world.kubernetes.generation(NAMESPACE, CONSUMER);
    let row = rotate(&world).await;
    assert_eq!(row.phase, "done", "{row:#?}");
    assert_eq!(world.signon.minted().len(), 0);
    assert!(!world.signon.is_live(&old));
    assert_eq!(
        world.kubernetes.generation(NAMESPACE, CONSUMER),
        generation,
        "no second rollout"
    );
    let audit = audit_text(&world, &row.id).await;
    assert!(audit.contains("already running the new token"), "{audit}");
}

#[tokio::test]
async fn a_restart_while_a_job_runs_re_attaches_to_that_job() {
    let sims = Sims::start().await;
    let opts = || options(IssuerMode::Job, Distribution::Apply);
    let world = sims.world_with(None, opts()).await;
    world.seed(USER, APP);
    world.app.post_webhook(capture("01-")).await;
    // Passes until the mint Job exists but has not finished.
    world
        .tick_until(|w| w.kubernetes.jobs_of("mint") == 1)
        .await;
    assert_eq!(world.kubernetes.jobs_of("mint"), 1);
    assert_eq!(world.rotations().await[0].phase, "planned");
    let (sims, dir) = world.crash().await;
    let world = sims.world_with(Some(dir), opts()).await;
    world.run_to_the_end().await;
    assert_eq!(world.rotations().await[0].phase, "done");
    assert_eq!(world.kubernetes.jobs_of("mint"), 1, "no second mint Job");
    assert_eq!(world.signon.minted().len(), 1, "one mint");
}

#[tokio::test]
async fn a_job_that_fails_once_is_retried_and_twice_fails_with_its_log_tail() {
    let (world, old) = job_world(Distribution::Apply).await;
    world.kubernetes.next_jobs(
        "mint",
        JobBehaviour::Fail("Mysql2::Error: Lost connection".into()),
        1,
    );
    let row = rotate(&world).await;
    assert_rotated(&world, &row, &old);
    assert_eq!(world.kubernetes.jobs_of("mint"), 2, "retried once");

    let (world, old) = job_world(Distribution::Apply).await;
    world.kubernetes.next_jobs(
        "mint",
        JobBehaviour::Fail("Mysql2::Error: Lost connection".into()),
        2,
    );
    let row = rotate(&world).await;
    assert_eq!(row.phase, "failed", "{row:#?}");
    let outcome = row.outcome.unwrap_or_default();
    assert!(
        outcome.contains("tried twice") && outcome.contains("Lost connection"),
        "{outcome}"
    );
    assert_eq!(world.signon.revoked().len(), 0, "never a revoke");
    assert!(world.signon.is_live(&old));
    let texts = world.slack_texts().join("\n");
    assert!(
        texts.contains("Lost connection"),
        "the log tail is in Slack: {texts}"
    );
}

#[tokio::test]
async fn a_job_that_hangs_or_prints_nothing_fails_without_a_revoke() {
    for behaviour in [
        JobBehaviour::Hang(2),
        JobBehaviour::NoResult("Booting Signon\n".into()),
    ] {
        let (world, old) = job_world(Distribution::Apply).await;
        world.kubernetes.next_jobs("list", behaviour.clone(), 2);
        let row = rotate(&world).await;
        assert_eq!(row.phase, "failed", "{behaviour:?}: {row:#?}");
        let outcome = row.outcome.unwrap_or_default();
        assert!(
            outcome.contains("DeadlineExceeded") || outcome.contains("no result line"),
            "{outcome}"
        );
        assert_eq!(world.signon.minted().len(), 0);
        assert!(world.signon.is_live(&old));
    }
}

#[tokio::test]
async fn a_stuck_rollout_rolls_back_and_keeps_the_old_token_alive() {
    let (world, old) = world(
        options(IssuerMode::Job, Distribution::Apply),
        Rollout::Stuck,
    )
    .await;
    let row = rotate(&world).await;
    assert_eq!(row.phase, "rolled_back", "{row:#?}");
    assert!(row.outcome.unwrap_or_default().contains("stuck"));
    assert_eq!(
        world.secret(USER, APP).as_deref(),
        Some(old.as_str()),
        "old token back"
    );
    assert!(world.signon.is_live(&old), "never revoked");
    let new = &world.signon.minted()[0];
    assert!(
        !world.signon.is_live(&new.value),
        "the new token is revoked"
    );
}

#[tokio::test]
async fn a_probe_that_refuses_the_new_token_rolls_back() {
    let sims = Sims::start().await;
    // The application's own check: Signon's /user.json for another application answers 401.
    let probe = format!(
        "{}/user.json?client_id=another-app",
        sims.production().signon_url()
    );
    let options = WorldOptions {
        probes: vec![(APP.to_owned(), probe)],
        ..options(IssuerMode::Job, Distribution::Sync)
    };
    let world = sims.world_with(None, options).await;
    let old = world.seed(USER, APP);
    let secret = world.secret_name(USER, APP);
    world.kubernetes.add_deployment(
        NAMESPACE,
        CONSUMER,
        &secret,
        SecretUse::EnvFrom,
        true,
        Rollout::Finishes,
    );
    let row = rotate(&world).await;
    assert_eq!(row.phase, "rolled_back", "{row:#?}");
    let audit = audit_text(&world, &row.id).await;
    assert!(audit.contains("rolled back onto the old token"), "{audit}");
    assert_eq!(
        world.kubernetes.generation(NAMESPACE, CONSUMER),
        3,
        "rolled forward, then back"
    );
    assert_eq!(
        world.secret(USER, APP).as_deref(),
        Some(old.as_str()),
        "the old token is back"
    );
    assert!(world.signon.is_live(&old));
    // Back, the old value kept sealed is written (a sync would write the new token, still the
    // longest-lived), and the new token is revoked only once the consumer runs the old one.
    assert_eq!(world.kubernetes.jobs_of("sync"), 1, "synced forward only");
    let reason = &world.audit(&row.id).await.last().unwrap().reason.clone();
    let restored = reason
        .find("holds the old token again")
        .unwrap_or_else(|| panic!("{reason}"));
    let rolled = reason
        .find("rolled back onto the old token")
        .unwrap_or_else(|| panic!("{reason}"));
    let revoked = reason.find("revoked").unwrap_or_else(|| panic!("{reason}"));
    assert!(restored < rolled && rolled < revoked, "{reason}");
    assert!(!world.signon.is_live(&world.signon.minted()[0].value));
}

#[tokio::test]
async fn a_forbidden_call_names_the_object_the_verb_and_the_permission() {
    let (world, _) = job_world(Distribution::Apply).await;
    world
        .kubernetes
        .faults
        .next("create job", Fault::Status(403), 1);
    let row = rotate(&world).await;
    assert_eq!(row.phase, "failed");
    let outcome = row.outcome.unwrap_or_default();
    assert!(
        outcome.contains("create jobs/token-rotator-list-"),
        "{outcome}"
    );
    assert!(
        outcome.contains("forbidden") && outcome.contains("RBAC"),
        "{outcome}"
    );
}
