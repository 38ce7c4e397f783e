//! Hostile requests: a client that sends its headers slowly (cut off after the header-read
//! timeout) or sends enormous ones, link ids
//! made to trip the parser, label values made to forge log lines. None of them blocks another
//! client, crashes a handler or reaches the logs unescaped.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{alert_body, spawn_app};
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
    world
        .app
        .post_webhook(alert_body(
            "f0f0f0f0f0f0f0f0\nFORGED fingerprint",
            &[
                ("alertname", "SignonApiUserTokenExpirySoon"),
                ("environment", "production"),
                ("api_user", "forge@alphagov.co.uk"),
                ("application", forged),
            ],
        ))
        .await;
    world.run_to_the_end().await;
    let text = String::from_utf8(logs.bytes()).unwrap();
    assert!(text.contains("phase changed"), "logs were captured");
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
