//! No token value reaches the logs, Slack, /metrics or the journal's bytes (file and WAL).

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;

use crate::helpers::{capture, captures, fixture, journal_path};
use crate::world::{ENVIRONMENTS, spawn_world};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn no_token_value_appears_in_logs_slack_metrics_or_the_journal() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    // This test's runtime is single-threaded: the service's tasks log on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

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

    let (_, metrics) = world.app.get_text("/metrics").await;
    let slack: Vec<u8> = serde_json::to_vec(&world.slack.messages()).unwrap();
    let db = journal_path(world.app.dir.path());
    let wal = db.with_extension("db-wal");
    let journal_live = [
        std::fs::read(&db).unwrap(),
        std::fs::read(&wal).unwrap_or_default(),
    ]
    .concat();
    let log_bytes = logs.0.lock().unwrap().clone();
    assert!(contains(&log_bytes, "phase changed"), "logs were captured");
    assert!(!world.slack.messages().is_empty());

    for token in &tokens {
        assert!(!contains(&log_bytes, token), "a token value is in the logs");
        assert!(
            !contains(&slack, token),
            "a token value is in a Slack message"
        );
        assert!(
            !contains(metrics.as_bytes(), token),
            "a token value is in /metrics"
        );
        assert!(
            !contains(&journal_live, token),
            "a token value is in the journal or its WAL"
        );
    }
}
