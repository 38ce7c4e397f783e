//! No token value (nor Slack's bot token or signing secret) reaches the logs, Slack, /metrics or
//! the journal's bytes (file and WAL); nor, from `serve`'s own log, what a library logs of an
//! answer it could not parse.

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

/// kube-client logs an answer it cannot parse whole, at WARN (kube-client 5.0.0,
/// `src/client/mod.rs`: `tracing::warn!("{}, {:?}", text, e)`), and a Secret's answer holds its
/// token (base64, as `data` carries it). Here the Kubernetes API answers a Secret's read once
/// with a Secret kube cannot parse (a `type` that is not a string); the step retries and the
/// rotation ends, and neither form of the token is in `serve`'s log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_answer_kube_cannot_parse_is_not_logged_with_its_token() {
    use base64::Engine;
    use token_rotator::adapters::kubernetes::TOKEN_KEY;
    use token_rotator::domain::parameterize::secret_name;
    use token_rotator::sim::Fault;

    let pair =
        crate::failover::pair::pair_timing_out(crate::postgres::database().await, "5s", "").await;
    pair.at_full_speed();
    let user = "unparsed@alphagov.co.uk";
    pair.seed(user);
    let secret = secret_name(&pair.signon.user_name(user), "Publishing API");
    let value = pair
        .kubernetes
        .value(crate::world::NAMESPACE, &secret, TOKEN_KEY)
        .unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&value);
    let unparsable = format!(
        r#"{{"apiVersion":"v1","kind":"Secret","metadata":{{"name":"{secret}","namespace":"{}"}},"type":5,"data":{{"{TOKEN_KEY}":"{encoded}"}}}}"#,
        crate::world::NAMESPACE
    );
    pair.kubernetes.faults.next(
        "get",
        Fault::Json(200, Box::leak(unparsable.into_boxed_str())),
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut child = pair.replicas[0].spawn_with(|command| {
        command
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::from(file));
    });
    pair.replicas[0].ready().await;
    assert!(
        pair.replicas[0]
            .post_webhook(crate::failover::pair::Pair::alert(user, "00000000bad0b0d7"))
            .await
    );
    pair.wait_for_phase(0, user, &["done"], std::time::Duration::from_secs(60))
        .await;
    crate::process::kill(&mut child);
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(
        logs.contains("step failed"),
        "the unparsable answer was met: {logs}"
    );
    assert!(!logs.contains(&value), "the token is in the log");
    assert!(
        !logs.contains(&encoded),
        "the token, base64 as in the Secret, is in the log"
    );
}
