//! Alerts are untrusted input: anyone who can POST to Alertmanager can have an alert delivered
//! here with the webhook's credential. Each test is one attack and what stops it.

use crate::helpers::{alert_body, fp};

/// A one-alert delivery about `api_user` and `application` in `environment`; `id` becomes its
/// fingerprint ([`fp`]).
fn about(id: &str, environment: &str, api_user: &str, application: &str) -> Vec<u8> {
    alert_body(
        &fp(id),
        &[
            ("environment", environment),
            ("api_user", api_user),
            ("application", application),
        ],
    )
}
use crate::rotation::{APP, USER};
use crate::shadow::mutations;
use crate::world::{Sims, WorldOptions};

#[tokio::test]
async fn an_environment_this_instance_does_not_serve_is_unroutable_never_active() {
    let world = Sims::start().await.world(None).await;
    world.seed(USER, APP);
    // "prod" is not "production": before, an unlisted environment was active by default.
    for (id, environment) in [("f1", "prod"), ("f2", "Production"), ("f3", "dev")] {
        let body = alert_body(
            &fp(id),
            &[
                ("alertname", "SignonApiUserTokenExpirySoon"),
                ("environment", environment),
                ("api_user", USER),
                ("application", APP),
            ],
        );
        assert_eq!(world.app.post_webhook(body).await.status(), 200);
    }
    world.run_to_the_end().await;
    let rows = world.rotations().await;
    assert_eq!(rows.len(), 3, "{rows:#?}");
    for row in &rows {
        assert_eq!(row.phase, "unroutable", "{row:#?}");
        let outcome = row.outcome.clone().unwrap_or_default();
        assert!(
            outcome.contains(
                "is not served by this instance (served: integration, production, staging)"
            ),
            "{outcome}"
        );
    }
    assert_eq!(mutations(&world), 0, "nothing minted, written or revoked");
}

#[tokio::test]
async fn a_rule_cannot_make_a_shadow_environment_active() {
    let config = r#"
[[rules]]
name = "claims-to-be-active"
action = "rotate"
mode = "active"
"#;
    let options = WorldOptions {
        shadow: vec!["production"],
        config_toml: Some(format!("[environments.production]\n{config}")),
        ..WorldOptions::default()
    };
    let world = Sims::start().await.world_with(None, options).await;
    world.seed(USER, APP);
    let body = about("f1", "production", USER, APP);
    world.app.post_webhook(body).await;
    world.run_to_the_end().await;
    let rows = world.rotations().await;
    assert_eq!(rows[0].mode, "shadow", "{rows:#?}");
    assert_eq!(rows[0].phase, "planned_only");
    assert_eq!(mutations(&world), 0);
}

#[tokio::test]
async fn an_alert_for_a_pair_without_a_token_mints_nothing_in_either_mode() {
    for shadow in [false, true] {
        let options = WorldOptions {
            shadow: if shadow { vec!["production"] } else { vec![] },
            ..WorldOptions::default()
        };
        let world = Sims::start().await.world_with(None, options).await;
        world.signon.stop_provisioning();
        world.signon.add_user(USER, "Short URL Manager");
        world.signon.add_application(APP);
        let body = about("f1", "production", USER, APP);
        world.app.post_webhook(body).await;
        world.run_to_the_end().await;
        let row = &world.rotations().await[0];
        let outcome = row.outcome.clone().unwrap_or_default();
        assert!(outcome.contains("nothing to rotate"), "{outcome}");
        let expected = if shadow { "planned_only" } else { "failed" };
        assert_eq!(row.phase, expected, "{row:#?}");
        if shadow {
            assert!(outcome.contains("(would fail)"), "{outcome}");
        }
        assert_eq!(world.signon.minted().len(), 0);
        assert_eq!(mutations(&world), 0);
    }
}

#[tokio::test]
async fn every_spelling_of_a_special_case_meets_its_rule() {
    let world = Sims::start().await.world(None).await;
    let cases = [
        // The SSO-push user: rule `sso-push-user-rotates-itself` (ignore).
        (
            "s1",
            "Signon+Permissions@AlphaGov.co.uk",
            "Content Store",
            "ignore",
        ),
        (
            "s2",
            " signon+permissions@alphagov.co.uk ",
            "Content Store",
            "ignore",
        ),
        // Trade Tariff: rule `trade-tariff-has-its-own-procedure` (manual).
        (
            "t1",
            "trade-tariff@digital.trade.gov.uk",
            "Trade Tariff Admin ",
            "manual",
        ),
        (
            "t2",
            "trade-tariff@digital.trade.gov.uk",
            "trade  tariff admin",
            "manual",
        ),
        (
            "t3",
            "trade-tariff@digital.trade.gov.uk",
            "TRADE-TARIFF-BACKEND",
            "manual",
        ),
    ];
    for (fingerprint, user, app, _) in cases {
        let body = about(fingerprint, "production", user, app);
        assert_eq!(world.app.post_webhook(body).await.status(), 200);
    }
    let rows = world.app.journal_rows().await;
    for (fingerprint, user, app, action) in cases {
        let row = rows
            .iter()
            .find(|r| r.fingerprint.starts_with(&format!("{}:", fp(fingerprint))))
            .unwrap();
        assert_eq!(row.action, action, "{user:?} / {app:?}: {row:#?}");
    }
    assert_eq!(mutations(&world), 0);
}

#[tokio::test]
async fn two_spellings_of_one_application_are_one_rotation() {
    let world = Sims::start().await.world(None).await;
    world.seed(USER, APP);
    for (fingerprint, user, app) in [
        ("p1", USER, "Publishing API"),
        ("p2", "Short-URL-Manager@alphagov.co.uk", "publishing-api"),
    ] {
        let body = about(fingerprint, "production", user, app);
        world.app.post_webhook(body).await;
    }
    world.run_to_the_end().await;
    let rows = world.rotations().await;
    assert_eq!(
        rows.len(),
        1,
        "single flight by the target's identity: {rows:#?}"
    );
    assert_eq!(rows[0].phase, "done");
    assert_eq!(world.signon.minted().len(), 1, "one mint");
}

#[tokio::test]
async fn a_forged_alert_reusing_a_real_fingerprint_does_not_hide_the_real_one() {
    let world = Sims::start().await.world(None).await;
    world.seed(USER, APP);
    let (logs, _guard) = crate::logs::capture();
    let real = crate::helpers::capture("01-");
    let payload: serde_json::Value = serde_json::from_slice(&real).unwrap();
    let alert = &payload["alerts"][0];
    let fingerprint = alert["fingerprint"].as_str().unwrap();
    // The same fingerprint and startsAt, other labels: sent first, it used to make the real
    // alert a duplicate.
    let mut forged = payload.clone();
    forged["alerts"][0]["labels"]["application"] = "Something Else".into();
    let answer = world
        .app
        .post_webhook(serde_json::to_vec(&forged).unwrap())
        .await;
    assert_eq!(answer.status(), 200);
    let answer: serde_json::Value = world.app.post_webhook(real).await.json().await.unwrap();
    assert_eq!(answer["new"], 1, "{answer}");
    assert_eq!(answer["alerts"][0]["journaled"], "new", "{answer}");
    let rows = world.app.journal_rows().await;
    let real_row = rows.iter().find(|r| r.fingerprint == fingerprint).unwrap();
    assert_eq!(real_row.application.as_deref(), Some(APP));
    let forged_row = rows
        .iter()
        .find(|r| r.fingerprint.starts_with(&format!("{fingerprint}:")))
        .unwrap();
    assert_eq!(forged_row.application.as_deref(), Some("Something Else"));
    // Said once per delivery, in the line that journals it: a warning for the forged one, the
    // usual line for the real one.
    let logs = String::from_utf8(logs.bytes()).unwrap();
    let journaled: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("webhook journaled"))
        .collect();
    assert_eq!(journaled.len(), 2, "{logs}");
    assert!(
        journaled[0].contains("WARN") && journaled[0].contains("claimed_fingerprints=1"),
        "{logs}"
    );
    assert!(
        journaled[1].contains("INFO") && !journaled[1].contains("claimed"),
        "{logs}"
    );
    assert_eq!(
        logs.matches("not the hash of their labels").count(),
        1,
        "one line for the forged delivery: {logs}"
    );
}

#[tokio::test]
async fn oversized_deliveries_are_refused_naming_the_limit_and_leave_nothing() {
    let world = Sims::start().await.world(None).await;
    let one = |fingerprint: String, application: String| {
        serde_json::json!({
            "status": "firing",
            "labels": {"environment": "production", "api_user": USER, "application": application},
            "annotations": {},
            "startsAt": "2026-11-24T10:04:07.964Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": fingerprint,
        })
    };
    let body = |alerts: Vec<serde_json::Value>| {
        serde_json::to_vec(&serde_json::json!({
            "receiver": "signon-token-rotation", "status": "firing", "alerts": alerts,
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://vm:19093", "version": "4", "groupKey": "{}:{}",
            "truncatedAlerts": 0
        }))
        .unwrap()
    };
    let many: Vec<_> = (0..2000)
        .map(|i| one(format!("{i:016x}"), format!("App {i}")))
        .collect();
    let answer = world.app.post_webhook(body(many)).await;
    assert_eq!(answer.status(), 400);
    let text = answer.text().await.unwrap();
    assert!(
        text.contains("2000 alerts, over this instance's limit of 1000 (max_alerts_per_delivery"),
        "{text}"
    );
    let long = one("00000000000000aa".into(), "x".repeat(10 * 1024));
    let answer = world.app.post_webhook(body(vec![long])).await;
    assert_eq!(answer.status(), 400);
    let answer: serde_json::Value = answer.json().await.unwrap();
    let text = answer["detail"].as_str().unwrap();
    assert!(
        text.contains(
            "label \"application\" of alert 0 is 10240 bytes long, over the limit of 1024"
        ),
        "{text}"
    );
    assert!(
        world.app.journal_rows().await.is_empty(),
        "nothing journaled"
    );
}

/// The public edge serves only what must be reached from outside; the main listener keeps the
/// rest, and the status page takes its own credential, not the webhook's.
#[tokio::test]
async fn the_public_edge_serves_only_slack_and_handovers() {
    use crate::helpers::{Options, TOKEN, spawn_app_with};
    use token_rotator::intake::auth::WebhookAuth;
    const STATUS: &str = "status-page-reader";
    let app = spawn_app_with(Options {
        status_auth: Some(WebhookAuth::bearer(&STATUS.into())),
        configure: Some(Box::new(|config| {
            config.public_listen = Some("127.0.0.1:0".parse().unwrap());
        })),
        ..Options::default()
    })
    .await;
    let public = app.public_addr.expect("a public listener");
    let client = reqwest::Client::new();
    let status_of = |response: reqwest::Response| response.status().as_u16();
    let get = |base: std::net::SocketAddr, path: &str, token: &str| {
        client
            .get(format!("http://{base}{path}"))
            .bearer_auth(token)
            .send()
    };
    // Public: the handover link and Slack's interactions reach their handlers (which say
    // these are off here: no Slack, no engine); nothing else exists there.
    let body = |response: reqwest::Response| async move { response.text().await.unwrap() };
    let handover = get(public, "/v1/handover/nope", "").await.unwrap();
    assert!(body(handover).await.contains("no handovers here"));
    let slack = |base: std::net::SocketAddr| {
        client
            .post(format!("http://{base}/v1/slack/interactions"))
            .body("payload=x")
            .send()
    };
    assert!(
        body(slack(public).await.unwrap())
            .await
            .contains("not_configured")
    );
    for path in ["/", "/v1/rotations", "/metrics"] {
        assert_eq!(
            status_of(get(public, path, TOKEN).await.unwrap()),
            404,
            "{path}"
        );
    }
    // The load balancer's health check: the status code, and nothing the main /readyz tells.
    let ready = get(public, "/readyz", "").await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(body(ready).await, "ready\n");
    let (_, inside) = app.get_text("/readyz").await;
    assert!(
        inside.contains("\"role\""),
        "the main /readyz has details: {inside}"
    );
    let webhook = client
        .post(format!("http://{public}/v1/alertmanager"))
        .bearer_auth(TOKEN)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(webhook.status(), 404, "no webhook on the public edge");
    // Main: no Slack or handover routes; the status page wants its own credential.
    let on_main = slack(app.addr).await.unwrap();
    assert_eq!(on_main.status(), 404);
    assert_eq!(
        body(on_main).await,
        "",
        "no such route on the main listener"
    );
    let handover = get(app.addr, "/v1/handover/nope", "").await.unwrap();
    assert_eq!(body(handover).await, "");
    assert_eq!(
        status_of(get(app.addr, "/v1/rotations", TOKEN).await.unwrap()),
        401
    );
    let page = get(app.addr, "/v1/rotations", STATUS).await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.headers().get("x-content-type-options").unwrap(),
        "nosniff"
    );
    let html = get(app.addr, "/", STATUS).await.unwrap();
    assert_eq!(
        html.headers().get("x-content-type-options").unwrap(),
        "nosniff"
    );
}

/// The journal does not grow without bound: what finished before `retention` is exported to
/// the log, then pruned; a target's newest `done` rotation stays (cooldown reads it).
#[tokio::test]
async fn finished_rotations_are_exported_then_pruned_after_the_retention() {
    let (logs, _guard) = crate::logs::capture();
    let world = Sims::start().await.world(None).await;
    world.seed(USER, APP);
    let alert =
        |fingerprint: &str, application: &str| about(fingerprint, "production", USER, application);
    world.app.post_webhook(alert("a1", APP)).await;
    world.run_to_the_end().await;
    // Past the cooldown, a second rotation of the same target; and made-up targets.
    world
        .clock
        .advance(std::time::Duration::from_secs(2 * 86400));
    world.app.post_webhook(alert("a2", APP)).await;
    for i in 0..3 {
        world
            .app
            .post_webhook(alert(&format!("x{i}"), &format!("Made Up {i}")))
            .await;
    }
    world.run_to_the_end().await;
    let before = world.rotations().await;
    assert_eq!(before.len(), 5, "{before:#?}");
    let first = before
        .iter()
        .find(|r| r.phase == "done")
        .unwrap()
        .id
        .clone();

    // Nothing is old enough yet.
    let pruned = world.engine.prune().await.unwrap();
    assert_eq!(pruned.rotations, 0);

    world
        .clock
        .advance(std::time::Duration::from_secs(401 * 86400));
    let pruned = world.engine.prune().await.unwrap();
    let after = world.rotations().await;
    assert_eq!(pruned.rotations, 4, "{after:#?}");
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].phase, "done");
    assert_ne!(
        after[0].id, first,
        "the newest done rotation is the one kept"
    );
    assert!(
        world.audit(&first).await.is_empty(),
        "its audit went with it"
    );
    assert!(pruned.alerts >= 4, "{pruned:?}");
    let text = String::from_utf8(logs.bytes()).unwrap();
    let exported = text
        .lines()
        .filter(|l| l.contains("rotation exported before pruning"))
        .count();
    assert_eq!(exported, 4, "each pruned rotation was exported first");
    assert!(text.contains(&format!("\"id\":\"{first}\"")), "with its id");
}

#[tokio::test]
async fn alerts_for_targets_nobody_serves_add_no_metric_series() {
    let world = Sims::start().await.world(None).await;
    for i in 0..5 {
        let body = alert_body(
            &format!("{i:016x}"),
            &[
                ("environment", "nowhere"),
                ("api_user", &format!("u{i}@example.com")),
                ("application", "App"),
            ],
        );
        world.app.post_webhook(body).await;
    }
    let metrics = world
        .app
        .client
        .get(world.app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !metrics.lines().any(|l| l
            .starts_with("token_rotator_alert_first_seen_timestamp_seconds{")
            && l.contains("nowhere")),
        "{metrics}"
    );
}
