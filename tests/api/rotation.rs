//! The rotation engine end to end: Signon, the Kubernetes Secret and Slack over real HTTP.

use std::time::Duration;

use token_rotator::domain::{ApiUser, Application, Environment, Target};
use token_rotator::engine::Phase;
use token_rotator::policy::Mode;
use token_rotator::sim::Fault;

use crate::helpers::{alert_body, capture};
use crate::world::{Sims, World, WorldOptions, rotated_world, spawn_world};

pub const USER: &str = "short-url-manager@alphagov.co.uk";
pub const APP: &str = "Publishing API";

/// Capture 01: USER / APP in production.
pub async fn alert(world: &World) {
    assert_eq!(world.app.post_webhook(capture("01-")).await.status(), 200);
}

#[tokio::test]
async fn an_internal_token_is_rotated_verified_and_the_old_one_revoked_after_grace() {
    let world = spawn_world().await;
    let old = world.seed(USER, APP);
    alert(&world).await;

    let grace = world.run_until(Phase::Grace).await;
    assert!(
        world.signon.is_live(&old),
        "the old token lives through the grace period"
    );
    let new = world.secret(USER, APP).unwrap();
    assert_ne!(new, old);
    assert!(world.signon.is_live(&new));
    assert_eq!(
        grace.secret_name.as_deref(),
        Some("signon-token-short-url-manager-publishing-api")
    );

    world.run_to_the_end().await;
    let rows = world.rotations().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].phase, "done");
    assert!(!world.signon.is_live(&old), "old token revoked");
    assert!(world.signon.is_live(&new), "new token still live");
    assert_eq!(world.signon.minted().len(), 1);
    assert_eq!(world.signon.revoked().len(), 1);
    let phases: Vec<_> = world
        .audit(&rows[0].id)
        .await
        .into_iter()
        .map(|a| a.to_phase)
        .collect();
    assert_eq!(
        phases,
        [
            "planned",
            "issued",
            "distributed",
            "rolled_out",
            "verified",
            "grace",
            "revoked",
            "done"
        ]
    );
    let texts = world.slack_texts();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(
        texts[0]
            .contains(":white_check_mark: Rotated the token of `short-url-manager@alphagov.co.uk`")
    );
    assert!(texts[0].contains("signon-token-short-url-manager-publishing-api"));
}

#[tokio::test]
async fn every_default_rule_ends_in_its_state_with_one_slack_message_each() {
    let world = rotated_world().await;

    let mut ends: Vec<_> = world
        .rotations()
        .await
        .into_iter()
        .map(|r| (r.environment, r.api_user, r.phase))
        .collect();
    ends.sort();
    let expected = [
        ("integration", "email-alert-api@alphagov.co.uk", "done"),
        ("integration", "orphan@alphagov.co.uk", "unroutable"),
        ("production", "customs-integration@hmrc.gov.uk", "manual"),
        ("production", "email-alert-api@alphagov.co.uk", "done"),
        ("production", "signon+permissions@alphagov.co.uk", "ignored"),
        (
            "production",
            "trade-tariff-admin@digital.trade.gov.uk",
            "manual",
        ),
        ("staging", "email-alert-api@alphagov.co.uk", "silenced"),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(e, u, p)| (e.to_string(), u.to_string(), p.to_string()))
        .collect();
    assert_eq!(ends, expected);
    for env in ["integration", "production"] {
        let signon = &world.env(env).signon;
        assert_eq!(
            signon.minted().len(),
            1,
            "{env}: one mint for its one rotate decision"
        );
        assert_eq!(signon.revoked().len(), 1, "{env}");
    }
    let texts = world.slack_texts();
    assert_eq!(texts.len(), 7, "{texts:#?}");
    let silences = world.alertmanager.silences();
    assert_eq!(silences.len(), 1, "{silences:#?}");
    let mut matchers: Vec<_> = silences[0]["matchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["value"].as_str().unwrap(),
                m["isRegex"].as_bool().unwrap(),
            )
        })
        .collect();
    matchers.sort();
    assert_eq!(
        matchers,
        [
            ("alertname", "SignonApiUserTokenExpirySoon", false),
            ("api_user", "email-alert-api@alphagov.co.uk", false),
            ("application", "Email Alert API", false),
            ("environment", "staging", false),
        ]
    );
    assert_eq!(silences[0]["createdBy"], "token-rotator");
    let manual = texts
        .iter()
        .find(|t| t.contains("customs-integration"))
        .unwrap();
    assert!(
        manual.contains("#govuk-platform-engineering-team"),
        "{manual}"
    );
    assert!(manual.contains("send the new token securely"), "{manual}");
}

#[tokio::test]
async fn a_failed_verification_rolls_back_to_the_old_token_and_revokes_the_new() {
    let world = spawn_world().await;
    let old = world.seed(USER, APP);
    world.signon.faults.always("user.json", Fault::Status(401));
    alert(&world).await;
    world.run_to_the_end().await;

    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "rolled_back", "{row:#?}");
    assert!(
        row.outcome.as_deref().unwrap().contains("HTTP 401"),
        "{row:#?}"
    );
    assert_eq!(
        world.secret(USER, APP).as_deref(),
        Some(old.as_str()),
        "the Secret holds the old token again"
    );
    assert!(world.signon.is_live(&old), "the old token still works");
    let minted = world.signon.minted();
    assert_eq!(minted.len(), 1);
    assert!(minted[0].revoked, "the new token is revoked");
    assert_eq!(world.signon.revoked().len(), 1, "nothing else revoked");
    let texts = world.slack_texts();
    assert!(texts[0].contains("Rolled back"), "{texts:?}");
    assert!(
        row.old_secret_sealed.is_none() && row.new_token_sealed.is_none(),
        "nothing sealed is kept"
    );
}

#[tokio::test]
async fn a_second_alert_for_the_target_joins_the_rotation_under_way() {
    let world = spawn_world().await;
    world.seed(USER, APP);
    alert(&world).await;
    world.run_until(Phase::Issued).await;
    // Capture 17: the same target, a new startsAt (a new alert, not a duplicate delivery).
    let second = world.app.post_webhook(capture("17-")).await;
    assert_eq!(second.status(), 200);
    world.run_to_the_end().await;

    let rows = world.rotations().await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(world.signon.minted().len(), 1);
    let audit = world.audit(&rows[0].id).await;
    assert!(
        audit
            .iter()
            .any(|a| a.reason.contains("joined this rotation")),
        "{audit:#?}"
    );
}

#[tokio::test]
async fn a_resolved_alert_cancels_a_rotation_not_yet_begun() {
    let world = spawn_world().await;
    world.seed(USER, APP);
    alert(&world).await;
    world.app.post_webhook(capture("08-")).await; // the same alert, resolved
    world.run_to_the_end().await;
    let rows = world.rotations().await;
    assert_eq!(rows[0].phase, "cancelled");
    assert!(world.signon.minted().is_empty(), "nothing minted");
    assert!(world.slack_texts()[0].contains("Cancelled"));
}

#[tokio::test]
async fn a_resolved_alert_during_a_rotation_lets_it_finish_and_shows_in_status() {
    let world = spawn_world().await;
    world.seed(USER, APP);
    alert(&world).await;
    world.run_until(Phase::Distributed).await;
    world.app.post_webhook(capture("08-")).await;
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "done");
    let audit = world.audit(&row.id).await;
    assert!(
        audit
            .iter()
            .any(|a| a.reason.contains("resolved during the rotation")),
        "{audit:#?}"
    );
    let status = token_rotator::commands::status::load(world.engine.journal())
        .await
        .unwrap();
    let json = token_rotator::commands::status::json(&status);
    assert_eq!(json[0]["last_alert"]["status"], "resolved");
}

#[tokio::test]
async fn an_alert_soon_after_a_finished_rotation_does_not_rotate_again() {
    let world = spawn_world().await;
    world.seed(USER, APP);
    alert(&world).await;
    world.run_to_the_end().await;
    // Signon's metric lags an hour: the alert can fire anew with another startsAt.
    let again = alert_body(
        "79c58121da909ef6",
        &[
            ("alertname", "SignonApiUserTokenExpirySoon"),
            ("environment", "production"),
            ("api_user", USER),
            ("application", APP),
        ],
    );
    world.app.post_webhook(again).await;
    world.run_to_the_end().await;
    assert_eq!(world.rotations().await.len(), 1);
    assert_eq!(world.signon.minted().len(), 1);
}

pub fn target() -> Target {
    Target {
        environment: Environment::parse("production").unwrap(),
        api_user: ApiUser::parse(USER).unwrap(),
        application: Application::parse(APP).unwrap(),
    }
}

#[tokio::test]
async fn a_rotation_asked_for_on_the_command_line_runs_like_an_alerts() {
    let world = spawn_world().await;
    world.seed(USER, APP);
    let target = target();
    let journal = world.engine.journal();
    let now = jiff::Timestamp::now();
    let first = token_rotator::commands::rotate::request(
        journal,
        &target,
        Mode::Active,
        String::new(),
        now,
    )
    .await
    .unwrap();
    assert!(matches!(
        first,
        token_rotator::commands::rotate::Requested::Started(_)
    ));
    let second = token_rotator::commands::rotate::request(
        journal,
        &target,
        Mode::Active,
        String::new(),
        now,
    )
    .await
    .unwrap();
    assert!(matches!(
        second,
        token_rotator::commands::rotate::Requested::AlreadyActive { .. }
    ));
    world.run_to_the_end().await;
    let rows = world.rotations().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].phase.as_str(), rows[0].trigger.as_str()),
        ("done", "cli")
    );
    let loaded = token_rotator::commands::status::load(journal)
        .await
        .unwrap();
    let status = token_rotator::commands::status::json(&loaded);
    assert_eq!(status[0]["phase"], "done");
    assert_eq!(
        status[0]["secret"],
        "signon-token-short-url-manager-publishing-api"
    );
    let table = token_rotator::commands::status::table(&loaded);
    assert!(
        table.contains("short-url-manager@alphagov.co.uk") && table.contains("done"),
        "{table}"
    );
}

#[tokio::test]
async fn the_engine_loop_in_the_service_picks_up_a_webhook_by_itself() {
    let options = WorldOptions {
        background: true,
        grace: Duration::ZERO,
        ..WorldOptions::default()
    };
    let world = Sims::start().await.world_with(None, options).await;
    let old = world.seed(USER, APP);
    alert(&world).await;
    // No ticking, and the engine's poll is an hour: only intake's wake-up can start it.
    for _ in 0..200 {
        let rows = world.rotations().await;
        if rows.first().is_some_and(|r| r.phase == "done") && !world.slack.messages().is_empty() {
            assert!(!world.signon.is_live(&old));
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not done: {:#?}", world.rotations().await);
}

#[tokio::test]
async fn one_pass_takes_in_a_flood_of_joining_alerts_in_order() {
    // One delivery: the alert, 29 more for the same target (new fingerprints: they join), and
    // the first resolved. Ingest holds the joins to write them together, told in one line; the
    // resolved alert must still see the rotation they joined, and cancel it after they are
    // written.
    let world = spawn_world().await;
    world.seed(USER, APP);
    let labels = [
        ("alertname", "SignonApiUserTokenExpirySoon"),
        ("environment", "production"),
        ("api_user", USER),
        ("application", APP),
    ];
    let one = |fingerprint: String, resolved: bool| {
        let mut body: serde_json::Value =
            serde_json::from_slice(&alert_body(&fingerprint, &labels)).unwrap();
        let mut alert = body["alerts"][0].take();
        if resolved {
            alert["status"] = "resolved".into();
            alert["endsAt"] = "2026-11-24T11:04:07.964Z".into();
        }
        alert
    };
    let mut body: serde_json::Value =
        serde_json::from_slice(&alert_body("f000000000000000", &labels)).unwrap();
    let mut alerts: Vec<_> = (0..30).map(|i| one(format!("f{i:015}"), false)).collect();
    alerts.push(one("f000000000000000".into(), true));
    body["alerts"] = alerts.into();
    let answer = world
        .app
        .post_webhook(serde_json::to_vec(&body).unwrap())
        .await;
    assert_eq!(answer.status(), 200);

    assert_eq!(world.engine.ingest().await.unwrap(), 31, "one pass");
    assert_eq!(world.engine.ingest().await.unwrap(), 0, "none left pending");
    let rows = world.rotations().await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].phase, "cancelled");
    let audit = world.audit(&rows[0].id).await;
    let joined: Vec<_> = audit
        .iter()
        .filter(|a| a.reason.contains("joined this rotation"))
        .collect();
    assert_eq!(joined.len(), 1, "one line for the pass's joins: {audit:#?}");
    // Journaled fingerprints carry the alert's start after a colon.
    let (reason, trigger) = (&joined[0].reason, &joined[0].trigger);
    assert!(
        reason.starts_with("alerts f000000000000001:")
            && reason.contains(", f000000000000003:")
            && reason.ends_with(" and 26 more joined this rotation; no second rotation"),
        "{reason}"
    );
    assert!(
        trigger.starts_with("alert:f000000000000001:") && trigger.ends_with(" (+28 more)"),
        "{trigger}"
    );
    let cancelled = audit
        .iter()
        .position(|a| a.to_phase == "cancelled")
        .unwrap();
    let last_join = audit
        .iter()
        .rposition(|a| a.reason.contains("joined this rotation"))
        .unwrap();
    assert!(
        last_join < cancelled,
        "joins are written before the cancel: {audit:#?}"
    );
}
