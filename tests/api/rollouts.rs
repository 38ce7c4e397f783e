//! Rollouts as `kubectl rollout status` judges them
//! (`staging/src/k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go`), against the
//! simulator's Deployment controller (status that lags, new pods one at a time, a `Progressing`
//! condition that can go `ProgressDeadlineExceeded`) and HPA. Each test fails on the code
//! before the issue. The HTTP issuer throughout: only the rollout is at stake.

use std::time::Duration;

use token_rotator::adapters::kubernetes::{Cluster, Deployments};
use token_rotator::config::{Distribution, IssuerMode};
use token_rotator::sim::kubernetes::{Rollout, SecretUse};

use crate::cluster::{options, rotate, world};
use crate::world::{NAMESPACE, Sims, WorldOptions};

const USER: &str = "short-url-manager@alphagov.co.uk";
const APP: &str = "Publishing API";
const CONSUMER: &str = "short-url-manager";

/// Defect: "stuck" was a timer of ours (`progressDeadlineSeconds` after the Secret changed), so
/// a slow rollout that kept progressing was rolled back, revoking the token its new pods used.
#[tokio::test]
async fn a_slow_rollout_that_progresses_is_awaited_not_rolled_back() {
    // Each new pod takes 7 minutes: 14 in all, past the 10-minute deadline, never without
    // progress for 10.
    let (world, old) = world(
        options(IssuerMode::Http, Distribution::Apply),
        Rollout::Slow(Duration::from_secs(420)),
    )
    .await;
    let row = rotate(&world).await;
    assert_eq!(row.phase, "done", "{row:#?}");
    assert!(!world.signon.is_live(&old));
    let new = world.secret(USER, APP).unwrap();
    assert!(world.signon.is_live(&new), "the new pods' token lives");
    assert_eq!(world.kubernetes.revision(NAMESPACE, CONSUMER), 2);
}

/// The rollback comes from the controller's verdict, with its words.
#[tokio::test]
async fn a_rollout_past_its_deadline_by_the_controller_rolls_back_with_its_reason() {
    let (world, old) = world(
        options(IssuerMode::Http, Distribution::Apply),
        Rollout::Stuck,
    )
    .await;
    let row = rotate(&world).await;
    assert_eq!(row.phase, "rolled_back", "{row:#?}");
    let outcome = row.outcome.unwrap_or_default();
    assert!(
        outcome.contains("ProgressDeadlineExceeded")
            && outcome.contains("has timed out progressing"),
        "{outcome}"
    );
    assert!(world.signon.is_live(&old), "never revoked");
    let texts = world.slack_texts().join("\n");
    assert!(texts.contains("ProgressDeadlineExceeded"), "{texts}");
}

/// Defect: "rolled" was `generation > baseline`, which an HPA changing `replicas` satisfies
/// without a single pod restarted.
#[tokio::test]
async fn an_hpa_scaling_the_deployment_is_not_a_rollout() {
    let sims = Sims::start().await;
    let env = sims.production();
    let secret = "signon-token-short-url-manager-publishing-api";
    env.kubernetes.add_deployment(
        NAMESPACE,
        CONSUMER,
        secret,
        SecretUse::Env,
        true,
        Rollout::Finishes,
    );
    let cluster =
        Cluster::for_url(&env.kubernetes_url(), NAMESPACE, Duration::from_secs(1)).unwrap();
    let deployments = Deployments::new(cluster, false);
    let baseline = deployments.baseline(secret).await.unwrap();
    assert_eq!(baseline.generations.keys().collect::<Vec<_>>(), [CONSUMER]);
    env.kubernetes.scale(NAMESPACE, CONSUMER, 3);
    for _ in 0..4 {
        let state = deployments.check(&baseline, true).await.unwrap();
        assert_eq!(state.waiting, [CONSUMER], "no pod restarted");
    }
    assert!(env.kubernetes.generation(NAMESPACE, CONSUMER) > 1);
    assert_eq!(env.kubernetes.revision(NAMESPACE, CONSUMER), 1);
}

/// Defect: with Reloader installed (`reloader = true`), a consumer without its annotation
/// never rolled, ended "stuck" and was rolled back.
#[tokio::test]
async fn a_deployment_reloader_does_not_watch_is_restarted_as_kubectl_rollout_restart_does() {
    let sims = Sims::start().await;
    let world = sims
        .world_with(
            None,
            WorldOptions {
                reloader: true,
                ..options(IssuerMode::Http, Distribution::Apply)
            },
        )
        .await;
    let old = world.seed(USER, APP);
    let secret = world.secret_name(USER, APP);
    world.kubernetes.add_deployment(
        NAMESPACE,
        CONSUMER,
        &secret,
        SecretUse::Env,
        false,
        Rollout::Finishes,
    );
    world.kubernetes.add_deployment(
        NAMESPACE,
        "watched-by-reloader",
        &secret,
        SecretUse::EnvFrom,
        true,
        Rollout::Finishes,
    );
    let row = rotate(&world).await;
    assert_eq!(row.phase, "done", "{row:#?}");
    assert!(!world.signon.is_live(&old));
    assert_eq!(
        world.kubernetes.revision(NAMESPACE, CONSUMER),
        2,
        "restarted once"
    );
    assert_eq!(
        world.kubernetes.revision(NAMESPACE, "watched-by-reloader"),
        2,
        "rolled by Reloader, not restarted again"
    );
    let restarts: Vec<_> = world
        .kubernetes
        .requests()
        .into_iter()
        .filter(|r| r.resource == "deployments" && r.verb == "patch")
        .map(|r| r.name.unwrap_or_default())
        .collect();
    assert_eq!(restarts, [CONSUMER]);
}

/// Restart requests token-rotator sent (patches of Deployments).
fn restarts(world: &crate::world::World) -> Vec<String> {
    world
        .kubernetes
        .requests()
        .into_iter()
        .filter(|r| r.resource == "deployments" && r.verb == "patch")
        .map(|r| r.name.unwrap_or_default())
        .collect()
}

/// Defect: a paused Deployment was restarted anyway (kubectl refuses: "can't restart paused
/// deployment (run rollout resume first)"), never rolled, and its controller never says
/// `ProgressDeadlineExceeded` while paused: the rotation waited for ever. Now it is not
/// restarted and the rotation rolls back, saying why: the paused consumer would never read the
/// new token, so going on to revoke the old one would break it.
#[tokio::test]
async fn a_paused_deployment_is_not_restarted_and_the_rotation_rolls_back_saying_why() {
    let (world, old) = world(
        WorldOptions {
            reloader: false,
            ..options(IssuerMode::Http, Distribution::Apply)
        },
        Rollout::Finishes,
    )
    .await;
    world.kubernetes.pause(NAMESPACE, CONSUMER);
    let row = rotate(&world).await;
    assert_eq!(row.phase, "rolled_back", "{row:#?}");
    let outcome = row.outcome.unwrap_or_default();
    assert!(
        outcome.contains(&format!("Deployment \"{CONSUMER}\" is paused"))
            && outcome.contains("kubectl refuses to restart a paused Deployment")
            && outcome.contains("resume it or restart it by hand"),
        "{outcome}"
    );
    assert!(restarts(&world).is_empty(), "never patched");
    assert_eq!(world.kubernetes.revision(NAMESPACE, CONSUMER), 1);
    assert!(world.signon.is_live(&old), "the old token is kept");
    assert_eq!(world.secret(USER, APP).as_deref(), Some(old.as_str()));
    let texts = world.slack_texts().join("\n");
    assert!(texts.contains("is paused"), "{texts}");
    // On the way back it is left alone (it never left the old token), and the audit says why
    // it did not roll.
    let audit = world.audit(&row.id).await;
    let audit = format!("{audit:?}");
    assert!(audit.contains("is paused: it will not roll"), "{audit}");
}

/// Defect: a paused Deployment that Reloader patches never rolls and never reaches its
/// progress deadline, so the rotation waited for ever. Now a paused consumer is stuck.
#[tokio::test]
async fn a_paused_deployment_reloader_patches_is_stuck_and_rolls_back() {
    let (world, old) = world(
        options(IssuerMode::Http, Distribution::Apply),
        Rollout::Finishes,
    )
    .await;
    world.kubernetes.pause(NAMESPACE, CONSUMER);
    let row = rotate(&world).await;
    assert_eq!(row.phase, "rolled_back", "{row:#?}");
    let outcome = row.outcome.unwrap_or_default();
    assert!(
        outcome.contains("is paused") && outcome.contains("resume"),
        "{outcome}"
    );
    assert!(world.signon.is_live(&old), "never revoked");
    assert_eq!(world.kubernetes.revision(NAMESPACE, CONSUMER), 1);
}

/// Defect: the rollout wait had no deadline of its own: with no verdict from the Deployment
/// controller (here none runs), the rotation waited for ever, the old token alive and no one
/// told. Now it rolls back past the longest a progressing rollout can take.
#[tokio::test]
async fn a_rollout_with_no_verdict_rolls_back_at_a_deadline_of_our_own() {
    let (world, old) = world(
        options(IssuerMode::Http, Distribution::Apply),
        Rollout::Unobserved,
    )
    .await;
    let row = rotate(&world).await;
    assert_eq!(row.phase, "rolled_back", "{row:#?}");
    let outcome = row.outcome.unwrap_or_default();
    // 2 replicas, progressDeadlineSeconds 600: 600 × (2 + 2).
    assert!(
        outcome.contains("did not finish within 2400 s") && outcome.contains("gave no verdict"),
        "{outcome}"
    );
    assert!(world.signon.is_live(&old), "never revoked");
    assert_eq!(world.secret(USER, APP).as_deref(), Some(old.as_str()));
}
