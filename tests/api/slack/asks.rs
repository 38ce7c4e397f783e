//! An `ask` rule (the external and human API users GOV.UK's alerts are actually about): the owners
//! are asked in the thread, nothing is minted before a choice, and each choice does what it says
//! through the same signed interaction endpoint Slack calls.

use std::time::Duration;

use token_rotator::clock::Clock;
use token_rotator::engine::message::{APPROVE, HAND_OVER, LET_EXPIRE, REVOKE_UNUSED};

use super::*;

const EXTERNAL: &str = "partner-bot@partner.example";
const APP: &str = "Content Store";

const ASK_CONFIG: &str = r##"
[environments.production]
[environments.integration]

[slack]
channel = "#rotations"
approval_timeout = "2h"

[[rules]]
name = "external-api-user-is-asked"
action = "manual"
owner = "#platform"
runbook_url = "https://runbook.example/hand-over"
ask = true
approvers = ["U0ALICE"]
handover_window = "1d"
old_token = "revoke"
api_user_domain = "external"

[[rules]]
name = "internal-api-user"
action = "rotate"
api_user_domain = "internal"
"##;

async fn asked_world() -> (World, String, String) {
    asked_world_with(WorldOptions::default()).await
}

/// Asked with `base`'s issuer and distribution, Slack threads and the `ask` rule.
async fn asked_world_with(base: WorldOptions) -> (World, String, String) {
    let options = WorldOptions {
        config_toml: Some(ASK_CONFIG.to_owned()),
        slack_threads: true,
        ..base
    };
    let world = Sims::start().await.world_with(None, options).await;
    let old = world.seed(EXTERNAL, APP);
    world
        .app
        .post_webhook(batch(&[(EXTERNAL.into(), APP.into())]))
        .await;
    world.engine.run_until_idle().await.unwrap();
    let rows = world.rotations().await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].phase, "awaiting_approval");
    let id = rows[0].id.clone();
    (world, old, id)
}

/// The question as Slack shows it: three choices, the revoke behind a confirmation.
async fn the_question(world: &World) -> Message {
    wait_for_slack(world).await;
    world
        .slack
        .posted()
        .into_iter()
        .find(|m| {
            m.body
                .to_string()
                .contains(&format!("\"action_id\":\"{HAND_OVER}\""))
        })
        .expect("the question with its buttons was posted")
}

#[tokio::test]
async fn the_owners_are_asked_and_nothing_is_minted_before_a_choice() {
    let (world, old, id) = asked_world().await;
    let question = the_question(&world).await;
    let body = question.body.to_string();
    for action in [HAND_OVER, REVOKE_UNUSED, LET_EXPIRE] {
        assert!(
            body.contains(&format!("\"action_id\":\"{action}\"")),
            "{body}"
        );
    }
    assert!(!body.contains(&format!("\"action_id\":\"{APPROVE}\"")));
    assert!(
        body.contains("\"confirm\""),
        "revoking asks the clicker to confirm: {body}"
    );
    assert!(question.all_text().contains("May choose: <@U0ALICE>"));
    assert_eq!(world.signon.minted().len(), 0);
    // Approve is not one of this request's answers: nothing changes, and the clicker is told.
    let (status, answer) = click_answer(&world, &id, APPROVE, "U0ALICE").await;
    assert_eq!(status, 200);
    assert!(
        answer.contains("Approve is not a choice on the request"),
        "{answer}"
    );
    world.engine.run_until_idle().await.unwrap();
    assert_eq!(world.rotations().await[0].phase, "awaiting_approval");
    // Nor may someone who is not an owner choose.
    let (status, answer) = click_answer(&world, &id, REVOKE_UNUSED, "U0MALLORY").await;
    assert_eq!(status, 200);
    assert!(answer.contains("You may not decide"), "{answer}");
    world.engine.run_until_idle().await.unwrap();
    assert_eq!(world.rotations().await[0].phase, "awaiting_approval");
    assert!(world.signon.is_live(&old));
    assert_eq!(world.signon.minted().len(), 0);
    assert_eq!(world.signon.revoked().len(), 0);
}

#[tokio::test]
async fn revoke_no_longer_used_revokes_every_live_token_and_mints_nothing() {
    let (world, old, id) = asked_world().await;
    let second = world
        .signon
        .add_token(EXTERNAL, APP, Duration::from_secs(30 * 86400));
    let (status, answer) = click_answer(&world, &id, REVOKE_UNUSED, "U0ALICE").await;
    assert_eq!(status, 200);
    assert!(
        answer.contains("You chose to revoke it as no longer used"),
        "{answer}"
    );
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "retired", "{row:#?}");
    assert_eq!(row.decided_by.as_deref(), Some("slack:U0ALICE (someone)"));
    assert!(!world.signon.is_live(&old) && !world.signon.is_live(&second));
    assert_eq!(world.signon.minted().len(), 0, "nothing minted");
    let audit = world.audit(&id).await;
    assert!(
        audit.iter().any(|a| a.to_phase == "retiring"),
        "journaled before revoking"
    );
    wait_for_slack(&world).await;
    let text: String = world.slack.posted().iter().map(Message::all_text).collect();
    assert!(text.contains("Revoked the token of"), "{text}");
    assert!(
        !text.contains(&old) && !text.contains(&second),
        "no token value in Slack"
    );
}

#[tokio::test]
async fn let_it_expire_silences_the_alert_until_the_token_expires() {
    let (world, old, id) = asked_world().await;
    assert_eq!(click_now(&world, &id, LET_EXPIRE, "U0ALICE").await, 200);
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "silenced", "{row:#?}");
    let silences = world.alertmanager.silences();
    assert_eq!(silences.len(), 1, "{silences:#?}");
    let ends: jiff::Timestamp = silences[0]["endsAt"].as_str().unwrap().parse().unwrap();
    // The seeded token expires ten days from the world's start.
    let expected = world.clock.now() + Duration::from_secs(10 * 86400);
    let off = (ends.as_second() - expected.as_second()).abs();
    assert!(
        off < 3600,
        "ends {ends}, the token expires about {expected}"
    );
    let comment = silences[0]["comment"].as_str().unwrap();
    assert!(
        comment.contains("slack:U0ALICE") && comment.contains("let this token expire"),
        "{comment}"
    );
    let matchers = silences[0]["matchers"].to_string();
    assert!(
        matchers.contains(EXTERNAL) && matchers.contains(APP),
        "{matchers}"
    );
    assert!(world.signon.is_live(&old));
    assert_eq!(world.signon.minted().len(), 0);
}

/// Until `done` holds: the notifier posts on its own, at Slack's pace.
async fn eventually(done: impl Fn() -> bool) {
    for _ in 0..150 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn rotate_and_hand_over_gives_the_chooser_a_one_time_link_then_revokes_the_old_token() {
    let (world, old, id) = asked_world().await;
    hand_over_then_confirm(&world, &old, &id, true).await;
}

/// Signon's scripts as Jobs never print a token: `mint.rb` writes the Secret, and the value
/// handed over is read from there, recognised by the SHA-256 the script reported.
#[tokio::test]
async fn a_hand_over_through_signons_jobs_reads_the_value_the_script_wrote() {
    let (world, old, id) = asked_world_with(WorldOptions {
        issuer: token_rotator::config::IssuerMode::Job,
        distribution: token_rotator::config::Distribution::Apply,
        ..WorldOptions::default()
    })
    .await;
    hand_over_then_confirm(&world, &old, &id, false).await;
    assert_eq!(
        world.kubernetes.jobs_of("mint"),
        1,
        "minted by mint.rb in a Job"
    );
}

async fn hand_over_then_confirm(world: &World, old: &str, id: &str, secret_untouched: bool) {
    assert_eq!(click_now(world, id, HAND_OVER, "U0ALICE").await, 200);
    for _ in 0..20 {
        world.engine.run_until_idle().await.unwrap();
        if world.rotations().await[0].phase != "planned"
            && world.rotations().await[0].phase != "issued"
        {
            break;
        }
        world.clock.advance(Duration::from_secs(5));
    }
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "awaiting_handover", "{row:#?}");
    assert_eq!(world.signon.minted().len(), 1);
    // The link goes to the chooser alone, as a direct message.
    let texts = || -> String {
        world
            .slack
            .direct_messages("U0ALICE")
            .iter()
            .map(|m| m.all_text())
            .collect()
    };
    eventually(|| texts().contains("/v1/handover/")).await;
    let texts = texts();
    let start = texts
        .find("/v1/handover/")
        .expect("the chooser has the link");
    let path = texts[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches(['.', ',', '>'])
        .to_owned();
    assert!(texts.contains("the old one is then revoked"), "{texts}");
    let revealed = world
        .app
        .client
        .post(world.app.url(&path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let new = revealed.trim();
    assert_eq!(new, world.signon.minted()[0].value);
    if secret_untouched {
        // token-rotator wrote no Secret: the value went to a person.
        assert_eq!(world.secret(EXTERNAL, APP).as_deref(), Some(old));
    }
    let confirmed = world
        .app
        .client
        .post(world.app.url(&format!("{path}/confirm")))
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200);
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "done", "{row:#?}");
    assert!(world.signon.is_live(new));
    assert!(
        !world.signon.is_live(old),
        "confirmed: the old token is revoked"
    );
    for n in world.notifications().await {
        assert!(!n.body.contains(new), "no token value in the outbox");
    }
}

#[tokio::test]
async fn a_hand_over_never_confirmed_leaves_the_old_token_to_its_expiry() {
    let (world, old, id) = asked_world().await;
    assert_eq!(click_now(&world, &id, HAND_OVER, "U0ALICE").await, 200);
    world.engine.run_until_idle().await.unwrap();
    assert_eq!(world.rotations().await[0].phase, "awaiting_handover");
    world.clock.advance(Duration::from_secs(86400 + 60));
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "done", "{row:#?}");
    assert!(
        world.signon.is_live(&old),
        "unconfirmed: the old token stays until its expiry"
    );
    let audit = world.audit(&id).await;
    assert!(
        audit.iter().any(|a| a.reason.contains("left to expire")),
        "{audit:#?}"
    );
}
