//! No token value (nor Slack's bot token or signing secret) reaches the logs, Slack, /metrics or
//! the journal's bytes (file and WAL).

use crate::helpers::{capture, captures, fixture, journal_path};
use token_rotator::sim::slack::{BOT_TOKEN, SIGNING_SECRET};

use crate::world::{ENVIRONMENTS, Sims, World, WorldOptions, spawn_world};

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn no_token_value_appears_in_logs_slack_metrics_or_the_journal() {
    let (logs, _guard) = crate::logs::capture();

    let world = spawn_world().await;
    for env in ENVIRONMENTS {
        world.seed_in(env, "email-alert-api@alphagov.co.uk", "Email Alert API");
    }
    world.seed("short-url-manager@alphagov.co.uk", "Publishing API");
    for (_, body) in captures() {
        world.app.post_webhook(body).await;
    }
    world
        .app
        .post_webhook(fixture("synthetic/special-cases.json"))
        .await;
    world.app.post_webhook(capture("11-")).await;
    world.run_to_the_end().await;

    let mut tokens: Vec<String> = Vec::new();
    for env in ENVIRONMENTS {
        tokens.extend(world.env(env).signon.tokens().into_iter().map(|t| t.value));
    }
    let minted: usize = ENVIRONMENTS
        .iter()
        .map(|e| world.env(e).signon.minted().len())
        .sum();
    assert!(
        minted >= 3,
        "the scan needs rotations to have happened: {minted}"
    );

    let slack: Vec<u8> = serde_json::to_vec(&world.slack.messages()).unwrap();
    assert!(!world.slack.messages().is_empty());
    assert_nowhere(&world, &logs, &slack, &tokens).await;
}

/// None of `secrets` is in the captured logs, what Slack received, /metrics or the journal.
async fn assert_nowhere(
    world: &World,
    logs: &crate::logs::Captured,
    slack: &[u8],
    secrets: &[String],
) {
    let (_, metrics) = world.app.get_text("/metrics").await;
    let db = journal_path(world.app.dir.path());
    let wal = db.with_extension("db-wal");
    let journal_live = [
        std::fs::read(&db).unwrap(),
        std::fs::read(&wal).unwrap_or_default(),
    ]
    .concat();
    let log_bytes = logs.bytes();
    assert!(contains(&log_bytes, "phase changed"), "logs were captured");
    for secret in secrets {
        assert!(!contains(&log_bytes, secret), "a secret is in the logs");
        assert!(!contains(slack, secret), "a secret is in a Slack message");
        assert!(
            !contains(metrics.as_bytes(), secret),
            "a secret is in /metrics"
        );
        assert!(
            !contains(&journal_live, secret),
            "a secret is in the journal or its WAL"
        );
    }
}

#[tokio::test]
async fn no_token_bot_token_or_signing_secret_appears_with_slack_threads() {
    let (logs, _guard) = crate::logs::capture();
    let options = WorldOptions {
        slack_threads: true,
        ..WorldOptions::default()
    };
    let world = Sims::start().await.world_with(None, options).await;
    world.seed("short-url-manager@alphagov.co.uk", "Publishing API");
    world.app.post_webhook(capture("01-")).await;
    // A forged click: refused, and logged without the secret it was checked against.
    let body = token_rotator::sim::slack::interaction("x", "approve", "U0X", "x");
    let forged = world
        .app
        .client
        .post(world.app.url("/v1/slack/interactions"))
        .header(
            "x-slack-request-timestamp",
            jiff::Timestamp::now().as_second().to_string(),
        )
        .header("x-slack-signature", "v0=00")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    world.run_to_the_end().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while world
        .slack
        .posted()
        .iter()
        .all(|m| !m.all_text().contains("Rotated the token"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the outcome never reached Slack"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut secrets: Vec<String> = world
        .env("production")
        .signon
        .tokens()
        .into_iter()
        .map(|t| t.value)
        .collect();
    assert_eq!(world.signon.minted().len(), 1);
    secrets.push(BOT_TOKEN.to_owned());
    secrets.push(SIGNING_SECRET.to_owned());
    let slack: Vec<u8> = world
        .slack
        .posted()
        .iter()
        .flat_map(|m| m.body.to_string().into_bytes())
        .collect();
    assert_nowhere(&world, &logs, &slack, &secrets).await;
}
