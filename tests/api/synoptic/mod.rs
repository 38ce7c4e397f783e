//! Synoptic as its pages describe it: the legacy endpoint never lists a console-made token, a
//! disabled token is proven dead, a good token with zero results is still good, and each
//! credential endpoint takes the private key its own way.

mod account;
mod proof;

use std::sync::Arc;
use std::time::Duration;

use token_rotator::clock::{Clock, ManualClock};
use token_rotator::config::{CredentialApi, SynopticSettings};
use token_rotator::sim::synoptic::SynopticSim;

use crate::scheduled::{DAY, daily};
use crate::world::{Sims, World, WorldOptions};

/// A daily target whose file holds `first`, with `[synoptic]` as `synoptic`.
pub(crate) async fn world_with(
    sims: Sims,
    first: &str,
    disable_old: bool,
    synoptic: SynopticSettings,
) -> (World, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap().keep();
    let path = dir.join("synoptic.token");
    std::fs::write(&path, first).unwrap();
    let options = WorldOptions {
        schedules: vec![daily(&path, disable_old)],
        synoptic: Some(synoptic),
        grace: Duration::from_secs(600),
        ..WorldOptions::default()
    };
    (sims.world_with(None, options).await, path)
}

/// The defaults, on the simulator, with a short propagation window (the proof polls in it).
pub(crate) fn settings() -> SynopticSettings {
    SynopticSettings {
        disable_propagation: Duration::from_millis(240),
        ..SynopticSettings::at("")
    }
}

#[tokio::test]
async fn an_old_token_made_in_the_console_stops_a_legacy_rotation_and_says_why() {
    let sims = Sims::start().await;
    // This key has a token of its own, so the list is not empty; the one in use is not in it.
    sims.synoptic.add_token(Some(sims.clock.now() + DAY), &[]);
    let console = sims
        .synoptic
        .add_console_token(Some(sims.clock.now() + DAY), &["dashboard"]);
    let legacy = SynopticSettings {
        credential_api: CredentialApi::Legacy,
        ..settings()
    };
    let (world, path) = world_with(sims, &console, true, legacy).await;
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "failed", "{row:#?}");
    let outcome = row.outcome.clone().unwrap_or_default();
    assert!(outcome.contains("console"), "{outcome}");
    assert_eq!(
        world.synoptic().tokens().len(),
        2,
        "no token minted without the old one's settings"
    );
    assert!(world.synoptic().is_live(&console), "left to a person");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), console);
}

#[tokio::test]
async fn a_disabled_token_counts_only_once_a_data_request_with_it_is_refused() {
    let sims = Sims::start().await;
    let first = sims.synoptic.add_token(Some(sims.clock.now() + DAY), &[]);
    // Synoptic accepted the disable but the token goes on answering past the window.
    sims.synoptic.lag_disable(1000);
    let (world, _) = world_with(sims, &first, true, settings()).await;
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_ne!(row.phase, "done", "{row:#?}");
    let outcome = row.outcome.clone().unwrap_or_default();
    assert!(outcome.contains("still answered"), "{outcome}");
}

#[tokio::test]
async fn a_disabled_token_answering_for_a_while_is_waited_for_within_the_window() {
    let sims = Sims::start().await;
    let first = sims.synoptic.add_token(Some(sims.clock.now() + DAY), &[]);
    sims.synoptic.lag_disable(3);
    let (world, path) = world_with(sims, &first, true, settings()).await;
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "done", "{row:#?}");
    assert!(!world.synoptic().is_live(&first));
    assert!(
        world
            .synoptic()
            .is_live(&std::fs::read_to_string(&path).unwrap())
    );
}

#[tokio::test]
async fn a_check_with_zero_results_does_not_reject_a_good_token() {
    let sims = Sims::start().await;
    let first = sims.synoptic.add_token(Some(sims.clock.now() + DAY), &[]);
    let synoptic = SynopticSettings {
        // A station with no data: RESPONSE_CODE 2, "Zero results", for a good token.
        verify_path: "/v2/stations/latest?stid=NOSUCH".into(),
        ..settings()
    };
    let (world, _) = world_with(sims, &first, false, synoptic).await;
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "done", "{row:#?}");
}

#[tokio::test]
async fn the_legacy_endpoint_takes_the_key_as_a_parameter_and_rotates_the_same() {
    let sims = Sims::start().await;
    let first = sims.synoptic.add_token(Some(sims.clock.now() + DAY), &[]);
    let synoptic = SynopticSettings {
        credential_api: CredentialApi::Legacy,
        ..settings()
    };
    let (world, path) = world_with(sims, &first, true, synoptic).await;
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "done", "{row:#?}");
    assert!(!world.synoptic().is_live(&first));
    assert!(
        world
            .synoptic()
            .is_live(&std::fs::read_to_string(&path).unwrap())
    );
}

/// A Synoptic token is its own identifier, so the journal names it by an HMAC under the
/// install's key: an unkeyed hash would let anyone who reads the journal (or the logs, or
/// Slack) confirm a guessed token.
#[tokio::test]
async fn token_names_in_the_journal_are_keyed_to_the_install() {
    use sha2::{Digest, Sha256};
    use token_rotator::secrets::TokenNamer;
    let sims = Sims::start().await;
    let names = TokenNamer::new(&sims.keys, token_rotator::adapters::synoptic::NAMES);
    let first = sims.synoptic.add_token(Some(sims.clock.now() + DAY), &[]);
    let (world, path) = world_with(sims, &first, true, settings()).await;
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "done", "{row:#?}");
    let new = std::fs::read_to_string(&path).unwrap();
    let unkeyed = |value: &str| format!("syn-{}", &hex::encode(Sha256::digest(value))[..16]);
    for (journaled, value) in [(&row.old_token_id, &first), (&row.new_token_id, &new)] {
        let journaled = journaled.as_deref().unwrap();
        assert_ne!(journaled, unkeyed(value), "an unkeyed hash of the token");
        assert_eq!(journaled, format!("syn-{}", names.name(value)));
    }
}

/// The simulator's own rules, straight over HTTP.
#[tokio::test]
async fn the_simulator_refuses_what_synoptic_refuses() {
    token_rotator::install_crypto_provider();
    let clock = Arc::new(ManualClock::new(jiff::Timestamp::now()));
    let sim = SynopticSim::new("key", clock.clone() as Arc<dyn Clock>);
    let running = sim.start().await.unwrap();
    let http = reqwest::Client::new();
    let get = |path: &str, bearer: Option<&str>| {
        let mut request = http.get(format!("{}{path}", running.url()));
        if let Some(b) = bearer {
            request = request.bearer_auth(b);
        }
        request.send()
    };
    // Each endpoint with its own way of passing the key.
    assert_eq!(
        get("/auth/v2/?list=1", Some("key")).await.unwrap().status(),
        200
    );
    assert_eq!(
        get("/v2/auth?list=1", Some("key")).await.unwrap().status(),
        401
    );
    assert_eq!(
        get("/v2/auth?list=1&apikey=key", None)
            .await
            .unwrap()
            .status(),
        200
    );
    // Console-made tokens work; the current endpoint lists the account's, the legacy one the
    // key's.
    let console = sim.add_console_token(None, &[]);
    let own = sim.add_token(None, &[]);
    let list = |path: &'static str, bearer| async move {
        let listed: serde_json::Value = get(path, bearer).await.unwrap().json().await.unwrap();
        listed["TOKENS"].clone()
    };
    assert_eq!(
        list("/auth/v2/?list=1", Some("key")).await,
        serde_json::json!([console.clone(), own.clone()])
    );
    assert_eq!(
        list("/v2/auth?list=1&apikey=key", None).await,
        serde_json::json!([own.clone()])
    );
    let data: serde_json::Value = get(
        &format!("/v2/stations/metadata?stid=WBB&token={console}"),
        None,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(data["SUMMARY"]["RESPONSE_CODE"], 1);
    // Disable once; again, or clone from it, is refused.
    let disable = format!("/auth/v2/?disableToken={own}");
    assert_eq!(get(&disable, Some("key")).await.unwrap().status(), 200);
    assert_eq!(get(&disable, Some("key")).await.unwrap().status(), 400);
    let clone = format!("/auth/v2/?cloneSettings={own}");
    assert_eq!(get(&clone, Some("key")).await.unwrap().status(), 400);
    // Expiry: within the hour after `expire`, not at it.
    let expire = clock.now().strftime("%Y%m%d%H%M").to_string();
    let made: serde_json::Value = get(&format!("/auth/v2/?expire={expire}"), Some("key"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = made["TOKEN"].as_str().unwrap();
    let at = sim.tokens().into_iter().find(|t| t.value == token).unwrap();
    let asked: jiff::Timestamp = jiff::civil::DateTime::strptime("%Y%m%d%H%M", &expire)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp();
    let late = at.expires_at.unwrap() - asked;
    assert!(
        late.get_seconds() > 0 && late.get_seconds() < 3600,
        "{late:?}"
    );
}
