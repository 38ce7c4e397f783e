//! Exact names: Signon's MySQL finds a user or an application by any spelling of its name
//! (`src/sim/signon/world.rs` `collates_equal` cites the collations), so a target spelled one way
//! may reach the account stored another way, which no rule chose. Every listing and mint says
//! what it matched; a rotation goes on only when that is exactly the target's spelling.

use token_rotator::config::{Distribution, IssuerMode};
use token_rotator::sim::kubernetes::Rollout;

use crate::cluster::{options, world};
use crate::helpers::alert_body;
use crate::world::{Sims, World, WorldOptions};

const USER: &str = "short-url-manager@alphagov.co.uk";

/// An expiry alert in production for `api_user` / `application`, as the labels spell them.
async fn alert(world: &World, api_user: &str, application: &str) {
    let body = alert_body(
        "00000000000000e1",
        &[
            ("alertname", "SignonApiUserTokenExpirySoon"),
            ("environment", "production"),
            ("api_user", api_user),
            ("application", application),
        ],
    );
    assert_eq!(world.app.post_webhook(body).await.status(), 200);
}

/// The rotation stopped before anything was made: failed, naming both spellings, nothing
/// minted or revoked, the old token live and still in place.
async fn assert_stopped_before_minting(world: &World, old: &str, found: &str, asked: &str) {
    let rows = world.rotations().await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let row = &rows[0];
    assert_eq!(row.phase, "failed", "{row:#?}");
    let outcome = row.outcome.clone().unwrap_or_default();
    for part in [found, asked, "nothing was changed"] {
        assert!(outcome.contains(part), "{part:?} not in {outcome}");
    }
    assert!(world.signon.minted().is_empty(), "nothing minted");
    assert!(world.signon.revoked().is_empty(), "nothing revoked");
    assert!(world.signon.is_live(old));
    let texts = world.slack_texts().join("\n");
    assert!(texts.contains(found), "the reason is in Slack: {texts}");
}

#[tokio::test]
async fn an_application_signon_finds_under_another_spelling_is_not_rotated() {
    let world = Sims::start().await.world(None).await;
    let old = world.seed(USER, "Content Store");
    world.signon.stop_provisioning();
    alert(&world, USER, "content store").await;
    world.run_to_the_end().await;
    assert_stopped_before_minting(&world, &old, "\"Content Store\"", "\"content store\"").await;
    assert_eq!(
        world.secret(USER, "Content Store").as_deref(),
        Some(old.as_str())
    );
}

#[tokio::test]
async fn the_slug_of_the_stored_name_is_exact_and_rotates() {
    let world = Sims::start().await.world(None).await;
    let old = world.seed(USER, "Content Store");
    world.signon.stop_provisioning();
    // Signon's metric labels the application by its parameterized name.
    alert(&world, USER, "content-store").await;
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "done", "{row:#?}");
    assert!(!world.signon.is_live(&old));
}

#[tokio::test]
async fn an_api_user_signon_stores_in_another_case_is_not_rotated() {
    let world = Sims::start().await.world(None).await;
    // Devise lower-cases every email it saves; this one was written around it.
    let stored = "Short-URL-Manager@alphagov.co.uk";
    let old = world.seed(stored, "Publishing API");
    world.signon.stop_provisioning();
    alert(&world, USER, "Publishing API").await;
    world.run_to_the_end().await;
    assert_stopped_before_minting(&world, &old, &format!("{stored:?}"), &format!("{USER:?}")).await;
}

#[tokio::test]
async fn a_job_listing_that_matched_another_spelling_stops_before_the_mint_job() {
    let world = Sims::start()
        .await
        .world_with(None, options(IssuerMode::Job, Distribution::Apply))
        .await;
    let old = world.seed(USER, "Content Store");
    world.signon.stop_provisioning();
    alert(&world, USER, "content store").await;
    world.run_to_the_end().await;
    assert_stopped_before_minting(&world, &old, "\"Content Store\"", "\"content store\"").await;
    assert_eq!(world.kubernetes.jobs_of("list"), 1);
    assert_eq!(world.kubernetes.jobs_of("mint"), 0, "no mint Job");
}

#[tokio::test]
async fn a_token_minted_for_another_spelling_is_revoked_and_the_old_one_put_back() {
    let (world, old) = world(
        options(IssuerMode::Job, Distribution::Apply),
        Rollout::Finishes,
    )
    .await;
    const APP: &str = "Publishing API";
    world.signon.stop_provisioning();
    alert(&world, USER, APP).await;
    // Listed as the target spells it; then, before the mint Job runs, an admin renames the
    // application to another spelling, which the mint's lookup finds all the same.
    world
        .tick_until(|w| w.kubernetes.jobs_of("mint") == 1)
        .await;
    assert_eq!(world.kubernetes.jobs_of("mint"), 1);
    assert!(world.signon.minted().is_empty(), "the mint Job has not run");
    world.signon.rename_application(APP, "Publishing Api");
    world.run_to_the_end().await;

    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "rolled_back", "{row:#?}");
    let outcome = row.outcome.clone().unwrap_or_default();
    assert!(
        outcome.contains("\"Publishing Api\"") && outcome.contains("so it is revoked"),
        "{outcome}"
    );
    let minted = world.signon.minted();
    assert_eq!(minted.len(), 1, "{minted:#?}");
    assert_eq!(
        row.new_token_id.as_deref(),
        Some(minted[0].id.to_string().as_str())
    );
    assert!(
        !world.signon.is_live(&minted[0].value),
        "the token made for the other spelling is revoked"
    );
    assert!(world.signon.is_live(&old), "the old token keeps working");
    assert_eq!(world.secret(USER, APP).as_deref(), Some(old.as_str()));
}

#[tokio::test]
async fn an_initiator_configured_in_another_spelling_is_accepted_with_a_warning() {
    use token_rotator::sim::signon::INITIATOR;
    let configured = INITIATOR.to_uppercase();
    let world = Sims::start()
        .await
        .world_with(
            None,
            WorldOptions {
                initiator: configured.clone(),
                ..options(IssuerMode::Job, Distribution::Apply)
            },
        )
        .await;
    world.engine.check_identities().await.unwrap();
    let (_, ready) = world.app.get_text("/readyz").await;
    // readyz is JSON: the sentence's quotes arrive escaped.
    let said = format!(
        "matched the configured initiator \\\"{configured}\\\" to the user \\\"{INITIATOR}\\\""
    );
    assert!(ready.contains(&said), "{said}\n{ready}");
}
