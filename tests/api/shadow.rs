//! Shadow mode: every decision and every read, a plan for each target, and no change anywhere.

use token_rotator::adapters::Permit;
use token_rotator::policy::Mode;

use crate::helpers::{alert_body, capture, captures, fixture};
use crate::rotation::{APP, USER};
use crate::world::{ENVIRONMENTS, Sims, World, WorldOptions};

async fn shadow_world(environments: Vec<&'static str>) -> World {
    let options = WorldOptions {
        shadow: environments,
        ..WorldOptions::default()
    };
    Sims::start().await.world_with(None, options).await
}

/// Requests that change something, per simulator: none may arrive in shadow.
pub(crate) fn mutations(world: &World) -> u32 {
    let mut total = world.alertmanager.faults.calls("post");
    for env in ENVIRONMENTS {
        let sims = world.env(env);
        total += sims.signon.faults.calls("mint") + sims.signon.faults.calls("revoke");
        total += sims.kubernetes.faults.calls("apply");
    }
    total
}

#[tokio::test]
async fn the_demo_fixtures_in_shadow_make_plans_and_change_nothing() {
    let world = shadow_world(vec!["integration", "production", "staging"]).await;
    world.seed_every_environment("email-alert-api@alphagov.co.uk", "Email Alert API");
    world.seed_every_environment(USER, APP);
    for (_, body) in captures() {
        world.app.post_webhook(body).await;
    }
    world
        .app
        .post_webhook(fixture("synthetic/special-cases.json"))
        .await;
    world.run_to_the_end().await;

    assert_eq!(
        mutations(&world),
        0,
        "a mutating request reached a simulator"
    );
    let rows = world.rotations().await;
    let planned: Vec<_> = rows.iter().filter(|r| r.phase == "planned_only").collect();
    // Every rotate and silence decision is a plan; manual, ignore and unroutable are as always.
    assert!(
        rows.iter()
            .all(|r| r.action != "rotate" && r.action != "silence"
                || r.phase == "planned_only"
                || r.phase == "cancelled")
    );
    assert!(planned.len() >= 4, "{rows:#?}");
    let seeded = planned
        .iter()
        .find(|r| r.action == "rotate" && r.api_user == USER && r.environment == "production")
        .unwrap();
    let plan: serde_json::Value = serde_json::from_str(seeded.plan.as_deref().unwrap()).unwrap();
    let steps: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        steps[0].starts_with("ask Signon for a new token for"),
        "{steps:?}"
    );
    assert!(
        steps[1].starts_with("apply Secret signon-token-"),
        "{steps:?}"
    );
    assert!(steps[4].starts_with("revoke the old token"), "{steps:?}");
    assert_eq!(plan["feasible"], true, "{plan}");
    let texts = world.slack_texts();
    let shadow: Vec<_> = texts
        .iter()
        .filter(|t| t.contains("*shadow — nothing was changed.*"))
        .collect();
    assert_eq!(shadow.len(), 1, "one message for the batch: {texts:#?}");
    assert!(
        shadow[0].contains(&format!("planned {} target(s)", planned.len())),
        "{}",
        shadow[0]
    );
    let message = world
        .slack
        .messages()
        .into_iter()
        .find(|m| m["text"].as_str().unwrap().contains("shadow"))
        .unwrap();
    assert_eq!(
        message["blocks"].as_array().unwrap().len(),
        planned.len() + 1,
        "a section per target"
    );
}

#[tokio::test]
async fn a_plan_that_hits_a_missing_secret_says_so() {
    let world = shadow_world(vec!["production"]).await;
    // A live token in Signon, but no Secret in the cluster.
    world
        .signon
        .add_token(USER, APP, std::time::Duration::from_secs(10 * 86400));
    world.app.post_webhook(capture("01-")).await;
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "planned_only");
    let plan: serde_json::Value = serde_json::from_str(row.plan.as_deref().unwrap()).unwrap();
    assert_eq!(plan["feasible"], false);
    assert!(
        plan["findings"][0]
            .as_str()
            .unwrap()
            .contains("Secret `signon-token-short-url-manager-publishing-api` not found"),
        "{plan}"
    );
    assert_eq!(mutations(&world), 0);
}

#[tokio::test]
async fn switching_to_active_runs_the_next_alert_and_never_the_old_plan() {
    let shadow = shadow_world(vec!["production"]).await;
    let old = shadow.seed(USER, APP);
    shadow.app.post_webhook(capture("01-")).await;
    shadow.run_to_the_end().await;
    assert_eq!(shadow.rotations().await[0].phase, "planned_only");
    let (sims, dir) = shadow.crash().await;

    // The same journal, production now active: the plan stays a plan; a new alert rotates.
    let active = sims.world(Some(dir)).await;
    active.run_to_the_end().await;
    assert_eq!(
        mutations(&active),
        0,
        "the shadow plan was not executed later"
    );
    active
        .app
        // A new firing episode of the alert (its repeats are duplicates of the journaled one).
        .post_webhook(alert_body(
            "79c58121da909ef7",
            &[
                ("alertname", "SignonApiUserTokenExpirySoon"),
                ("environment", "production"),
                ("api_user", USER),
                ("application", APP),
            ],
        ))
        .await;
    active.run_to_the_end().await;
    let rows = active.rotations().await;
    assert_eq!(
        rows.iter().map(|r| r.phase.as_str()).collect::<Vec<_>>(),
        ["planned_only", "done"]
    );
    assert!(!active.signon.is_live(&old));
}

#[tokio::test]
async fn every_mutating_step_refuses_a_shadow_rotation() {
    assert!(Permit::for_mode(Mode::Shadow).is_err());
    assert!(Permit::for_mode(Mode::Active).is_ok());
    let world = shadow_world(vec!["production"]).await;
    world.seed(USER, APP);
    // Shadow rows forced into each phase that mutates (as a bug or a hand-edited journal could).
    let pool = world.engine.journal().pool();
    for (i, phase) in ["issued", "grace", "rolling_back"].into_iter().enumerate() {
        sqlx::query(
            "INSERT INTO rotations (id, environment, api_user, application, action, phase, trigger, \
             created_at_ms, updated_at_ms, next_attempt_at_ms, mode, secret_name, old_token_id, \
             new_token_id, new_token_sealed, old_secret_sealed, target_key) \
             VALUES ($1, 'production', $2, $3, 'rotate', $4, 'test', 0, 0, 0, 'shadow', \
             'signon-token-x', '1', '2', x'00', x'00', $1)",
        )
        .bind(format!("forced-{i}"))
        .bind(format!("forced-{i}@alphagov.co.uk"))
        .bind(APP)
        .bind(phase)
        .execute(pool.as_sqlite().unwrap())
        .await
        .unwrap();
    }
    world.run_to_the_end().await;
    assert_eq!(mutations(&world), 0);
    for row in world.rotations().await {
        assert_eq!(row.phase, "failed", "{row:#?}");
        assert!(
            row.outcome
                .as_deref()
                .unwrap()
                .contains("refused: shadow mode"),
            "{row:#?}"
        );
    }
}

#[tokio::test]
async fn plan_prints_what_would_happen_and_exits_3_when_a_step_would_fail() {
    let sims = Sims::start().await;
    let production = sims.production();
    let token = production
        .signon
        .add_token(USER, APP, std::time::Duration::from_secs(10 * 86400));
    let secret =
        token_rotator::domain::parameterize::secret_name(&production.signon.user_name(USER), APP);
    production
        .kubernetes
        .put(crate::world::NAMESPACE, &secret, "bearer_token", &token);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("plan.toml");
    let text = format!(
        "{}\n[signon]\nurl = \"{}\"\n\n[kubernetes]\nurl = \"{}\"\nnamespace = \"apps\"\n",
        token_rotator::config::DEFAULT_CONFIG,
        production.signon_url(),
        production.kubernetes_url()
    );
    std::fs::write(&config, text).unwrap();

    let run = |api_user: &'static str| {
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_token-rotator"))
                .args(["plan", "--config", config.to_str().unwrap()])
                .args([
                    "--environment",
                    "production",
                    "--api-user",
                    api_user,
                    "--application",
                    APP,
                ])
                .env(
                    "TOKEN_ROTATOR_SIGNON_ADMIN_TOKEN",
                    crate::world::ADMIN_TOKEN,
                )
                .env_remove("RUST_LOG")
                .output()
                .unwrap()
        })
    };
    let ok = run(USER).await.unwrap();
    let stdout = String::from_utf8(ok.stdout).unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        stdout.contains("production / short-url-manager@alphagov.co.uk / Publishing API: rotate"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1. ask Signon for a new token for"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("found: Secret `signon-token-short-url-manager-publishing-api` holds token"),
        "{stdout}"
    );

    let missing = run("no-secret@alphagov.co.uk").await.unwrap();
    let stdout = String::from_utf8(missing.stdout).unwrap();
    assert_eq!(missing.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.contains("WOULD FAIL") && stdout.contains("not found"),
        "{stdout}"
    );

    let mutating = production.signon.faults.calls("mint")
        + production.signon.faults.calls("revoke")
        + production.kubernetes.faults.calls("apply");
    assert_eq!(mutating, 0, "plan changed something");
}

#[tokio::test]
async fn plan_with_the_job_issuer_reads_the_last_inventory_and_starts_no_job() {
    let sims = Sims::start().await;
    let production = sims.production();
    production
        .signon
        .add_token(USER, APP, std::time::Duration::from_secs(10 * 86400));
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.db");
    let config = dir.path().join("plan.toml");
    let text = format!(
        "{}\n[signon]\nurl = \"{}\"\nissuer = \"job\"\ninitiator = \"rotator@example.gov.uk\"\n\
         [signon.job]\nimage = \"signon@sha256:0123\"\n\n[kubernetes]\nurl = \"{}\"\nnamespace = \"apps\"\n",
        token_rotator::config::DEFAULT_CONFIG,
        production.signon_url(),
        production.kubernetes_url()
    );
    std::fs::write(&config, text).unwrap();
    let run = || {
        let (config, journal) = (config.clone(), journal.clone());
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_token-rotator"))
                .args(["plan", "--config", config.to_str().unwrap()])
                .args(["--environment", "production", "--api-user", USER])
                .args(["--application", APP])
                .env(
                    "TOKEN_ROTATOR_DATABASE_URL",
                    format!("sqlite://{}", journal.display()),
                )
                .env_remove("RUST_LOG")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            (out.status.code(), text)
        })
    };

    // No journal: the plan says it cannot read an inventory, and creates no journal.
    let (code, text) = run().await.unwrap();
    assert_ne!(code, Some(0), "{text}");
    assert!(
        text.contains("cannot read the last inventory: no journal at"),
        "{text}"
    );
    assert!(!journal.exists(), "plan created a journal");

    // The service's last inventory, as it journals it.
    let opened = token_rotator::store::Journal::open(
        &format!("sqlite://{}", journal.display()),
        std::time::Duration::from_secs(5),
    )
    .await
    .unwrap();
    let token = production.signon.tokens().last().unwrap().clone();
    let row = token_rotator::store::inventory::InventoryRow {
        environment: String::new(),
        api_user: USER.into(),
        api_user_name: Some(production.signon.user_name(USER)),
        application: APP.into(),
        application_uid: Some("uid-publishing-api".into()),
        token_id: token.id.to_string(),
        created_at_ms: None,
        expires_at_ms: Some(jiff::Timestamp::now().as_millisecond() + 10 * 86_400_000),
        expired: false,
        newest: true,
        last8: token.value[token.value.len() - 8..].to_owned(),
        suspended: false,
        retired: false,
        renewed_by: None,
        taken_at_ms: 0,
    };
    token_rotator::store::inventory::replace(
        opened.pool(),
        "production",
        jiff::Timestamp::now(),
        &[row],
    )
    .await
    .unwrap();
    opened.close().await;

    let (_, text) = run().await.unwrap();
    assert!(
        text.contains("found: tokens as Signon's inventory of production saw them")
            && text.contains(&format!(
                "revoke the old token {} (…{})",
                token.id,
                &token.value[token.value.len() - 8..]
            )),
        "{text}"
    );
    assert_eq!(
        production.kubernetes.jobs_created("list") + production.kubernetes.jobs_created("mint"),
        0,
        "plan started a Job"
    );
}
