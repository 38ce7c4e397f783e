//! The engine runs steps concurrently: within the Job cap (observed at the Kubernetes
//! simulator), one step per rotation even when two passes race, and an environment whose Signon
//! hangs holds up no other.

use std::time::Duration;

use token_rotator::config::{Distribution, IssuerMode};
use token_rotator::sim::Fault;

use crate::slack::batch;
use crate::world::{Sims, World, WorldOptions};

const APP: &str = "Publishing API";

fn targets(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("app-{i:02}@alphagov.co.uk"), APP.to_owned()))
        .collect()
}

async fn seeded(options: WorldOptions, n: usize) -> World {
    let world = Sims::start().await.world_with(None, options).await;
    for (user, app) in targets(n) {
        world.seed(&user, &app);
    }
    let answer = world.app.post_webhook(batch(&targets(n))).await;
    assert_eq!(answer.status(), 200);
    world
}

/// Eight rotations through Signon's scripts as Jobs: never more Jobs at once than
/// `kubernetes.max_jobs`, as the simulated API server saw them; without the cap they overlap.
#[tokio::test]
async fn jobs_never_exceed_the_job_cap_and_every_rotation_finishes() {
    for (cap, within) in [(2, true), (16, false)] {
        let world = seeded(
            WorldOptions {
                issuer: IssuerMode::Job,
                distribution: Distribution::Apply,
                max_jobs: cap,
                ..WorldOptions::default()
            },
            8,
        )
        .await;
        world.run_to_the_end().await;
        let rows = world.rotations().await;
        assert_eq!(rows.len(), 8);
        assert!(rows.iter().all(|r| r.phase == "done"), "{rows:#?}");
        let peak = world.kubernetes.peak_jobs();
        if within {
            assert!(peak <= cap, "{peak} Jobs at once, cap {cap}");
        } else {
            assert!(peak > 2, "steps ran one at a time: {peak} Jobs at once");
        }
    }
}

/// Two passes at once (as after a wake-up while a pass runs): each rotation is stepped by one
/// of them, so each target is minted once and revoked once.
#[tokio::test]
async fn two_passes_at_once_step_each_rotation_once() {
    let world = seeded(
        WorldOptions {
            grace: Duration::ZERO,
            ..WorldOptions::default()
        },
        10,
    )
    .await;
    for _ in 0..60 {
        let (a, b) = tokio::join!(world.engine.tick(), world.engine.tick());
        let (a, b) = (a.unwrap(), b.unwrap());
        if a.is_idle() && b.is_idle() {
            break;
        }
        world.clock.advance(Duration::from_secs(61));
    }
    let rows = world.rotations().await;
    assert!(rows.iter().all(|r| r.phase == "done"), "{rows:#?}");
    let minted = world.signon.minted();
    assert_eq!(minted.len(), 10, "one mint per target: {minted:#?}");
    assert_eq!(world.signon.faults.calls("revoke"), 10, "one revoke each");
}

/// Integration's Signon hangs on every mint for longer than this test waits; production's
/// rotations, on their own upstreams, still all finish. (When a pass stepped its rotations in
/// turn, each production step waited behind the hung one.)
#[tokio::test]
async fn a_hung_signon_in_one_environment_holds_up_no_other() {
    let world = Sims::start()
        .await
        .world_with(
            None,
            WorldOptions {
                background: true,
                grace: Duration::ZERO,
                timeout: Duration::from_secs(120),
                ..WorldOptions::default()
            },
        )
        .await;
    let integration = world.env("integration");
    integration
        .signon
        .faults
        .always("mint", Fault::Hang(Duration::from_secs(300)));
    for (user, app) in targets(3) {
        world.seed_in("integration", &user, &app);
        world.seed_in("production", &user, &app);
    }
    let mut body: serde_json::Value = serde_json::from_slice(&batch(&targets(3))).unwrap();
    let alerts = body["alerts"].as_array().unwrap().clone();
    let both: Vec<serde_json::Value> = alerts
        .iter()
        .flat_map(|alert| {
            let mut other = alert.clone();
            other["labels"]["environment"] = "integration".into();
            let fingerprint = alert["fingerprint"].as_str().unwrap();
            other["fingerprint"] = format!("1{}", &fingerprint[1..]).into();
            [other, alert.clone()]
        })
        .collect();
    body["alerts"] = both.into();
    let answer = world
        .app
        .post_webhook(serde_json::to_vec(&body).unwrap())
        .await;
    assert_eq!(answer.status(), 200);

    let production_done = |rows: &[token_rotator::store::rotations::RotationRow]| {
        rows.iter()
            .filter(|r| r.environment == "production" && r.phase == "done")
            .count()
    };
    for _ in 0..600 {
        if production_done(&world.rotations().await) == 3 {
            break;
        }
        // Waiting steps (the rollout) come round again on the world's clock.
        world.clock.advance(Duration::from_secs(3));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows = world.rotations().await;
    assert_eq!(production_done(&rows), 3, "{rows:#?}");
    let stuck: Vec<_> = rows
        .iter()
        .filter(|r| r.environment == "integration")
        .collect();
    assert_eq!(stuck.len(), 3);
    assert!(
        stuck.iter().all(|r| r.phase == "planned"),
        "integration's mints are still hanging: {stuck:#?}"
    );
}
