//! Alerts are untrusted input: anyone who can POST to Alertmanager can have an alert delivered
//! here with the webhook's credential. Each test is one attack and what stops it.

use crate::helpers::alert_body;
use crate::rotation::{APP, USER};
use crate::world::{ENVIRONMENTS, Sims, World, WorldOptions};

/// Requests that change something, in every environment's simulators.
fn mutations(world: &World) -> u32 {
    let mut total = world.alertmanager.faults.calls("post");
    for env in ENVIRONMENTS {
        let sims = world.env(env);
        total += sims.signon.faults.calls("mint") + sims.signon.faults.calls("revoke");
        total += sims.kubernetes.faults.calls("apply");
    }
    total
}

#[tokio::test]
async fn an_environment_this_instance_does_not_serve_is_unroutable_never_active() {
    let world = Sims::start().await.world(None).await;
    world.seed(USER, APP);
    // "prod" is not "production": before, an unlisted environment was active by default.
    for (fingerprint, environment) in [("f1", "prod"), ("f2", "Production"), ("f3", "dev")] {
        let body = alert_body(
            fingerprint,
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
    let body = alert_body(
        "f1",
        &[
            ("environment", "production"),
            ("api_user", USER),
            ("application", APP),
        ],
    );
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
        let body = alert_body(
            "f1",
            &[
                ("environment", "production"),
                ("api_user", USER),
                ("application", APP),
            ],
        );
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
