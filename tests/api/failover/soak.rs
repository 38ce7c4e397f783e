//! A week of running, compressed: two replicas on one PostgreSQL journal, every simulated day
//! a few minutes' worth of alert-driven rotations (each alert sent by two Alertmanagers, then
//! repeated, then resolved the next day), 5 % of Signon's, the Kubernetes API's and Slack's
//! answers failing (seeded), and the leader SIGKILLed once a day and restarted, so leadership
//! moves every day. Once a day: each replica's RSS and open descriptors, the journal's size and
//! the database's sessions. At the end: the slope of each over days 2-7 is flat, every rotation
//! ended, every acknowledged alert is journaled once, no side effect happened twice, and no
//! token is in the replicas' logs.
//!
//! A day lasts `TOKEN_ROTATOR_SOAK_DAY` (default 12s: the whole test in about two minutes);
//! `TOKEN_ROTATOR_SOAK_DAYS` (7), `TOKEN_ROTATOR_SOAK_TARGETS` (two thirds of a second's
//! worth per day: 8) and `TOKEN_ROTATOR_SOAK_SEED` set the rest. `bench/soak.sh` runs the long
//! form against a release build.
//!
//! Alert-driven only: a scheduled target's period is at least a minute (`src/config/
//! schedules.rs`) and a day or more for its issuers, in real time, and `serve` keeps the
//! system's clock; a compressed day cannot hold one.

mod effects;
mod sample;
mod traffic;

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::pair::{Pair, pair};
use crate::process::kill;
use sample::Sample;
use traffic::Target;

/// The share of upstream calls that fail.
const FAULT_RATE: f64 = 0.05;

fn setting<T: std::str::FromStr>(var: &str) -> Option<T> {
    std::env::var(var).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{var}={v:?} is not a number"))
    })
}

fn day_length() -> Duration {
    std::env::var("TOKEN_ROTATOR_SOAK_DAY").map_or(Duration::from_secs(12), |v| {
        humantime::parse_duration(&v)
            .unwrap_or_else(|e| panic!("TOKEN_ROTATOR_SOAK_DAY={v:?} is not a duration: {e}"))
    })
}

/// One replica's process, its log appended to at every start.
struct Replica {
    child: Child,
    started: Instant,
}

fn start(pair: &Pair, i: usize, log: &Path) -> Replica {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = pair.replicas[i].spawn_with(|command| {
        command.env("RUST_LOG", "info").stderr(Stdio::from(file));
    });
    Replica {
        child,
        started: Instant::now(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_week_of_faults_and_daily_failovers_ends_every_rotation_once_and_grows_nothing() {
    let day = day_length();
    let days: u32 = setting("TOKEN_ROTATOR_SOAK_DAYS").unwrap_or(7);
    assert!(
        days >= 4,
        "slopes over days 2-{days} need at least three days"
    );
    let per_day: usize = setting("TOKEN_ROTATOR_SOAK_TARGETS")
        .unwrap_or_else(|| ((day.as_secs_f64() * 2.0 / 3.0).ceil() as usize).max(4));
    let seed: u64 = setting("TOKEN_ROTATOR_SOAK_SEED").unwrap_or(0x50a4);
    println!(
        "soak: {days} days of {:?}, {per_day} targets a day, faults {}%, seed {seed} \
         (TOKEN_ROTATOR_SOAK_SEED={seed} repeats it)",
        day,
        FAULT_RATE * 100.0
    );
    let mut rng = fastrand::Rng::with_seed(seed);
    let pair = Arc::new(pair(crate::postgres::database().await, [None, None]).await);
    pair.at_full_speed();
    let dir = tempfile::tempdir().unwrap();
    let logs: Vec<PathBuf> = (0..2)
        .map(|i| dir.path().join(format!("replica-{i}.log")))
        .collect();
    let mut replicas = [start(&pair, 0, &logs[0]), start(&pair, 1, &logs[1])];
    pair.replicas[0].ready().await;
    pair.replicas[1].ready().await;
    let mut leader = pair.leader(Duration::from_secs(30)).await;
    pair.signon.faults.at_rate(FAULT_RATE, seed);
    pair.kubernetes
        .faults
        .at_rate(FAULT_RATE, seed.wrapping_add(1));
    pair.slack.faults.at_rate(FAULT_RATE, seed.wrapping_add(2));

    let mut samples = vec![take(&pair, &replicas, 0, leader, None, 0, 0).await];
    let (mut answers, mut users, mut yesterday) = (Vec::new(), Vec::new(), Vec::new());
    for d in 1..=days {
        let dawn = Instant::now();
        let today: Vec<Target> = (0..per_day).map(|n| Target::nth(d, n)).collect();
        for target in &today {
            pair.seed(&target.user);
        }
        let plan = traffic::plan(&mut rng, &today, &yesterday, day);
        let posting = tokio::spawn(traffic::run(Arc::clone(&pair), plan));

        // The failover: while the day's alerts come in and its rotations run.
        tokio::time::sleep_until((dawn + day.mul_f64(0.25 + 0.4 * rng.f64())).into()).await;
        let killed = pair.leader(Duration::from_secs(30)).await;
        let killed_at = Instant::now();
        kill(&mut replicas[killed].child);
        leader = pair.leader(Duration::from_secs(60)).await;
        let takeover = killed_at.elapsed();
        assert_ne!(leader, killed, "day {d}: leadership did not move");
        replicas[killed] = start(&pair, killed, &logs[killed]);
        pair.replicas[killed].ready().await;

        answers.extend(posting.await.unwrap());
        tokio::time::sleep_until((dawn + day).into()).await;
        let acknowledged = answers.iter().filter(|a| a.acknowledged).count();
        let ended = effects::rotations(&pair.db_url)
            .await
            .iter()
            .filter(|r| effects::ended(r))
            .count();
        let sample = take(
            &pair,
            &replicas,
            d,
            leader,
            Some(takeover),
            acknowledged,
            ended,
        )
        .await;
        println!(
            "day {d} ended: r{killed} killed, r{leader} led after {:.2}s; {acknowledged} deliveries acknowledged, {ended} rotations ended",
            takeover.as_secs_f64()
        );
        samples.push(sample);
        users.extend(today.iter().map(|t| t.user.clone()));
        yesterday = today;
    }

    // Every rotation ends and Slack hears of it: the last day's get a day (a minute at least).
    let rows = until_ended(&pair.db_url, users.len(), day.max(Duration::from_secs(60))).await;
    for replica in &mut replicas {
        kill(&mut replica.child);
    }

    let trends = sample::trends(&samples);
    sample::print(&samples, &trends, day);
    let journaled = effects::journaled(&pair.db_url).await;
    let tally = effects::tally(&pair, &users, &rows);
    let lost: Vec<&String> = answers
        .iter()
        .filter(|a| !a.acknowledged)
        .map(|a| &a.fingerprint)
        .collect();
    let mut told_new: HashMap<(String, bool), u64> = HashMap::new();
    for answer in answers.iter().filter(|a| a.acknowledged) {
        *told_new
            .entry((answer.fingerprint.clone(), answer.resolved))
            .or_default() += answer.new;
    }
    let not_once: Vec<_> = told_new
        .keys()
        .filter(|alert| journaled.get(*alert) != Some(&1))
        .collect();
    let told_twice: Vec<_> = told_new.iter().filter(|(_, n)| **n > 1).collect();
    let faults = [
        ("Signon", &pair.signon.faults),
        ("Kubernetes", &pair.kubernetes.faults),
        ("Slack", &pair.slack.faults),
    ];
    let injected: Vec<String> = faults
        .iter()
        .map(|(name, f)| format!("{name} {} of {}", f.injected(), f.all_calls()))
        .collect();
    let slowest = samples.iter().filter_map(|s| s.takeover).max().unwrap();
    println!(
        "faults injected: {}; {} deliveries ({} retried on the other replica), {} acknowledged; \
         {} distinct alerts, {} of them not journaled exactly once; {} rotations {:?}; {} mints, {} tokens revoked \
         ({} revoke requests repeated), {} Secret writes ({} targets' written twice with one value); \
         duplicates {}; {days} failovers, slowest takeover {:.2}s; Slack {} messages, none left to send",
        injected.join(", "),
        answers.len(),
        answers.iter().filter(|a| a.tries > 1).count(),
        answers.len() - lost.len(),
        told_new.len(),
        not_once.len(),
        tally.rotations,
        tally.by_phase,
        tally.mints,
        tally.revokes,
        tally.revokes_repeated,
        tally.secret_writes,
        tally.writes_repeated.len(),
        tally.duplicates.len(),
        slowest.as_secs_f64(),
        pair.slack.messages().len(),
    );

    assert!(lost.is_empty(), "deliveries never acknowledged: {lost:?}");
    assert!(
        not_once.is_empty(),
        "acknowledged alerts not journaled exactly once: {not_once:?}"
    );
    assert!(
        told_twice.is_empty(),
        "one alert told new twice: {told_twice:?}"
    );
    assert!(tally.duplicates.is_empty(), "{:#?}", tally.duplicates);
    // A repeated revoke, or a Secret given the same value twice, changes nothing, and only a
    // kill makes one: a step's request answered (or still in flight, slowed) when its leader
    // died, and taken again by the next. At most one per failover.
    assert!(
        tally.revokes_repeated <= days as usize,
        "{} revoke requests repeated in {days} failovers",
        tally.revokes_repeated
    );
    assert!(
        tally.writes_repeated.len() <= days as usize,
        "Secrets written again in {days} failovers: {:?}",
        tally.writes_repeated
    );
    let (failed, calls) = faults.iter().fold((0, 0), |(failed, calls), (_, f)| {
        (failed + f.injected(), calls + f.all_calls())
    });
    let rate = f64::from(failed) / f64::from(calls);
    assert!(
        faults.iter().all(|(_, f)| f.injected() > 0) && (0.02..0.10).contains(&rate),
        "faults at {:.1} % of calls, not about {} %: {injected:?}",
        rate * 100.0,
        FAULT_RATE * 100.0
    );
    effects::assert_no_secret_in_logs(&pair, &logs);
    assert_flat(&samples, &trends);
}

async fn take(
    pair: &Pair,
    replicas: &[Replica; 2],
    day: u32,
    leader: usize,
    takeover: Option<Duration>,
    acknowledged: usize,
    ended: usize,
) -> Sample {
    let pids = [0, 1].map(|i| replicas[i].child.id());
    let (rss_kib, fds, journal_bytes, connections) = sample::measure(pids, &pair.db_url).await;
    Sample {
        day,
        rss_kib,
        fds,
        ages: [0, 1].map(|i| replicas[i].started.elapsed()),
        journal_bytes,
        connections,
        leader,
        takeover,
        acknowledged,
        ended,
    }
}

/// The journal's rotations once all `expected` have ended and no Slack notice is left to send.
async fn until_ended(db_url: &str, expected: usize, within: Duration) -> Vec<effects::Row> {
    let deadline = Instant::now() + within;
    loop {
        let rows = effects::rotations(db_url).await;
        let unsent = unsent_notices(db_url).await;
        if rows.len() >= expected && rows.iter().all(effects::ended) && unsent == 0 {
            return rows;
        }
        if Instant::now() > deadline {
            let stuck: Vec<_> = rows.iter().filter(|r| !effects::ended(r)).collect();
            panic!(
                "after {within:?}: {} of {expected} rotations journaled, {unsent} Slack notices \
                 unsent, not ended: {stuck:#?}",
                rows.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Slack notices the journal still has to send.
async fn unsent_notices(db_url: &str) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(db_url).await.unwrap();
    let (n,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM notifications WHERE delivered_at_ms IS NULL")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    n
}

/// Sessions one replica can hold: its pool's (`max_connections(8)` in `src/store/mod.rs`), its
/// journal writer's and its election's (`src/leader/postgres.rs`).
const SESSIONS_PER_REPLICA: u64 = 8 + 1 + 1;

/// The bounds, each generous: a leak grows steadily, day after day, while noise goes up and
/// down. Each replica is restarted every other day, so what one process leaks in its own two
/// days shows as the gap between its samples, not as a slope: the slopes catch what grows
/// across restarts (what a replica builds from the journal it starts on, sessions and rows
/// left behind).
fn assert_flat(samples: &[Sample], trends: &sample::Trends) {
    let first = &samples[1];
    let names = [["replica 0", "replica 1"], ["the leader", "the standby"]];
    // Memory: under 5 % of the first day's per day (the day-to-day noise is ~1 %).
    let rss_bound = (first.rss_kib[0] + first.rss_kib[1]) as f64 / 2.0 * 0.05;
    for (names, slopes) in names.iter().zip(trends.rss_kib.slopes()) {
        for (name, slope) in names.iter().zip(slopes) {
            assert!(
                slope < rss_bound,
                "{name}'s RSS grows {slope:.0} KiB a day (bound {rss_bound:.0})"
            );
        }
    }
    // Descriptors: under 4 a day. One left open per rotation would add 8 a day here, per
    // delivery ~40; a leader holds ~10 more than a standby (pooled connections, upstreams).
    for (names, slopes) in names.iter().zip(trends.fds.slopes()) {
        for (name, slope) in names.iter().zip(slopes) {
            assert!(
                slope < 4.0,
                "{name}'s open descriptors grow {slope:.2} a day"
            );
        }
    }
    // The journal keeps every alert and rotation (400 days by default), so it grows with the
    // work: no faster than twice the first day's growth, which also paid for every table's
    // and index's first pages.
    let first_growth = (first.journal_bytes - samples[0].journal_bytes) as f64;
    let journal = sample::slope(&trends.journal_bytes);
    assert!(
        journal < 2.0 * first_growth,
        "the journal grows {journal:.0} bytes a day, over twice the first day's {first_growth:.0}"
    );
    // Sessions: under 2 a day (pools open connections on demand: a few up or down day to
    // day), and never more than both replicas can hold: a killed leader's left behind would
    // add ~10 a day.
    let sessions = sample::slope(&trends.connections);
    assert!(
        sessions < 2.0,
        "PostgreSQL sessions grow {sessions:.2} a day"
    );
    let most = samples.iter().map(|s| s.connections).max().unwrap();
    assert!(
        most <= 2 * SESSIONS_PER_REPLICA,
        "{most} PostgreSQL sessions: more than two replicas hold"
    );
}
