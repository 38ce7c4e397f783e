//! `POST /v1/alertmanager`: what is accepted, what is refused, and what reaches the journal.

use std::collections::BTreeSet;
use std::io::{Read, Write};

use crate::helpers::{alert_body, capture, captures, spawn_app};

/// `(fingerprint, status, startsAt)` of every alert in a body: the dedupe key, computed here
/// independently of the service.
fn alert_keys(body: &[u8]) -> Vec<(String, String, String)> {
    let payload: serde_json::Value = serde_json::from_slice(body).unwrap();
    payload["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["fingerprint"].as_str().unwrap().to_owned(),
                a["status"].as_str().unwrap().to_owned(),
                a["startsAt"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_capture_is_accepted_and_each_distinct_alert_journaled_once() {
    let app = spawn_app().await;
    let captures = captures();
    assert_eq!(captures.len(), 18, "all numbered captures are in fixtures/");
    let mut distinct = BTreeSet::new();
    for (name, body) in &captures {
        let response = app.post_webhook(body.clone()).await;
        assert_eq!(
            response.status(),
            200,
            "{name}: {}",
            response.text().await.unwrap()
        );
        distinct.extend(alert_keys(body));
    }
    let rows = app.journal_rows().await;
    assert_eq!(rows.len(), distinct.len());
    let journaled: BTreeSet<_> = rows
        .iter()
        .map(|r| (r.fingerprint.clone(), r.status.clone()))
        .collect();
    let expected: BTreeSet<_> = distinct
        .iter()
        .map(|(f, s, _)| (f.clone(), s.clone()))
        .collect();
    assert_eq!(journaled, expected);
}

#[tokio::test]
async fn ha_duplicate_pair_is_journaled_once_and_both_acknowledged() {
    let app = spawn_app().await;
    let first = app.post_webhook(capture("14-")).await;
    assert_eq!(first.status(), 200);
    let first: serde_json::Value = first.json().await.unwrap();
    assert_eq!(first["status"], "accepted");
    assert_eq!(first["new"], 1);

    // Replica B's copy differs only in externalURL.
    let second = app.post_webhook(capture("15-")).await;
    assert_eq!(second.status(), 200);
    let second: serde_json::Value = second.json().await.unwrap();
    assert_eq!(second["status"], "duplicate");
    assert_eq!(second["new"], 0);
    assert_eq!(second["alerts"][0]["journaled"], "duplicate");

    let rows = app.journal_rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].fingerprint, "30d9d6d0682dd42d");
}

#[tokio::test]
async fn a_repeat_notification_is_a_duplicate_but_a_resolve_is_new() {
    let app = spawn_app().await;
    assert_eq!(app.post_webhook(capture("01-")).await.status(), 200);
    let repeat: serde_json::Value = app.post_webhook(capture("03-")).await.json().await.unwrap();
    assert_eq!(repeat["status"], "duplicate");
    let resolved: serde_json::Value = app.post_webhook(capture("08-")).await.json().await.unwrap();
    assert_eq!(resolved["status"], "accepted");
    let statuses: Vec<_> = app
        .journal_rows()
        .await
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec!["firing", "resolved"]);
}

#[tokio::test]
async fn bad_payloads_are_400_naming_the_problem_and_store_nothing() {
    let app = spawn_app().await;
    let cases: &[(&str, &[u8], &str)] = &[
        (
            "not JSON",
            b"alerts: yes",
            "expected value at line 1 column 1",
        ),
        (
            "no alerts field",
            br#"{"status":"firing"}"#,
            "missing field `alerts`",
        ),
        ("empty alerts", br#"{"alerts":[]}"#, "`alerts` is empty"),
        (
            "truncated body",
            br#"{"alerts":[{"status":"firing""#,
            "EOF while parsing",
        ),
        (
            "unknown alert status",
            br#"{"alerts":[{"status":"pending","startsAt":"2026-11-24T10:04:07Z"}]}"#,
            "unknown variant `pending`",
        ),
        (
            "startsAt not a time",
            br#"{"alerts":[{"status":"firing","startsAt":"soon"}]}"#,
            "line 1 column",
        ),
    ];
    for (why, body, expected) in cases {
        let response = app.post_webhook(body.to_vec()).await;
        assert_eq!(response.status(), 400, "{why}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["error"], "bad_request", "{why}");
        let detail = error["detail"].as_str().unwrap();
        assert!(
            detail.contains(expected),
            "{why}: {detail:?} lacks {expected:?}"
        );
    }
    assert!(app.journal_rows().await.is_empty());
}

#[tokio::test]
async fn wrong_content_type_is_415_and_stores_nothing() {
    let app = spawn_app().await;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut request = app
            .client
            .post(app.url("/v1/alertmanager"))
            .bearer_auth(crate::helpers::TOKEN)
            .body(capture("01-"));
        if let Some(value) = content_type {
            request = request.header("content-type", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 415, "{content_type:?}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert!(
            error["detail"]
                .as_str()
                .unwrap()
                .contains("application/json")
        );
    }
    // Parameters are fine.
    let ok = app
        .client
        .post(app.url("/v1/alertmanager"))
        .bearer_auth(crate::helpers::TOKEN)
        .header("content-type", "application/json; charset=utf-8")
        .body(capture("01-"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(app.journal_rows().await.len(), 1);
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_413_and_stores_nothing() {
    let app = spawn_app().await;
    // A valid payload padded past the limit with a long annotation.
    let padding = "x".repeat(1024 * 1024);
    let body = alert_body(
        "00000000000000aa",
        &[("api_user", "a@alphagov.co.uk"), ("note", &padding)],
    );
    let response = app.post_webhook(body.clone()).await;
    assert_eq!(response.status(), 413);
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["detail"], "body is larger than 1048576 bytes");

    // The same without a Content-Length (chunked): the limit holds while reading.
    let addr = app.addr;
    // Blocking socket I/O off the test's runtime thread, which also runs the server.
    let status = tokio::task::spawn_blocking(move || post_chunked(addr, &body))
        .await
        .unwrap();
    assert_eq!(status, 413);
    assert!(app.journal_rows().await.is_empty());
}

/// A chunked POST by hand: reqwest always knows the length of an in-memory body.
fn post_chunked(addr: std::net::SocketAddr, body: &[u8]) -> u16 {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST /v1/alertmanager HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        crate::helpers::TOKEN
    );
    stream.write_all(head.as_bytes()).unwrap();
    for chunk in body.chunks(64 * 1024) {
        // The server may answer and close before we finish; that is the point.
        if stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .is_err()
            || stream.write_all(chunk).is_err()
            || stream.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn newer_alertmanager_fields_are_accepted() {
    let app = spawn_app().await;
    let mut payload: serde_json::Value = serde_json::from_slice(&capture("01-")).unwrap();
    payload["notification_reason"] = "first notification".into();
    payload["routeLabels"] = serde_json::json!({"team": "platform"});
    payload["somethingFromTheFuture"] = serde_json::json!({"nested": [1, 2]});
    let response = app
        .post_webhook(serde_json::to_vec(&payload).unwrap())
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn an_alert_without_application_is_journaled_as_unroutable_with_200() {
    let app = spawn_app().await;
    let body = alert_body(
        "00000000000000bb",
        &[
            ("environment", "production"),
            ("api_user", "a@alphagov.co.uk"),
        ],
    );
    let response = app.post_webhook(body).await;
    assert_eq!(response.status(), 200);
    let rows = app.journal_rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].action, "unroutable");
    assert_eq!(
        rows[0].reason.as_deref(),
        Some("missing or empty label: application")
    );
    assert_eq!(rows[0].api_user.as_deref(), Some("a@alphagov.co.uk"));
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(
        metrics.contains("token_rotator_decisions_total{action=\"unroutable\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn metrics_count_requests_alerts_decisions_and_truncation() {
    let app = spawn_app().await;
    app.post_webhook(capture("05-")).await; // 3 firing: integration, production, staging
    app.post_webhook(capture("05-")).await; // the same again
    app.post_webhook(capture("09-")).await; // 2 firing, truncatedAlerts 1
    app.post_webhook(b"{}".to_vec()).await;
    let (status, metrics) = app.get_text("/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "token_rotator_webhook_requests_total{outcome=\"accepted\"} 2",
        "token_rotator_webhook_requests_total{outcome=\"duplicate\"} 1",
        "token_rotator_webhook_requests_total{outcome=\"bad_request\"} 1",
        "token_rotator_webhook_requests_total{outcome=\"unauthorized\"} 0",
        "token_rotator_alerts_received_total{status=\"firing\"} 5",
        "token_rotator_alerts_received_total{status=\"resolved\"} 0",
        "token_rotator_decisions_total{action=\"rotate\"} 4",
        "token_rotator_decisions_total{action=\"silence\"} 1",
        "token_rotator_alerts_truncated_total 1",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
}
