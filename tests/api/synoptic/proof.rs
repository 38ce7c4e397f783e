//! What Synoptic's answers prove about a token: dead only on the documented authorisation
//! error ("403 Authorization error", docs.synopticdata.com/services/errors); an internal error
//! or an answer without a code proves nothing and is asked again; a refused disable is what its
//! answer says, not always "protected".

use std::time::Duration;

use token_rotator::clock::Clock;
use token_rotator::engine::Phase;
use token_rotator::sim::Fault;

use super::{settings, world_with};
use crate::scheduled::DAY;
use crate::world::Sims;

/// The errors page's "500 Internal errors", inside an HTTP 200 as Synoptic's summaries come.
const INTERNAL: &str =
    r#"{"SUMMARY": {"RESPONSE_CODE": 500, "RESPONSE_MESSAGE": "Internal error"}}"#;

#[tokio::test]
async fn an_internal_error_after_a_disable_is_not_taken_for_a_dead_token() {
    let sims = Sims::start().await;
    let first = sims.synoptic.add_token(Some(sims.clock.now() + DAY), &[]);
    let (world, _) = world_with(sims, &first, true, settings()).await;
    world.run_until(Phase::Grace).await;
    world
        .synoptic()
        .faults
        .always("data", Fault::Json(200, INTERNAL));
    for _ in 0..5 {
        world.engine.run_until_idle().await.unwrap();
        world.clock.advance(Duration::from_secs(3600));
    }
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "grace", "held, not revoked: {row:#?}");
    let why = row.last_error.clone().unwrap_or_default();
    assert!(why.contains("could not tell"), "{why}");
    // Once data requests are answered again, the refusal proves it.
    world.synoptic().faults.clear("data");
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "done", "{row:#?}");
    assert!(!world.synoptic().is_live(&first));
}

#[tokio::test]
async fn an_internal_error_while_verifying_is_asked_again_not_rolled_back() {
    let sims = Sims::start().await;
    let first = sims.synoptic.add_token(Some(sims.clock.now() + DAY), &[]);
    sims.synoptic
        .faults
        .next("data", Fault::Json(200, INTERNAL), 2);
    let (world, path) = world_with(sims, &first, false, settings()).await;
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "done", "{row:#?}");
    assert_ne!(std::fs::read_to_string(&path).unwrap(), first);
}

#[tokio::test]
async fn a_disable_refused_because_a_person_disabled_it_first_is_not_called_protected() {
    let sims = Sims::start().await;
    let first = sims.synoptic.add_token(Some(sims.clock.now() + DAY), &[]);
    // Between our list and our disable, someone disables it in the console: Synoptic answers
    // the disable with code -1, incorrect input.
    sims.synoptic.beat_the_next_disable();
    let (world, _) = world_with(sims, &first, true, settings()).await;
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "done", "proved dead instead: {row:#?}");
    assert!(!world.synoptic().is_live(&first));
    let audit = world.audit(&row.id).await;
    assert!(
        audit.iter().all(|a| !a.reason.contains("protected")),
        "{audit:#?}"
    );
}
