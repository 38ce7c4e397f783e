//! When upstreams fail: retries with backoff, permanent errors, deadlines, and Slack outages.

use std::time::Duration;

use token_rotator::engine::Phase;
use token_rotator::sim::Fault;

use crate::helpers::alert_body;
use crate::rotation::{APP, USER, alert};
use crate::world::spawn_world;

#[tokio::test]
async fn signon_5xx_and_429_are_retried_and_the_retries_are_in_the_audit() {
    let world = spawn_world().await;
    world.seed(USER, APP);
    world.fail_signon("list", Fault::Status(429), 1);
    world.fail_signon("mint", Fault::Status(503), 2);
    world.fail_signon("revoke", Fault::Status(500), 1);
    alert(&world).await;
    world.run_to_the_end().await;

    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "done");
    assert_eq!(
        world.signon.minted().len(),
        1,
        "retried mints made one token"
    );
    let retries: Vec<_> = world
        .audit(&row.id)
        .await
        .into_iter()
        .filter(|a| a.trigger == "retry")
        .map(|a| a.reason)
        .collect();
    assert_eq!(retries.len(), 4, "{retries:#?}");
    assert!(
        retries[0].contains("attempt 1 failed: signon: HTTP 429"),
        "{retries:#?}"
    );
    assert!(
        retries[1].contains("attempt 2 failed: signon: HTTP 503"),
        "{retries:#?}"
    );
    assert!(
        retries[3].contains("attempt 1 failed: signon: HTTP 500"),
        "{retries:#?}"
    );
}

#[tokio::test]
async fn a_signon_timeout_is_retried() {
    let world = spawn_world().await;
    world.seed(USER, APP);
    world.fail_signon("list", Fault::Hang(Duration::from_secs(3)), 1);
    alert(&world).await;
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "done");
    let audit = world.audit(&row.id).await;
    assert!(
        audit.iter().any(|a| a.reason.contains("signon: timed out")),
        "{audit:#?}"
    );
}

#[tokio::test]
async fn a_signon_4xx_fails_the_rotation_at_once_and_says_so_in_slack() {
    let world = spawn_world().await;
    let old = world.seed(USER, APP);
    world.signon.faults.always("mint", Fault::Status(422));
    alert(&world).await;
    world.run_to_the_end().await;

    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "failed");
    assert_eq!(world.signon.faults.calls("mint"), 1, "a 4xx is not retried");
    assert_eq!(
        world.secret(USER, APP).as_deref(),
        Some(old.as_str()),
        "nothing changed"
    );
    let texts = world.slack_texts();
    assert_eq!(texts.len(), 1);
    assert!(texts[0].contains(":x: Rotating the token of"), "{texts:?}");
    assert!(texts[0].contains("HTTP 422"), "{texts:?}");
    assert!(texts[0].contains("Follow the runbook by hand"), "{texts:?}");
}

#[tokio::test]
async fn slack_down_for_the_whole_rotation_delays_the_message_not_the_rotation() {
    let world = spawn_world().await;
    world.seed(USER, APP);
    world.slack.faults.always("post", Fault::Status(500));
    alert(&world).await;
    world.run_until(Phase::Done).await;
    for _ in 0..3 {
        world.engine.run_until_idle().await.unwrap();
        world.clock.advance(Duration::from_secs(120));
    }
    assert_eq!(world.rotations().await[0].phase, "done");
    assert!(world.slack.messages().is_empty());
    let pending = world.notifications().await;
    assert!(
        pending[0].attempts >= 2 && pending[0].delivered_at_ms.is_none(),
        "{pending:#?}"
    );
    assert!(
        pending[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("HTTP 500")
    );

    world.slack.faults.clear("post");
    world.run_to_the_end().await;
    assert_eq!(world.slack_texts().len(), 1);
    assert!(world.slack_texts()[0].contains("Rotated the token"));
}

#[tokio::test]
async fn retries_that_would_pass_the_deadline_end_in_failed() {
    let world = spawn_world().await;
    // Expires two days (the safety margin) and a minute from now: almost no time to retry.
    world
        .signon
        .add_token(USER, APP, Duration::from_secs(2 * 86400 + 60));
    world.signon.faults.always("mint", Fault::Status(503));
    alert(&world).await;
    world.run_to_the_end().await;

    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "failed", "{row:#?}");
    assert!(row.deadline_at_ms.is_some());
    assert!(
        row.outcome.as_deref().unwrap().contains("gave up after"),
        "{row:#?}"
    );
    assert!(
        world.signon.faults.calls("mint") < 5,
        "stopped before the attempts ran out"
    );
    assert!(world.slack_texts()[0].contains("failed"));
}

#[tokio::test]
async fn an_unreachable_alertmanager_fails_the_silence_and_says_so_in_slack() {
    let world = spawn_world().await;
    world.alertmanager.faults.always("list", Fault::Status(503));
    let staging = alert_body(
        "00000000000000cc",
        &[
            ("alertname", "SignonApiUserTokenExpirySoon"),
            ("environment", "staging"),
            ("api_user", USER),
            ("application", APP),
        ],
    );
    world.app.post_webhook(staging).await;
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "failed", "{row:#?}");
    assert!(
        row.outcome
            .as_deref()
            .unwrap()
            .contains("alertmanager: HTTP 503"),
        "{row:#?}"
    );
    assert!(world.alertmanager.silences().is_empty());
    let texts = world.slack_texts();
    assert!(
        texts[0].contains(":x:") && texts[0].contains("HTTP 503"),
        "{texts:?}"
    );
}
