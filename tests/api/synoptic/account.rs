//! Tokens belong to the account on the current endpoint: any of its private keys lists and
//! disables any of them; the legacy endpoint keeps its rule that only the key that made a token
//! acts on it. Targets on one account mint one at a time.

use std::sync::Arc;

use token_rotator::clock::{Clock, ManualClock};
use token_rotator::config::{CredentialApi, ScheduleSettings, SynopticSettings};
use token_rotator::sim::Fault;
use token_rotator::sim::synoptic::SynopticSim;

use super::{settings, world_with};
use crate::scheduled::{DAY, daily};
use crate::world::{Sims, WorldOptions};

/// Another private key of the account the service's key belongs to.
const SECOND_KEY: &str = "a-second-private-key-of-the-same-account";

#[tokio::test]
async fn on_the_current_endpoint_a_token_another_key_made_is_rotated_and_disabled() {
    let sims = Sims::start().await;
    sims.synoptic.add_key(SECOND_KEY, true);
    let first =
        sims.synoptic
            .add_token_with(SECOND_KEY, Some(sims.clock.now() + DAY), &["dashboard"]);
    let (world, path) = world_with(sims, &first, true, settings()).await;
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "done", "{row:#?}");
    assert!(
        !world.synoptic().is_live(&first),
        "disabled with the other key"
    );
    let new = std::fs::read_to_string(&path).unwrap();
    assert!(world.synoptic().is_live(&new));
    let made = world.synoptic().tokens();
    let made = made.iter().find(|t| t.value == new).unwrap();
    assert_eq!(made.settings["tags"], serde_json::json!(["dashboard"]));
}

#[tokio::test]
async fn on_the_legacy_endpoint_a_token_another_key_made_stops_the_rotation() {
    let sims = Sims::start().await;
    sims.synoptic.add_key(SECOND_KEY, true);
    sims.synoptic.add_token(Some(sims.clock.now() + DAY), &[]);
    let first = sims
        .synoptic
        .add_token_with(SECOND_KEY, Some(sims.clock.now() + DAY), &[]);
    let legacy = SynopticSettings {
        credential_api: CredentialApi::Legacy,
        ..settings()
    };
    let (world, _) = world_with(sims, &first, true, legacy).await;
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "failed", "{row:#?}");
    let outcome = row.outcome.clone().unwrap_or_default();
    assert!(
        outcome.contains("only the key that made a token"),
        "{outcome}"
    );
    assert!(world.synoptic().is_live(&first));
    assert_eq!(world.synoptic().tokens().len(), 2, "nothing minted");
}

/// The simulator's account rules, straight over HTTP.
#[tokio::test]
async fn the_simulator_lists_by_account_on_the_current_endpoint_and_by_key_on_the_legacy_one() {
    token_rotator::install_crypto_provider();
    let clock = Arc::new(ManualClock::new(jiff::Timestamp::now()));
    let sim = SynopticSim::new("key", clock.clone() as Arc<dyn Clock>);
    sim.add_key("second", true);
    sim.add_key("stranger", false);
    let running = sim.start().await.unwrap();
    let http = reqwest::Client::new();
    let current = |query: String, key: &str| {
        http.get(format!("{}/auth/v2/?{query}", running.url()))
            .bearer_auth(key)
            .send()
    };
    let legacy = |query: String, key: &str| {
        http.get(format!("{}/v2/auth?{query}&apikey={key}", running.url()))
            .send()
    };
    let made = sim.add_token(None, &[]);
    let listed = |answer: reqwest::Response| async move {
        let body: serde_json::Value = answer.json().await.unwrap();
        body["TOKENS"].clone()
    };
    let only_made = serde_json::json!([made.clone()]);
    assert_eq!(
        listed(current("list=1".into(), "second").await.unwrap()).await,
        only_made
    );
    assert_eq!(
        listed(legacy("list=1".into(), "second").await.unwrap()).await,
        serde_json::json!([])
    );
    assert_eq!(
        listed(current("list=1".into(), "stranger").await.unwrap()).await,
        serde_json::json!([])
    );
    // Another account's key, and on the legacy endpoint another key, may not disable it.
    let disable = format!("disableToken={made}");
    for refused in [
        current(disable.clone(), "stranger").await.unwrap(),
        legacy(disable.clone(), "second").await.unwrap(),
    ] {
        assert_eq!(refused.status(), 403);
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(body["SUMMARY"]["RESPONSE_CODE"], 403);
    }
    assert!(sim.is_live(&made));
    // Any key of the account may, on the current endpoint.
    assert_eq!(current(disable, "second").await.unwrap().status(), 200);
    assert!(!sim.is_live(&made));
}

/// A daily target named `name` on the service's account.
fn target(name: &str, path: &std::path::Path) -> ScheduleSettings {
    let mut settings = daily(path, false);
    settings.schedule.name = name.into();
    settings.schedule.api_user = name.into();
    settings
}

#[tokio::test]
async fn two_targets_on_one_account_mint_one_at_a_time() {
    let sims = Sims::start().await;
    let dir = tempfile::tempdir().unwrap().keep();
    let mut schedules = Vec::new();
    let mut files = Vec::new();
    for name in ["dashboard", "partner-feed"] {
        let path = dir.join(name);
        let first = sims.synoptic.add_token(Some(sims.clock.now() + DAY), &[]);
        std::fs::write(&path, &first).unwrap();
        schedules.push(target(name, &path));
        files.push((path, first));
    }
    // The first create is made but its answer is lost: that rotation stays in `planned`.
    sims.synoptic
        .faults
        .next("create-answer", Fault::Status(502), 1);
    let options = WorldOptions {
        schedules,
        synoptic: Some(settings()),
        grace: std::time::Duration::from_secs(600),
        ..WorldOptions::default()
    };
    let world = sims.world_with(None, options).await;
    world.engine.run_until_idle().await.unwrap();
    let rows = world.rotations().await;
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert!(rows.iter().all(|r| r.phase == "planned"), "{rows:#?}");
    assert_eq!(
        world.synoptic().tokens().len(),
        3,
        "one create: the other target waits its turn"
    );
    let waiting = rows
        .iter()
        .find(|r| r.secret_name.is_none())
        .expect("one has not begun");
    let minting = rows.iter().find(|r| r.id != waiting.id).unwrap();
    let why = waiting.last_error.clone().unwrap_or_default();
    assert!(
        why.contains(&minting.id) && why.contains("same Synoptic account"),
        "{why}"
    );
    // The one with the lost answer cannot tell its token and asks a person; then the other
    // takes its turn and rotates.
    world.run_to_the_end().await;
    let rows = world.rotations().await;
    let phase = |id: &str| rows.iter().find(|r| r.id == id).unwrap().phase.clone();
    assert_eq!(phase(&minting.id), "failed", "{rows:#?}");
    assert_eq!(phase(&waiting.id), "done", "{rows:#?}");
    let changed = files
        .iter()
        .filter(|(path, first)| std::fs::read_to_string(path).unwrap() != *first)
        .count();
    assert_eq!(changed, 1);
}

#[tokio::test]
async fn on_the_current_endpoint_a_token_made_in_the_console_is_rotated_and_disabled() {
    let sims = Sims::start().await;
    let console = sims
        .synoptic
        .add_console_token(Some(sims.clock.now() + DAY), &["dashboard"]);
    let (world, path) = world_with(sims, &console, true, settings()).await;
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "done", "{row:#?}");
    assert!(!world.synoptic().is_live(&console), "an account's token");
    assert!(
        world
            .synoptic()
            .is_live(&std::fs::read_to_string(&path).unwrap())
    );
}
