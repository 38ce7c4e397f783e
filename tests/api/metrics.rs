//! `/metrics` after real work: names, types and values, and its own listener.

use std::time::Duration;

use token_rotator::engine::Phase;

use crate::helpers::{Options, capture, fixture, spawn_app_with};
use crate::world::spawn_world;

fn has(text: &str, line: &str) -> bool {
    text.lines()
        .any(|l| l == line || l.starts_with(&format!("{line} ")))
}

#[tokio::test]
async fn a_scrape_after_rotations_has_every_metric_with_its_type() {
    let world = spawn_world().await;
    world.seed_every_environment("email-alert-api@alphagov.co.uk", "Email Alert API");
    world.app.post_webhook(capture("05-")).await;
    world
        .app
        .post_webhook(fixture("synthetic/special-cases.json"))
        .await;

    // Mid-way: both rotations wait out their grace period.
    world.run_until(Phase::Grace).await;
    world.engine.run_until_idle().await.unwrap();
    let (_, during) = world.app.get_text("/metrics").await;
    assert!(
        has(&during, "token_rotator_rotations{phase=\"grace\"} 2"),
        "{during}"
    );
    assert!(
        has(&during, "token_rotator_rotations{phase=\"planned\"} 0"),
        "{during}"
    );
    assert!(
        during.contains("token_rotator_rotation_phase_age_seconds{phase=\"grace\"}"),
        "{during}"
    );
    assert!(
        during.contains("# TYPE token_rotator_rotation_phase_age_seconds gauge"),
        "{during}"
    );

    world.run_to_the_end().await;
    let (status, text) = world.app.get_text("/metrics").await;
    assert_eq!(status, 200);

    for (name, kind) in [
        ("token_rotator_build", "info"),
        ("token_rotator_upstream_requests", "counter"),
        (
            "token_rotator_upstream_request_duration_seconds",
            "histogram",
        ),
        ("token_rotator_webhook_requests", "counter"),
        (
            "token_rotator_webhook_request_duration_seconds",
            "histogram",
        ),
        ("token_rotator_alerts_received", "counter"),
        ("token_rotator_decisions", "counter"),
        ("token_rotator_rotations_ended", "counter"),
        ("token_rotator_rotation_phase_duration_seconds", "histogram"),
        ("token_rotator_retries", "counter"),
        ("token_rotator_journal_commit_duration_seconds", "histogram"),
        ("token_rotator_rotations", "gauge"),
        ("token_rotator_slack_queue_depth", "gauge"),
        ("token_rotator_token_expiry_timestamp_seconds", "gauge"),
        ("token_rotator_alert_first_seen_timestamp_seconds", "gauge"),
        ("token_rotator_last_success_timestamp_seconds", "gauge"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}")),
            "no {kind} {name} in\n{text}"
        );
    }
    for line in [
        "token_rotator_rotations_ended_total{phase=\"done\"} 2",
        "token_rotator_rotations_ended_total{phase=\"silenced\"} 1",
        "token_rotator_rotations_ended_total{phase=\"manual\"} 2",
        "token_rotator_rotations_ended_total{phase=\"unroutable\"} 1",
        "token_rotator_rotations_ended_total{phase=\"failed\"} 0",
        "token_rotator_slack_queue_depth 0",
        // Per rotation: Signon list, mint, /user.json, revoke; Kubernetes: list Deployments and
        // read the Secret (baseline), read, apply, read back, then read signon-app-<app> and the
        // Secret to verify. Seven outcomes to Slack; a look-up and a create in Alertmanager.
        "token_rotator_upstream_requests_total{upstream=\"signon\",outcome=\"ok\"} 8",
        "token_rotator_upstream_requests_total{upstream=\"kubernetes\",outcome=\"ok\"} 14",
        "token_rotator_upstream_requests_total{upstream=\"slack\",outcome=\"ok\"} 7",
        "token_rotator_upstream_requests_total{upstream=\"alertmanager\",outcome=\"ok\"} 2",
        "token_rotator_rotation_phase_duration_seconds_count{phase=\"grace\"} 2",
    ] {
        assert!(has(&text, line), "missing {line:?} in\n{text}");
    }
    let expiry = "token_rotator_token_expiry_timestamp_seconds{environment=\"production\",api_user=\"email-alert-api@alphagov.co.uk\",application=\"Email Alert API\"}";
    assert!(text.contains(expiry), "{text}");
    assert!(
        has(&text, "token_rotator_rotations{phase=\"grace\"} 0"),
        "none under way any more:\n{text}"
    );
    assert!(
        !text.contains("token_rotator_rotation_phase_age_seconds{"),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_can_have_a_listener_of_their_own() {
    let app = spawn_app_with(Options {
        configure: Some(Box::new(|config| {
            config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        })),
        ..Options::default()
    })
    .await;
    let (status, _) = app.get_text("/metrics").await;
    assert_eq!(status, 404, "not on the webhook's listener");
    let addr = app.metrics_addr.expect("a metrics listener");
    let text = app
        .client
        .get(format!("http://{addr}/metrics"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("token_rotator_webhook_requests_total"),
        "{text}"
    );
}

/// Alerts naming `count` targets nobody has (`u<n>@example.com`) in `environment`, in one delivery.
fn invented_targets(environment: &str, from: usize, count: usize) -> Vec<u8> {
    let mut body: serde_json::Value =
        serde_json::from_slice(&crate::helpers::alert_body("0", &[])).unwrap();
    let template = body["alerts"][0].clone();
    let alerts: Vec<serde_json::Value> = (from..from + count)
        .map(|n| {
            let mut alert = template.clone();
            alert["fingerprint"] = format!("{n:016x}").into();
            alert["labels"] = serde_json::json!({
                "alertname": "SignonApiUserTokenExpirySoon",
                "environment": environment,
                "api_user": format!("u{n}@example.com"),
                "application": "Invented",
            });
            alert
        })
        .collect();
    body["alerts"] = alerts.into();
    serde_json::to_vec(&body).unwrap()
}

/// Anyone who can reach Alertmanager can have alerts delivered for targets they invent: each
/// once made a series of its own (1 200 from three deliveries). Where the issuer listed its
/// tokens, only a target it listed gets one; elsewhere at most a fixed number; a gauge says how
/// many were left out.
#[tokio::test]
async fn invented_targets_add_no_series_of_their_own() {
    use token_rotator::store::inventory::{self, InventoryRow};
    let app = crate::helpers::spawn_app().await;
    let journal = token_rotator::store::Journal::open(
        &crate::helpers::database_url(app.dir.path()),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let real = InventoryRow {
        environment: String::new(),
        api_user: "publisher@alphagov.co.uk".into(),
        api_user_name: None,
        application: "Publishing API".into(),
        application_uid: None,
        token_id: "1".into(),
        created_at_ms: None,
        expires_at_ms: Some(jiff::Timestamp::now().as_millisecond() + 86_400_000),
        expired: false,
        newest: true,
        last8: "abcdefgh".into(),
        suspended: false,
        retired: false,
        renewed_by: None,
        taken_at_ms: 0,
    };
    inventory::replace(
        journal.pool(),
        "production",
        jiff::Timestamp::now(),
        &[real],
    )
    .await
    .unwrap();
    journal.close().await;
    for delivery in 0..3 {
        let body = invented_targets("production", delivery * 400, 400);
        assert_eq!(app.post_webhook(body).await.status(), 200);
    }
    // The real one, spelled as the alert spells it (Signon's metric parameterizes the name).
    let listed = crate::helpers::alert_body(
        "00000000000000ff",
        &[
            ("environment", "production"),
            ("api_user", "Publisher@AlphaGov.co.uk"),
            ("application", "publishing-api"),
        ],
    );
    assert_eq!(app.post_webhook(listed).await.status(), 200);
    // No inventory of integration was ever taken: a bounded number of series.
    let body = invented_targets("integration", 5000, 150);
    assert_eq!(app.post_webhook(body).await.status(), 200);

    let (_, text) = app.get_text("/metrics").await;
    let series = |environment: &str| {
        text.lines()
            .filter(|l| l.starts_with("token_rotator_alert_first_seen_timestamp_seconds{"))
            .filter(|l| l.contains(&format!("environment=\"{environment}\"")))
            .collect::<Vec<_>>()
    };
    let production = series("production");
    assert_eq!(production.len(), 1, "{production:#?}");
    assert!(
        production[0].contains("publisher@alphagov.co.uk"),
        "{production:?}"
    );
    assert_eq!(
        series("integration").len(),
        token_rotator::store::snapshot::MAX_UNLISTED_TARGETS
    );
    assert!(
        has(&text, "token_rotator_alert_targets_without_series 1250"),
        "1200 invented in production, 50 over the bound in integration:\n{}",
        text.lines()
            .filter(|l| l.contains("without_series"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
