//! The journal's disk full (a small tmpfs, filled while webhooks arrive and a rotation runs):
//! webhooks are answered 503 saying so, never 200 without a durable write; `/readyz` says why,
//! whether the intake's write or the engine's was refused; nothing acknowledged is lost, no side
//! effect is done twice or half-recorded; and once space is freed the service goes on by itself,
//! without a restart. SQLite here, PostgreSQL in [`postgres`]. Needs root to mount the tmpfs:
//! skips, saying so, where it cannot (CI runs as root, so it runs there).

mod postgres;
mod tmpfs;

use std::time::Duration;

use token_rotator::engine::Phase;

use crate::helpers::alert_body;
use crate::world::{GRACE, Sims, World, WorldOptions};
use tmpfs::Tmpfs;

fn alert(user: &str, fingerprint: &str) -> Vec<u8> {
    alert_body(
        fingerprint,
        &[
            ("alertname", "SignonApiUserTokenExpirySoon"),
            ("environment", "production"),
            ("api_user", user),
            ("application", "Publishing API"),
        ],
    )
}

/// Posts webhooks one after another until `stop`, each a new alert for `user`: the fingerprints
/// acknowledged (200), and the bodies of the 503s.
async fn post_until(
    app: &crate::helpers::TestApp,
    user: &str,
    first: u64,
    stop: &std::sync::atomic::AtomicBool,
) -> (Vec<String>, Vec<String>) {
    let mut answers = Answers::default();
    let mut n = first;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        answers.post(app, user, n).await;
        n += 1;
    }
    (answers.acknowledged, answers.refused)
}

/// What the webhooks got: the fingerprints acknowledged (200), and the bodies of the 503s.
#[derive(Default)]
struct Answers {
    acknowledged: Vec<String>,
    refused: Vec<String>,
}

impl Answers {
    /// Posts alert `n` for `user`; anything but 200 or 503 fails the test.
    async fn post(&mut self, app: &crate::helpers::TestApp, user: &str, n: u64) {
        let fingerprint = format!("{n:016x}");
        let response = app.post_webhook(alert(user, &fingerprint)).await;
        match response.status().as_u16() {
            200 => self.acknowledged.push(fingerprint),
            503 => self.refused.push(response.text().await.unwrap()),
            other => panic!("{other}: {}", response.text().await.unwrap()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_loses_nothing_acknowledged_and_recovers_without_a_restart() {
    let Some(disk) = Tmpfs::mount("8m") else {
        return;
    };
    let dir = tempfile::tempdir_in(disk.path()).unwrap();
    let world = Sims::start()
        .await
        .world_with(Some(dir), WorldOptions::default())
        .await;
    let user = "full-disk@alphagov.co.uk";
    let old = world.seed(user, "Publishing API");
    let first = world
        .app
        .post_webhook(alert(user, "00000000000f0001"))
        .await;
    assert_eq!(first.status(), 200);
    world.run_until(Phase::Grace).await;

    // The disk fills while webhooks arrive.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let posting = post_until(&world.app, user, 0xd15c_0000, &stop);
    let filling = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        tokio::task::block_in_place(|| disk.fill());
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    let ((mut acknowledged, refused), ()) = tokio::join!(posting, filling);
    println!(
        "while filling: {} acknowledged, {} refused",
        acknowledged.len(),
        refused.len()
    );
    assert!(!refused.is_empty(), "a full disk refused nothing");
    for body in &refused {
        let error: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            error["detail"],
            "journal unavailable: its disk is full; nothing was recorded; try again later",
            "{body}"
        );
    }
    let (status, body) = world.app.get_text("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("journal disk full"), "{body}");

    // The grace ends while the disk is full: the engine's pass fails or does what it can
    // journal; none of it half-recorded.
    world.clock.advance(GRACE + Duration::from_secs(1));
    let full_pass = world.engine.run_until_idle().await;
    println!("engine pass on a full disk: {full_pass:?}");

    // Space freed, no restart: intake, readiness and the engine all go on.
    disk.free();
    let freed = std::time::Instant::now();
    let after = world
        .app
        .post_webhook(alert(user, "00000000000f0002"))
        .await;
    assert_eq!(after.status(), 200, "{}", after.text().await.unwrap());
    acknowledged.push("00000000000f0002".into());
    let (status, body) = world.app.get_text("/readyz").await;
    assert_eq!(status, 200, "{body}");
    let ready_after = freed.elapsed();
    world.run_to_the_end().await;
    println!(
        "space freed: webhook 200 and /readyz 200 after {:.3}s, rotation done after {:.3}s",
        ready_after.as_secs_f64(),
        freed.elapsed().as_secs_f64()
    );

    assert_done_once_and_nothing_lost(&world, user, &old, &acknowledged).await;
}

/// After the disk was freed: the rotation ended once (one mint, the old token revoked once, the
/// Secret holding the live new token), and every alert acknowledged is in the journal. Returns
/// how many alerts the journal holds.
async fn assert_done_once_and_nothing_lost(
    world: &World,
    user: &str,
    old: &str,
    acknowledged: &[String],
) -> usize {
    let rotations = world.rotations().await;
    assert_eq!(rotations.len(), 1, "{rotations:#?}");
    assert_eq!(rotations[0].phase, Phase::Done.as_str(), "{rotations:#?}");
    assert_eq!(world.signon.minted().len(), 1, "one mint");
    assert_eq!(
        world.signon.revoked().len(),
        1,
        "the old token revoked once"
    );
    assert!(!world.signon.is_live(old));
    let new = world.secret(user, "Publishing API").unwrap();
    assert!(
        world.signon.is_live(&new),
        "the Secret holds the live new token"
    );
    let journaled: std::collections::HashSet<String> = world
        .engine
        .journal()
        .alerts()
        .await
        .unwrap()
        .into_iter()
        // Journaled as Alertmanager's fingerprint and a hash of the labels.
        .filter_map(|row| row.fingerprint.split(':').next().map(str::to_owned))
        .collect();
    for fingerprint in acknowledged {
        assert!(
            journaled.contains(fingerprint),
            "{fingerprint} was acknowledged but is not in the journal"
        );
    }
    journaled.len()
}

/// The engine's own write refused for space, with no webhook arriving meanwhile: `/readyz` says
/// the disk is full as it does when the intake's write is refused (it answered 200 before: only
/// the intake's refusals counted, and reads still work on a full disk), and is ready again as
/// soon as a write commits, not 10 s later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engines_write_refused_for_space_makes_readyz_say_so_until_a_write_commits() {
    let Some(disk) = Tmpfs::mount("8m") else {
        return;
    };
    let dir = tempfile::tempdir_in(disk.path()).unwrap();
    let world = Sims::start()
        .await
        .world_with(Some(dir), WorldOptions::default())
        .await;
    let user = "engine-full-disk@alphagov.co.uk";
    world.seed(user, "Publishing API");
    let first = world
        .app
        .post_webhook(alert(user, "00000000000e0001"))
        .await;
    assert_eq!(first.status(), 200);
    world.run_until(Phase::Grace).await;

    tokio::task::block_in_place(|| disk.fill());
    // Full, but nothing has been refused yet: `/readyz` does not guess.
    let (status, body) = world.app.get_text("/readyz").await;
    assert_eq!(status, 200, "{body}");

    // The grace ends on the full disk: the step's phase change cannot grow the WAL.
    world.clock.advance(GRACE + Duration::from_secs(1));
    let refused = world.engine.tick().await.expect_err("a write found room");
    let token_rotator::engine::EngineError::Store(error) = &refused;
    assert!(error.is_disk_full(), "{refused}");
    let refused_at = std::time::Instant::now();
    let (status, body) = world.app.get_text("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("journal disk full"), "{body}");

    // Space freed: the engine's next write commits, and that is what makes the replica ready.
    disk.free();
    let freed = std::time::Instant::now();
    world.engine.tick().await.unwrap();
    let (status, body) = world.app.get_text("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        refused_at.elapsed() < token_rotator::store::DISK_FULL_FOR,
        "ready only because the window passed"
    );
    println!(
        "the engine's write refused on a full disk: /readyz 503; space freed: the engine's next \
         write committed and /readyz 200 after {:.3}s",
        freed.elapsed().as_secs_f64()
    );
    world.run_to_the_end().await;
    let rotations = world.rotations().await;
    assert_eq!(rotations[0].phase, Phase::Done.as_str(), "{rotations:#?}");
    assert_eq!(world.signon.minted().len(), 1, "one mint");
    assert_eq!(world.signon.revoked().len(), 1, "one revoke");
}
