//! A dead pair: its only token expired and was never revoked, so Signon's metric keeps it and
//! its alert fires for ever. Found in the last inventory, it is asked about (revoke it, or issue
//! a new one, which creates access again and so needs a person), not failed as "nothing to rotate".

use std::time::Duration;

use token_rotator::config::{Distribution, IssuerMode};
use token_rotator::engine::message::{ISSUE_NEW, REVOKE_DEAD};

use super::*;

const DEAD: &str = "email-alert-api@publishing.service.gov.uk";
const APP: &str = "Email Alert API";
const DAY: Duration = Duration::from_secs(86_400);

fn config(owners: &str) -> String {
    format!(
        r##"
[environments.production]
[environments.integration]

[slack]
channel = "#rotations"
approval_timeout = "2h"

{owners}

[[rules]]
name = "internal-api-user"
action = "rotate"
api_user_domain = "internal"
"##
    )
}

/// A world whose pair's only token expired a day ago, inventoried, and its alert delivered.
async fn dead_world(owners: &str) -> (World, String) {
    let options = WorldOptions {
        config_toml: Some(config(owners)),
        slack_threads: true,
        issuer: IssuerMode::Job,
        distribution: Distribution::Apply,
        ..WorldOptions::default()
    };
    let world = Sims::start().await.world_with(None, options).await;
    world.signon.add_token(DEAD, APP, DAY);
    let id = world.signon.tokens().last().unwrap().id.to_string();
    world.clock.advance(2 * DAY);
    world.engine.take_inventories().await.unwrap();
    world
        .app
        .post_webhook(batch(&[(DEAD.into(), APP.into())]))
        .await;
    for _ in 0..20 {
        world.engine.run_until_idle().await.unwrap();
        let row = &world.rotations().await[0];
        if row.phase != "planned" || row.next_attempt_at_ms.is_none() {
            break;
        }
        world.clock.advance(Duration::from_secs(5));
    }
    (world, id)
}

#[tokio::test]
async fn a_dead_pair_is_asked_about_and_revoking_its_expired_token_mints_nothing() {
    let (world, dead_id) =
        dead_world("[owners]\n\"publishing.service.gov.uk\" = [\"U0ALICE\"]").await;
    let row = world.rotations().await[0].clone();
    assert_eq!(row.phase, "awaiting_approval", "{row:#?}");
    wait_for_slack(&world).await;
    let question = world
        .slack
        .posted()
        .into_iter()
        .find(|m| m.body.to_string().contains(REVOKE_DEAD))
        .expect("the dead-token question was posted");
    let text = question.all_text();
    assert!(
        text.contains("has no live token") && text.contains(&dead_id),
        "{text}"
    );
    assert!(question.body.to_string().contains(ISSUE_NEW));
    assert_eq!(world.signon.minted().len(), 0);

    assert_eq!(
        click_now(&world, &row.id, REVOKE_DEAD, "U0ALICE").await,
        200
    );
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "retired", "{row:#?}");
    assert_eq!(world.signon.minted().len(), 0, "nothing minted");
    let revoked: Vec<String> = world
        .signon
        .revoked()
        .iter()
        .map(|t| t.id.to_string())
        .collect();
    assert_eq!(revoked, [dead_id], "exactly the expired token");
}

#[tokio::test]
async fn issuing_a_new_one_for_a_dead_pair_needs_its_owner_and_then_rotates_into_place() {
    let (world, dead_id) =
        dead_world("[owners]\n\"publishing.service.gov.uk\" = [\"U0ALICE\"]").await;
    let id = world.rotations().await[0].id.clone();
    // Not an owner: refused, nothing changes.
    assert_eq!(click_now(&world, &id, ISSUE_NEW, "U0MALLORY").await, 200);
    world.engine.run_until_idle().await.unwrap();
    assert_eq!(world.rotations().await[0].phase, "awaiting_approval");
    assert_eq!(click_now(&world, &id, ISSUE_NEW, "U0ALICE").await, 200);
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "done", "{row:#?}");
    assert_eq!(row.decided_by.as_deref(), Some("slack:U0ALICE (someone)"));
    assert_eq!(world.signon.minted().len(), 1);
    let minted = world.signon.minted()[0].value.clone();
    assert_eq!(world.secret(DEAD, APP).as_deref(), Some(minted.as_str()));
    assert!(
        world
            .signon
            .revoked()
            .iter()
            .all(|t| t.id.to_string() != dead_id)
    );
}

#[tokio::test]
async fn a_dead_pair_nobody_owns_fails_saying_so_not_nothing_to_rotate() {
    let (world, dead_id) = dead_world("").await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "failed", "{row:#?}");
    let outcome = row.outcome.clone().unwrap_or_default();
    assert!(
        outcome.contains("dead token") && outcome.contains(&dead_id),
        "{outcome}"
    );
    assert!(!outcome.contains("nothing to rotate"), "{outcome}");
    assert_eq!(world.signon.minted().len(), 0);
}
