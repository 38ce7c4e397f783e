//! Scheduled rotation with Synoptic's credential API: generate, distribute, then let the old
//! token expire (or disable it), every period, with one period of overlap.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use token_rotator::clock::Clock;
use token_rotator::config::{ScheduleDistribution, ScheduleSettings};
use token_rotator::engine::Schedule;
use token_rotator::sim::Fault;

use crate::world::{Sims, World, WorldOptions};

pub(crate) const DAY: Duration = Duration::from_secs(86400);
const NAME: &str = "weather-dashboard";

pub(crate) fn daily(path: &std::path::Path, disable_old: bool) -> ScheduleSettings {
    ScheduleSettings {
        issuer: token_rotator::config::ScheduleIssuer::Synoptic,
        schedule: Schedule {
            name: NAME.into(),
            api_user: NAME.into(),
            environment: "production".into(),
            application: "synoptic".into(),
            every: DAY,
            overlap: DAY,
            window: None,
            jitter: Duration::ZERO,
            disable_old,
            handover: None,
        },
        distribution: ScheduleDistribution::File {
            path: path.display().to_string(),
            mode: 0o600,
            owner: None,
        },
    }
}

/// A world with one daily Synoptic target whose file holds a live token expiring in a day.
async fn world(disable_old: bool, tags: &[&str]) -> (World, std::path::PathBuf, String) {
    let sims = Sims::start().await;
    let dir = tempfile::tempdir().unwrap().keep();
    let path = dir.join("synoptic.token");
    let first = sims.synoptic.add_token(Some(sims.clock.now() + DAY), tags);
    std::fs::write(&path, &first).unwrap();
    let options = WorldOptions {
        schedules: vec![daily(&path, disable_old)],
        grace: Duration::from_secs(600),
        ..WorldOptions::default()
    };
    (sims.world_with(None, options).await, path, first)
}

#[tokio::test]
async fn a_daily_target_rotates_ten_times_in_ten_days_never_without_a_valid_token() {
    let (world, path, _) = world(false, &[]).await;
    let synoptic = world.synoptic();
    let started = world.clock.now();
    let mut max_live = 0;
    // Ten days, hour by hour; the simulator is asked at every step.
    while world.clock.now() < started + DAY * 10 - Duration::from_secs(60) {
        world.engine.run_until_idle().await.unwrap();
        let live = synoptic.live().len();
        max_live = max_live.max(live);
        assert!(live <= 2, "{live} live tokens at {}", world.clock.now());
        let in_file = std::fs::read_to_string(&path).unwrap();
        assert!(
            synoptic.is_live(&in_file),
            "the file's token is not valid at {}: {:#?}",
            world.clock.now(),
            world.rotations().await
        );
        world.clock.advance(Duration::from_secs(3600));
    }
    let rows = world.rotations().await;
    let done = rows.iter().filter(|r| r.phase == "done").count();
    assert_eq!(done, 10, "{rows:#?}");
    assert_eq!(
        max_live, 2,
        "the overlap: the old token stays valid beside the new"
    );
    assert!(rows.iter().all(|r| r.trigger == format!("schedule:{NAME}")));
    // Asked-for expiries are journaled: every + overlap after each rotation.
    for row in &rows {
        let life = row.new_token_expires_at_ms.unwrap() - row.created_at_ms;
        assert!(
            (2 * 86_400_000 - 60_000..=2 * 86_400_000).contains(&life),
            "{life}"
        );
    }
    // The old token is left to expire by itself, and the audit says so.
    let audit = world.audit(&rows[1].id).await;
    assert!(
        audit
            .iter()
            .any(|a| a.reason.contains("left to expire by itself")),
        "{audit:#?}"
    );
    // Settings were cloned from the old token each time.
    assert!(
        synoptic
            .tokens()
            .iter()
            .all(|t| t.settings == synoptic.tokens()[0].settings)
    );
}

#[tokio::test]
async fn a_restart_between_due_and_issued_does_not_rotate_twice() {
    let (world, path, first) = world(false, &[]).await;
    let synoptic = world.synoptic();
    // The create happens but its answer is lost, as if the service died right then.
    synoptic.faults.next("create-answer", Fault::Status(502), 1);
    world.engine.run_until_idle().await.unwrap();
    assert_eq!(synoptic.tokens().len(), 2, "the token was made");
    assert_eq!(world.rotations().await[0].phase, "planned");
    let made = synoptic.tokens()[1].value.clone();
    let (sims, dir) = world.crash().await;
    let options = WorldOptions {
        schedules: vec![daily(&path, false)],
        grace: Duration::from_secs(600),
        ..WorldOptions::default()
    };
    let world = sims.world_with(Some(dir), options).await;
    world.run_to_the_end().await;
    let rows = world.rotations().await;
    assert_eq!(rows.len(), 1, "one rotation for one due time");
    // Synoptic's list cannot tie the unlisted token to this rotation: a person is asked, told
    // the token by its keyed name only.
    assert_eq!(rows[0].phase, "failed", "{rows:#?}");
    let outcome = rows[0].outcome.clone().unwrap_or_default();
    let names = token_rotator::secrets::TokenNamer::new(
        world.keys(),
        token_rotator::adapters::synoptic::NAMES,
    );
    assert!(
        outcome.contains(&format!("syn-{}", names.name(&made))),
        "{outcome}"
    );
    assert!(!outcome.contains(&made), "never the token in clear");
    assert_eq!(
        world.synoptic().tokens().len(),
        2,
        "no second create, and nothing adopted"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
    assert!(world.synoptic().is_live(&first));
}

#[tokio::test]
async fn a_create_that_never_happened_is_made_again() {
    let (world, path, first) = world(false, &[]).await;
    let synoptic = world.synoptic();
    // Refused before anything was made: nothing unlisted to account for on the next try.
    synoptic.faults.next("create", Fault::Status(502), 1);
    world.run_to_the_end().await;
    let rows = world.rotations().await;
    assert_eq!(rows[0].phase, "done", "{rows:#?}");
    assert_eq!(synoptic.tokens().len(), 2, "one token made");
    let in_file = std::fs::read_to_string(&path).unwrap();
    assert_ne!(in_file, first);
    assert!(synoptic.is_live(&in_file));
}

#[tokio::test]
async fn disabling_a_protected_old_token_fails_naming_the_tag() {
    let (world, path, first) = world(true, &["protected"]).await;
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "failed", "{row:#?}");
    let outcome = row.outcome.clone().unwrap_or_default();
    assert!(outcome.contains("protected"), "{outcome}");
    // Not retried: a protected tag does not go away.
    assert_eq!(world.synoptic().faults.calls("disable"), 1);
    // The new token is in place and works; the protected one is untouched.
    let in_file = std::fs::read_to_string(&path).unwrap();
    assert!(world.synoptic().is_live(&in_file));
    assert!(world.synoptic().is_live(&first));
}

#[tokio::test]
async fn the_next_due_time_is_in_status_and_metrics() {
    let (world, _, _) = world(false, &[]).await;
    world.run_to_the_end().await;
    let (_, metrics) = world.app.get_text("/metrics").await;
    assert!(
        metrics.contains(
            "token_rotator_next_rotation_timestamp_seconds{schedule=\"weather-dashboard\"}"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("api_user=\"weather-dashboard\",application=\"synoptic\""));
    let schedules = token_rotator::commands::status::schedules(world.engine.journal())
        .await
        .unwrap();
    let table = token_rotator::commands::status::schedule_table(&schedules);
    assert!(
        table.contains("weather-dashboard") && table.contains("next due"),
        "{table}"
    );
    // Due a day after the rotation that just ran.
    let due = schedules[0].1;
    let ran = world.rotations().await[0].created_at_ms;
    assert_eq!(due - ran, 86_400_000);
}

#[test]
fn the_token_file_is_old_or_new_never_torn_when_killed_between_write_and_rename() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "old-token-content").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_token-rotator"))
        .args([
            "write-token-file",
            path.to_str().unwrap(),
            "--pause-before-rename",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"new-token-content")
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("prepared"), "{line}");
    child.kill().unwrap(); // SIGKILL, between the write and the rename
    child.wait().unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "old-token-content");
    // The next run replaces the leftover temporary file and completes.
    let mut again = Command::new(env!("CARGO_BIN_EXE_token-rotator"))
        .args(["write-token-file", path.to_str().unwrap()])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    again
        .stdin
        .take()
        .unwrap()
        .write_all(b"new-token-content")
        .unwrap();
    assert!(again.wait().unwrap().success());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "new-token-content");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("token.previous")).unwrap(),
        "old-token-content"
    );
}

/// Moves the world's clock to the next Saturday, 00:00 UTC.
fn to_saturday(world: &World) {
    let now = world.clock.now();
    let zoned = now.to_zoned(jiff::tz::TimeZone::UTC);
    let mut date = zoned.date();
    loop {
        date = date.tomorrow().unwrap();
        if date.weekday() == jiff::civil::Weekday::Saturday {
            break;
        }
    }
    let saturday = date.to_zoned(jiff::tz::TimeZone::UTC).unwrap().timestamp();
    world.clock.advance(Duration::from_secs(
        (saturday.as_second() - now.as_second()) as u64,
    ));
}

#[tokio::test]
async fn a_due_time_outside_the_window_waits_for_its_next_opening() {
    let sims = Sims::start().await;
    let dir = tempfile::tempdir().unwrap().keep();
    let path = dir.join("synoptic.token");
    let first = sims.synoptic.add_token(None, &[]);
    std::fs::write(&path, &first).unwrap();
    let mut settings = daily(&path, false);
    settings.schedule.window =
        Some(token_rotator::engine::Window::parse("Mon-Fri 09:00-16:00 UTC").unwrap());
    let options = WorldOptions {
        schedules: vec![settings],
        grace: Duration::from_secs(600),
        ..WorldOptions::default()
    };
    let world = sims.world_with(None, options).await;
    to_saturday(&world);
    // The weekend, hour by hour: due, but outside the window.
    for _ in 0..(2 * 24 + 9) {
        world.engine.run_until_idle().await.unwrap();
        world.clock.advance(Duration::from_secs(3600));
    }
    assert!(
        world.rotations().await.is_empty(),
        "nothing at the weekend or before 09:00"
    );
    world.engine.run_until_idle().await.unwrap();
    let rows = world.rotations().await;
    assert_eq!(rows.len(), 1, "Monday 09:00: the missed due time runs");
    let started = rows[0].created_at_ms / 1000;
    let local = jiff::Timestamp::from_second(started)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC);
    assert_eq!(
        (local.weekday(), local.hour()),
        (jiff::civil::Weekday::Monday, 9)
    );
}

#[tokio::test]
async fn the_old_token_is_disabled_when_the_rule_says_so_and_a_full_list_fails_loudly() {
    let (world, _, first) = world(true, &[]).await;
    world.run_to_the_end().await;
    assert_eq!(world.rotations().await[0].phase, "done");
    assert!(!world.synoptic().is_live(&first), "disabled explicitly");

    let (world, _, _) = world_with_many_tokens().await;
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "failed");
    assert!(
        row.outcome
            .as_deref()
            .unwrap_or_default()
            .contains("lists only 100"),
        "{row:#?}"
    );
}

async fn world_with_many_tokens() -> (World, std::path::PathBuf, String) {
    let (world, path, first) = world(false, &[]).await;
    for _ in 0..100 {
        world.synoptic().add_token(None, &[]);
    }
    (world, path, first)
}

#[tokio::test]
async fn a_scheduled_target_in_a_shadow_environment_only_plans() {
    let sims = Sims::start().await;
    let dir = tempfile::tempdir().unwrap().keep();
    let path = dir.join("synoptic.token");
    let first = sims.synoptic.add_token(Some(sims.clock.now() + DAY), &[]);
    std::fs::write(&path, &first).unwrap();
    let options = WorldOptions {
        schedules: vec![daily(&path, false)],
        shadow: vec!["production"],
        ..WorldOptions::default()
    };
    let world = sims.world_with(None, options).await;
    world.run_to_the_end().await;
    let rows = world.rotations().await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].mode, "shadow");
    assert_eq!(rows[0].phase, "planned_only", "{rows:#?}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        first,
        "nothing written"
    );
    assert_eq!(world.synoptic().live().len(), 1, "nothing minted");
}
