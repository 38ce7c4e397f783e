//! Hostile requests: a client that sends its headers slowly (cut off after the header-read
//! timeout) or sends enormous ones, link ids
//! made to trip the parser, label values made to forge log lines. None of them blocks another
//! client, crashes a handler or reaches the logs unescaped.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use serde_json::Value;

use crate::helpers::{Options, alert_body, spawn_app, spawn_app_with};
use crate::world::spawn_world;

#[tokio::test]
async fn a_slow_client_does_not_hold_up_the_others() {
    let app = spawn_app().await;
    let mut slow = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"POST /v1/alertmanager HTTP/1.1\r\nHost: x\r\nContent-")
        .await
        .unwrap();
    // While it dawdles, everyone else is answered.
    for _ in 0..5 {
        let response = tokio::time::timeout(
            Duration::from_secs(5),
            app.post_webhook(crate::helpers::capture("01-")),
        )
        .await
        .expect("answered while a slow client holds a connection");
        assert_eq!(response.status(), 200);
    }
    // And it is cut off once the head has taken too long.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(
        token_rotator::config::HttpSettings::DEFAULT_HEADER_READ_TIMEOUT + Duration::from_secs(5),
        slow.read_to_end(&mut rest),
    )
    .await;
    assert!(closed.is_ok(), "the slow connection was not closed");
}

#[tokio::test]
async fn an_enormous_header_is_refused_and_the_service_carries_on() {
    let app = spawn_app().await;
    let huge = "x".repeat(1024 * 1024);
    let refused = app
        .client
        .post(app.url("/v1/alertmanager"))
        .header("x-padding", huge)
        .body("{}")
        .send()
        .await;
    match refused {
        Ok(response) => assert!(response.status().is_client_error(), "{}", response.status()),
        // Or the connection is closed on it: refused either way.
        Err(e) => assert!(e.is_request() || e.is_connect() || e.is_body(), "{e}"),
    }
    let (status, _) = app.get_text("/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn link_ids_made_to_trip_the_handler_get_a_plain_answer() {
    let world = spawn_world().await;
    for id in [
        "éééééééééé",
        "%00%00",
        "..%2f..%2fetc%2fpasswd",
        &"9".repeat(4096),
    ] {
        let (status, _) = world.app.get_text(&format!("/v1/handover/{id}")).await;
        assert!(
            status == 404 || status == 400 || status == 414,
            "{id}: {status}"
        );
    }
    let (status, _) = world.app.get_text("/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn label_values_cannot_forge_log_lines_or_colour_the_terminal() {
    let (logs, _guard) = crate::logs::capture();
    let world = spawn_world().await;
    let forged = "ok\n2026-11-26T00:00:00Z ERROR FORGED: token leaked\u{1b}[31m";
    world.seed("forge@alphagov.co.uk", forged);
    let refused = world
        .app
        .post_webhook(alert_body(
            "f0f0f0f0f0f0f0f0",
            &[
                ("alertname", "SignonApiUserTokenExpirySoon"),
                ("environment", "production"),
                ("api_user", "forge@alphagov.co.uk"),
                ("application", forged),
            ],
        ))
        .await;
    // A label may hold no control character: the delivery is refused before it is journaled.
    assert_eq!(refused.status(), 400);
    world.run_to_the_end().await;
    assert!(world.rotations().await.is_empty(), "nothing was started");
    let text = String::from_utf8(logs.bytes()).unwrap();
    assert!(text.contains("webhook rejected"), "logs were captured");
    let escaped: Vec<&str> = text.lines().filter(|l| l.contains('\u{1b}')).collect();
    assert!(
        escaped.is_empty(),
        "an escape sequence reached the logs: {escaped:?}"
    );
    for line in text.lines() {
        assert!(
            !line.starts_with("2026-11-26T00:00:00Z ERROR FORGED"),
            "forged: {line}"
        );
        assert!(!line.starts_with("FORGED"), "forged: {line}");
    }
}

/// A delivery whose alert is changed by `edit`.
fn edited(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&alert_body(
        "0123456789abcdef",
        &[
            ("alertname", "SignonApiUserTokenExpirySoon"),
            ("environment", "production"),
            ("api_user", "a@alphagov.co.uk"),
            ("application", "Publishing API"),
        ],
    ))
    .unwrap();
    edit(&mut body);
    serde_json::to_vec(&body).unwrap()
}

/// Every field of a delivery is bounded, a fingerprint has Alertmanager's form, and a label
/// holds no control character: each is a 400 naming the field and the limit, short whatever
/// was sent, and nothing is journaled (or logged whole, or started).
#[tokio::test]
async fn every_field_is_bounded_and_a_refusal_names_it_without_echoing_it() {
    let app = spawn_app().await;
    let many = |n: usize| -> Value {
        (0..n)
            .map(|i| (format!("l{i:05}"), Value::from("v")))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            edited(|b| b["groupKey"] = "k".repeat(20_000).into()),
            "groupKey is 20000 bytes long, over the limit of 16384 bytes",
        ),
        (
            edited(|b| b["receiver"] = "r".repeat(300).into()),
            "receiver is 300 bytes long, over the limit of 256 bytes",
        ),
        (
            edited(|b| b["externalURL"] = "u".repeat(20_000).into()),
            "externalURL is 20000 bytes long, over the limit of 16384 bytes",
        ),
        (
            edited(|b| b["alerts"][0]["generatorURL"] = "g".repeat(20_000).into()),
            "generatorURL of alert 0 is 20000 bytes long, over the limit of 16384 bytes",
        ),
        (
            edited(|b| b["alerts"][0]["fingerprint"] = "a".repeat(900_000).into()),
            "fingerprint of alert 0 is 900000 bytes, not 16 lowercase hex digits as Alertmanager sends",
        ),
        (
            edited(|b| b["alerts"][0]["fingerprint"] = "0123456789ABCDEF".into()),
            "fingerprint of alert 0 is 16 bytes, not 16 lowercase hex digits",
        ),
        (
            edited(|b| b["alerts"][0]["labels"]["application"] = "x".repeat(2000).into()),
            "label \"application\" of alert 0 is 2000 bytes long, over the limit of 1024 bytes",
        ),
        (
            edited(|b| b["alerts"][0]["labels"]["n".repeat(300)] = "x".into()),
            "\"… of alert 0 is 300 bytes long, over the limit of 256 bytes",
        ),
        (
            edited(|b| b["alerts"][0]["labels"] = many(60_000)),
            "labels of alert 0: 60000, over the limit of 100",
        ),
        (
            edited(|b| b["alerts"][0]["annotations"] = many(51)),
            "annotations of alert 0: 51, over the limit of 50",
        ),
        (
            edited(|b| {
                b["alerts"][0]["annotations"]["description"] = "d".repeat(20_000).into();
            }),
            "annotation \"description\" of alert 0 is 20000 bytes long, over the limit of 16384 bytes",
        ),
        (
            edited(|b| b["alerts"][0]["labels"]["application"] = "Publishing\u{0}API".into()),
            "label \"application\" of alert 0 holds a control character (U+0000 at byte 10)",
        ),
        (
            edited(|b| b["alerts"][0]["labels"]["api_user"] = "a@b\nFORGED line".into()),
            "label \"api_user\" of alert 0 holds a control character (U+000A at byte 3)",
        ),
        (
            edited(|b| b["alerts"][0]["labels"]["team\u{1b}[31m"] = "x".into()),
            "the name of label \"team\\u{1b}[31m\" of alert 0 holds a control character (U+001B",
        ),
        (
            edited(|b| b["groupKey"] = "{}:{a=\"\u{0}\"}".into()),
            "groupKey holds a control character (U+0000 at byte 7)",
        ),
    ];
    for (body, expected) in cases {
        let response = app.post_webhook(body).await;
        assert_eq!(response.status(), 400, "{expected}");
        let text = response.text().await.unwrap();
        assert!(text.len() < 1024, "{} bytes for {expected}", text.len());
        let error: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(error["error"], "bad_request");
        let detail = error["detail"].as_str().unwrap();
        assert!(detail.contains(expected), "{detail:?} lacks {expected:?}");
    }
    assert!(app.journal_rows().await.is_empty(), "nothing journaled");
    // Multi-line annotations are what rules write; they are taken.
    let fine = edited(|b| b["alerts"][0]["annotations"]["description"] = "one\ntwo\tthree".into());
    assert_eq!(app.post_webhook(fine).await.status(), 200);
}

/// On PostgreSQL a NUL in a label was a 503 for ever (text cannot hold NUL, so every retry
/// failed the same way) echoing the database's error; now it never reaches the database.
#[tokio::test]
async fn on_postgres_a_nul_in_a_label_is_refused_not_retried_for_ever() {
    let database = crate::postgres::database().await;
    let url = database.url.clone();
    let app = spawn_app_with(Options {
        configure: Some(Box::new(move |config| config.database_url = url)),
        ..Options::default()
    })
    .await;
    let nul = edited(|b| b["alerts"][0]["labels"]["application"] = "Publishing\u{0}API".into());
    let response = app.post_webhook(nul).await;
    assert_eq!(response.status(), 400);
    let text = response.text().await.unwrap();
    assert!(text.contains("U+0000"), "{text}");
    assert!(!text.contains("0x00"), "the database's words: {text}");
}

/// Reconcile reads alerts back from Alertmanager's API, which holds whatever anyone posted to
/// it: an alert over the webhook's limits is left out, the others are journaled.
#[tokio::test]
async fn reconcile_leaves_out_an_alert_over_the_limits_and_journals_the_rest() {
    use token_rotator::adapters::alertmanager::AlertmanagerClient;
    use token_rotator::config::Config;
    use token_rotator::reconcile::Reconciler;
    use token_rotator::sim::alertmanager::AlertmanagerSim;
    use token_rotator::store::Journal;

    token_rotator::install_crypto_provider();
    let sim = AlertmanagerSim::new();
    let running = sim.start().await.unwrap();
    let alert = |fingerprint: &str, application: &str| {
        serde_json::json!({
            "labels": {"alertname": "SignonApiUserTokenExpirySoon", "environment": "production",
                       "api_user": "a@alphagov.co.uk", "application": application},
            "annotations": {}, "startsAt": "2026-11-24T10:04:07.964Z",
            "fingerprint": fingerprint, "generatorURL": "",
        })
    };
    sim.set_alerts(vec![
        alert("00000000000000a1", "Publishing API"),
        alert("00000000000000a2", "Publishing\u{0}API"),
        alert(&"f".repeat(900_000), "Whitehall"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let url = crate::helpers::database_url(dir.path());
    let journal = std::sync::Arc::new(
        Journal::open(&url, std::time::Duration::from_secs(5))
            .await
            .unwrap(),
    );
    let reconciler = Reconciler {
        client: AlertmanagerClient::new(vec![running.url()], std::time::Duration::from_secs(5)),
        journal: journal.clone(),
        routes: (Config::builtin()).routes(),
        wake: None,
    };
    assert_eq!(reconciler.once().await, Ok(1));
    let rows = journal.alerts().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0].fingerprint.starts_with("00000000000000a1"),
        "{rows:?}"
    );
}
