//! The journal: durable before 200, unavailable means 503, and it outlives the process.

use std::time::Duration;

use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;

use crate::helpers::{Options, alert_body, capture, database_url, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_locked_journal_answers_503_and_the_retry_is_journaled() {
    let app = spawn_app_with(Options {
        busy_timeout: Duration::from_millis(200),
        ..Options::default()
    })
    .await;
    // Another writer holds the write lock, as a stuck process or a full disk would stop ours.
    let mut other = SqliteConnection::connect(&database_url(app.dir.path()))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();

    let (logs, _guard) = crate::logs::capture();
    let refused = app.post_webhook(capture("01-")).await;
    assert_eq!(refused.status(), 503);
    let error: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(error["error"], "unavailable");
    // The answer says the journal is unavailable, never what the database said; the log does.
    assert_eq!(
        error["detail"],
        "journal unavailable: nothing was recorded; try again later"
    );
    let logged = String::from_utf8(logs.bytes()).unwrap();
    assert!(logged.contains("locked"), "the cause is logged: {logged}");

    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    other.close().await.unwrap();
    assert!(app.journal_rows().await.is_empty(), "nothing half-written");

    // Alertmanager re-sends the same bytes after a 5xx; now it lands.
    let retried = app.post_webhook(capture("01-")).await;
    assert_eq!(retried.status(), 200);
    assert_eq!(app.journal_rows().await.len(), 1);
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(metrics.contains("token_rotator_webhook_requests_total{outcome=\"unavailable\"} 1"));
}

/// PostgreSQL refuses the write with words of its own (a trigger here; a NUL byte, a full disk
/// or a constraint in life): the 503 says only that the journal is unavailable.
#[tokio::test]
async fn on_postgres_a_refused_write_is_503_without_the_databases_words() {
    use sqlx::postgres::PgConnection;
    let database = crate::postgres::database().await;
    let url = database.url.clone();
    let app = spawn_app_with(Options {
        configure: Some(Box::new(move |config| config.database_url = url)),
        ..Options::default()
    })
    .await;
    let mut admin = PgConnection::connect(&database.url).await.unwrap();
    sqlx::raw_sql(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'refused by trigger-secret-words on table deliveries'; END $$; \
         CREATE TRIGGER refuse BEFORE INSERT ON deliveries \
         FOR EACH ROW EXECUTE FUNCTION refuse();",
    )
    .execute(&mut admin)
    .await
    .unwrap();

    let (logs, _guard) = crate::logs::capture();
    let refused = app.post_webhook(capture("01-")).await;
    assert_eq!(refused.status(), 503);
    let text = refused.text().await.unwrap();
    assert!(!text.contains("trigger-secret-words"), "{text}");
    assert!(!text.contains("deliveries"), "{text}");
    let error: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        error["detail"],
        "journal unavailable: nothing was recorded; try again later"
    );
    let logged = String::from_utf8(logs.bytes()).unwrap();
    assert!(
        logged.contains("trigger-secret-words"),
        "the cause is logged: {logged}"
    );

    sqlx::raw_sql("DROP TRIGGER refuse ON deliveries")
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    assert_eq!(app.post_webhook(capture("01-")).await.status(), 200);
}

#[tokio::test]
async fn the_journal_survives_a_restart_and_still_dedupes() {
    let app = spawn_app().await;
    assert_eq!(app.post_webhook(capture("05-")).await.status(), 200);
    let dir = app.stop().await;

    let app = spawn_app_with(Options {
        dir: Some(dir),
        ..Options::default()
    })
    .await;
    assert_eq!(app.journal_rows().await.len(), 3);
    let again: serde_json::Value = app.post_webhook(capture("05-")).await.json().await.unwrap();
    assert_eq!(again["status"], "duplicate", "{again}");
    assert_eq!(app.post_webhook(capture("07-")).await.status(), 200);
    assert_eq!(app.journal_rows().await.len(), 5);
}

#[tokio::test]
async fn concurrent_deliveries_are_all_journaled() {
    let app = std::sync::Arc::new(spawn_app().await);
    let mut tasks = Vec::new();
    for i in 0..64 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let fingerprint = format!("{i:016x}");
            let body = alert_body(
                &fingerprint,
                &[
                    ("environment", "production"),
                    ("api_user", "a@alphagov.co.uk"),
                    ("application", "Publishing API"),
                ],
            );
            app.post_webhook(body).await.status().as_u16()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    let rows = app.journal_rows().await;
    assert_eq!(rows.len(), 64);
    let distinct: std::collections::BTreeSet<_> = rows.iter().map(|r| &r.fingerprint).collect();
    assert_eq!(distinct.len(), 64);
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    assert_eq!(app.get_text("/healthz").await, (200, "ok\n".to_owned()));
    let (status, body) = app.get_text("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ready"));
}

/// The journal holds targets, audit trails and sealed tokens: its files are the owner's alone,
/// whatever the umask, and a journal left readable by others is narrowed when it is opened.
#[tokio::test]
async fn the_journals_files_are_the_owners_alone() {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let app = spawn_app().await;
    assert_eq!(app.post_webhook(capture("01-")).await.status(), 200);
    let db = crate::helpers::journal_path(app.dir.path());
    let files = |db: &std::path::Path| {
        ["", "-wal", "-shm"]
            .map(|suffix| std::path::PathBuf::from(format!("{}{suffix}", db.display())))
    };
    for file in files(&db) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    // Made world-readable behind its back (a restore, an older version): narrowed at the next open.
    let dir = app.stop().await;
    for file in files(&db) {
        if file.exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let again = spawn_app_with(Options {
        dir: Some(dir),
        ..Options::default()
    })
    .await;
    for file in files(&db) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    drop(again);
}
