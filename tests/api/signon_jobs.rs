//! The Job path against Signon's rules (`src/sim/signon/world.rs` cites the Signon file of each):
//! at most one mint per rotation, whatever fails between the save and the result line; every
//! refusal final at once, with its reason in the outcome and in Slack, and nothing minted.
//! `tests/signon/` runs the same scripts under real Rails and Doorkeeper.

use std::time::Duration;

use token_rotator::config::{Distribution, IssuerMode};
use token_rotator::sim::Fault;
use token_rotator::sim::kubernetes::{Rollout, SecretUse};
use token_rotator::sim::rails::SECRET_APPLY;

use crate::cluster::{options, rotate, world};
use crate::helpers::capture;
use crate::world::{NAMESPACE, Sims, World, WorldOptions};

const USER: &str = "short-url-manager@alphagov.co.uk";
const APP: &str = "Publishing API";

async fn job_world() -> (World, String) {
    world(
        options(IssuerMode::Job, Distribution::Apply),
        Rollout::Finishes,
    )
    .await
}

/// A rotation that failed on a refusal: nothing minted, the old token untouched, one Job of
/// `script` (a refusal is not tried twice), and `code` in the outcome and in Slack.
async fn assert_refused(world: &World, old: Option<&str>, script: &str, code: &str) {
    let rows = world.rotations().await;
    let row = &rows[0];
    assert_eq!(row.phase, "failed", "{row:#?}");
    let outcome = row.outcome.clone().unwrap_or_default();
    assert!(
        outcome.contains(&format!("Signon refused ({code})")),
        "{outcome}"
    );
    assert_eq!(world.kubernetes.jobs_of(script), 1, "a refusal is final");
    assert_eq!(world.signon.minted().len(), 0, "nothing minted");
    assert_eq!(world.signon.revoked().len(), 0, "nothing revoked");
    if let Some(old) = old {
        assert!(world.signon.is_live(old));
        assert_eq!(world.secret(USER, APP).as_deref(), Some(old));
    }
    let texts = world.slack_texts().join("\n");
    assert!(texts.contains(code), "the reason is in Slack: {texts}");
}

#[tokio::test]
async fn a_secret_apply_that_fails_once_is_retried_by_the_same_key_without_a_second_mint() {
    let (world, old) = job_world().await;
    world
        .signon
        .faults
        .next(SECRET_APPLY, Fault::Status(500), 1);
    let row = rotate(&world).await;
    assert_eq!(row.phase, "done", "{row:#?}");
    assert_eq!(world.kubernetes.jobs_of("mint"), 2, "the second run");
    assert_eq!(world.signon.minted().len(), 1, "one token for one rotation");
    let minted = &world.signon.minted()[0];
    assert_eq!(
        world.secret(USER, APP).as_deref(),
        Some(minted.value.as_str())
    );
    assert!(!world.signon.is_live(&old));
}

#[tokio::test]
async fn a_token_whose_secret_never_got_written_is_journaled_then_revoked_by_the_rollback() {
    let (world, old) = job_world().await;
    world.signon.faults.always(SECRET_APPLY, Fault::Status(500));
    let row = rotate(&world).await;
    assert_eq!(row.phase, "rolled_back", "{row:#?}");
    let minted = world.signon.minted();
    assert_eq!(minted.len(), 1, "never a second mint: {minted:#?}");
    assert_eq!(
        row.new_token_id.as_deref(),
        Some(minted[0].id.to_string().as_str())
    );
    assert!(
        !world.signon.is_live(&minted[0].value),
        "the token nobody holds is revoked, not left live"
    );
    assert!(world.signon.is_live(&old), "the old token keeps working");
    assert_eq!(world.secret(USER, APP).as_deref(), Some(old.as_str()));
}

#[tokio::test]
async fn a_mint_job_removed_by_its_ttl_is_recovered_by_key_not_run_again() {
    let sims = Sims::start().await;
    let opts = || options(IssuerMode::Job, Distribution::Apply);
    let world = sims.world_with(None, opts()).await;
    let old = world.seed(USER, APP);
    world.app.post_webhook(capture("01-")).await;
    world
        .tick_until(|w| w.kubernetes.jobs_of("mint") == 1)
        .await;
    assert_eq!(world.kubernetes.jobs_of("mint"), 1);
    // The service stops; meanwhile the Job mints, finishes and is deleted with its log.
    let (sims, dir) = world.crash().await;
    sims.production().kubernetes.finish_and_remove_jobs("mint");
    let world = sims.world_with(Some(dir), opts()).await;
    assert_eq!(world.signon.minted().len(), 1, "the Job did mint");
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "done", "{row:#?}");
    assert_eq!(world.kubernetes.jobs_of("mint"), 0, "no mint Job again");
    assert_eq!(world.signon.minted().len(), 1, "one mint");
    let minted = &world.signon.minted()[0];
    assert_eq!(
        row.new_token_id.as_deref(),
        Some(minted.id.to_string().as_str())
    );
    assert!(!world.signon.is_live(&old));
}

#[tokio::test]
async fn a_suspended_api_user_is_refused_before_anything_is_written() {
    let (world, old) = job_world().await;
    world.signon.suspend(USER, true);
    rotate(&world).await;
    assert_refused(&world, Some(&old), "list", "api_user_suspended").await;
}

#[tokio::test]
async fn a_retired_application_is_refused() {
    let (world, old) = job_world().await;
    world.signon.retire(APP);
    rotate(&world).await;
    assert_refused(&world, Some(&old), "list", "application_retired").await;
}

#[tokio::test]
async fn a_person_is_not_an_api_user() {
    let (world, _) = job_world().await;
    world.signon.add_person(USER, "Someone", false);
    rotate(&world).await;
    assert_refused(&world, None, "list", "not_an_api_user").await;
}

#[tokio::test]
async fn without_a_known_superadmin_initiator_nothing_is_minted() {
    for (initiator, code) in [
        ("", "initiator_missing"),
        ("nobody@digital.cabinet-office.gov.uk", "initiator_unknown"),
        (
            "someone@digital.cabinet-office.gov.uk",
            "initiator_not_superadmin",
        ),
    ] {
        let options = WorldOptions {
            initiator: initiator.to_owned(),
            ..options(IssuerMode::Job, Distribution::Apply)
        };
        let (world, old) = world(options, Rollout::Finishes).await;
        world
            .signon
            .add_person("someone@digital.cabinet-office.gov.uk", "Someone", false);
        rotate(&world).await;
        assert_refused(&world, Some(&old), "mint", code).await;
    }
}

#[tokio::test]
async fn a_pair_with_no_live_token_gets_none_rotation_never_creates_access() {
    let sims = Sims::start().await;
    let world = sims
        .world_with(None, options(IssuerMode::Job, Distribution::Apply))
        .await;
    world.signon.stop_provisioning();
    world.signon.add_user(USER, "Short URL Manager");
    world.signon.add_application(APP);
    let row = rotate(&world).await;
    assert_eq!(row.phase, "failed", "{row:#?}");
    let outcome = row.outcome.unwrap_or_default();
    assert!(outcome.contains("nothing to rotate"), "{outcome}");
    // The engine stops before any mint; mint.rb would refuse too (`no_access`, tests/signon).
    assert_eq!(world.kubernetes.jobs_of("mint"), 0);
    assert_eq!(world.signon.minted().len(), 0);
    assert!(world.secret(USER, APP).is_none(), "no Secret made");
}

#[tokio::test]
async fn a_new_token_lives_as_long_as_signon_makes_them() {
    let (world, _) = job_world().await;
    let row = rotate(&world).await;
    assert_eq!(row.phase, "done", "{row:#?}");
    let minted = &world.signon.minted()[0];
    let issued = world
        .audit(&row.id)
        .await
        .into_iter()
        .find(|a| a.to_phase == "issued")
        .unwrap();
    // `ApiUser::DEFAULT_TOKEN_LIFE = 2.years.to_i` (app/models/api_user.rb): 63 113 904 s
    // from the mint, which the test clock puts at the issued transition.
    let life = minted.expires_at.as_millisecond() - issued.at_ms;
    assert!(
        (63_113_904_000 - 5_000..=63_113_904_000).contains(&life),
        "token life {life} ms"
    );
}

#[tokio::test]
async fn signons_sync_skips_suspended_users_and_writes_as_signon() {
    let (world, old) = world(
        options(IssuerMode::Job, Distribution::Sync),
        Rollout::Finishes,
    )
    .await;
    // A second pair whose user is suspended with a token that outlived it: never synced.
    let other = "suspended-app@alphagov.co.uk";
    let kept = world
        .signon
        .add_token(other, APP, Duration::from_secs(86400));
    world.signon.suspend(other, true);
    world.kubernetes.add_deployment(
        NAMESPACE,
        "other",
        &world.secret_name(other, APP),
        SecretUse::Env,
        true,
        Rollout::Finishes,
    );
    let row = rotate(&world).await;
    assert_eq!(row.phase, "done", "{row:#?}");
    assert!(world.signon.is_live(&kept));
    assert_eq!(
        world.secret(other, APP),
        None,
        "suspended users are skipped"
    );
    assert_ne!(world.secret(USER, APP).as_deref(), Some(old.as_str()));
    let secret = world
        .kubernetes
        .secret_object(NAMESPACE, &world.secret_name(USER, APP))
        .unwrap();
    assert_eq!(secret["metadata"]["managedFields"][0]["manager"], "signon");
}

/// The account the scripts act as is checked (a Job that writes nothing) before a rotation needs
/// it: a suspended one shows on `/readyz`, the status page, the gauge and in Slack once, and no
/// token is touched.
#[tokio::test]
async fn a_suspended_initiator_is_found_by_the_identity_check_before_a_rotation_needs_it() {
    use token_rotator::sim::signon::INITIATOR;
    let (world, old) = job_world().await;
    let readyz = || async { world.app.get_text("/readyz").await.1 };
    // One check per environment served, each a Job in its own cluster.
    assert_eq!(world.engine.check_identities().await.unwrap(), 2);
    for environment in ["integration", "production"] {
        assert_eq!(
            world.env(environment).kubernetes.jobs_of("check_initiator"),
            1
        );
    }
    let ready = readyz().await;
    assert!(!ready.contains("issuer_identity"), "accepted: {ready}");
    world.run_to_the_end().await;
    assert!(
        world.slack_texts().is_empty(),
        "an accepted check says nothing"
    );

    world.env("production").signon.suspend(INITIATOR, true);
    world.clock.advance(Duration::from_secs(60));
    world.engine.check_identities().await.unwrap();
    let ready = readyz().await;
    assert!(
        ready.contains("environment production: Signon did not accept")
            && ready.contains("initiator_suspended")
            && !ready.contains("environment integration"),
        "{ready}"
    );
    let page = world.app.get_authorized("/").await;
    assert!(
        page.contains("The account token-rotator acts as needs attention")
            && page.contains("initiator_suspended"),
        "the status page says so"
    );
    let (_, metrics) = world.app.get_text("/metrics").await;
    assert!(
        metrics.contains("token_rotator_issuer_identity_problems 1"),
        "{metrics}"
    );
    // Checked again the next day, still suspended: Slack was told once.
    world.clock.advance(Duration::from_secs(24 * 3600));
    world.engine.check_identities().await.unwrap();
    world.run_to_the_end().await;
    let texts = world.slack_texts();
    assert_eq!(texts.len(), 1, "{texts:#?}");
    assert!(
        texts[0].contains("cannot act for environment production")
            && texts[0].contains("initiator_suspended"),
        "{texts:#?}"
    );
    assert_eq!(world.signon.minted().len(), 0);
    assert_eq!(world.signon.revoked().len(), 0);
    assert!(world.signon.is_live(&old));
}
