//! `token-rotator bench-e2e` (hidden; `bench/e2e.sh` runs it in a release build): the whole
//! service on loopback, `N` expiring tokens delivered as Alertmanager delivers them (groups of
//! up to 50), grace 0, every rotation run to its end. Prints time to all done, rotations per
//! second, peak RSS, journal size, and Slack messages sent with the most in any second.
//!
//! `--profile realistic` gives the simulators a real cluster's latency ([`profile`]) and runs
//! four times: every token in one environment (the figure), the same while 32 clients post
//! webhooks for its first 20 s (intake's p99 beside a busy engine), then half in each of two environments without
//! and with the other's Signon hung. Each run is printed beside its floor ([`floor`]).

mod floor;
mod load;
mod profile;
mod setup;

pub use profile::Profile;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::store::{rotations, threads};
use floor::Floor;
use setup::{Bench, CREDENTIAL, delivery};

const GROUP: usize = 50;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// What one run measured.
struct Run {
    tokens: usize,
    /// Per environment that finished: when its last rotation ended.
    done_at: BTreeMap<String, Duration>,
    done: usize,
    floor: Floor,
    /// Intake beside the busy engine: paced (about 320 webhooks a second), then flat out.
    intake_p99: Option<(load::Measured, load::Measured)>,
    /// This run's peak RSS, KiB.
    rss_kib: u64,
}

pub async fn run(tokens: usize, profile: Profile, intake_only: bool) -> anyhow::Result<()> {
    if profile == Profile::Fast {
        let run = once(tokens, profile, &["production"], None, false).await?;
        if run.done != tokens {
            bail!("{} rotations did not end done", tokens - run.done);
        }
        return Ok(());
    }
    if intake_only {
        let loaded = once(tokens, profile, &["production"], None, true).await?;
        println!();
        print_intake(&loaded);
        return Ok(());
    }
    let all = once(tokens, profile, &["production"], None, false).await?;
    let figure = all.done_at["production"];
    let ratio = figure.as_secs_f64() / all.floor.bound().as_secs_f64();
    println!();
    let loaded = once(tokens, profile, &["production"], None, true).await?;
    println!();
    let calm = once(tokens, profile, &["production", "integration"], None, false).await?;
    println!();
    let hung = once(
        tokens,
        profile,
        &["production", "integration"],
        Some("integration"),
        false,
    )
    .await?;
    let (without, with) = (calm.done_at["production"], hung.done_at["production"]);
    let slowed = with.as_secs_f64() / without.as_secs_f64();
    println!();
    println!("targets (bench/README.md, \"Realistic latency\")");
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    println!(
        "  {} tokens all done within 1.5 x floor and 2 min: {:.1} s = {ratio:.2} x floor {:.1} s: {}",
        all.tokens,
        figure.as_secs_f64(),
        all.floor.bound().as_secs_f64(),
        verdict(ratio <= 1.5 && figure <= Duration::from_secs(120))
    );
    println!(
        "  integration's Signon hung: production in {:.1} s vs {:.1} s without = {slowed:.2} x (<= 1.2): {}",
        with.as_secs_f64(),
        without.as_secs_f64(),
        verdict(slowed <= 1.2)
    );
    print_intake(&loaded);
    println!(
        "  peak RSS of the {} tokens' run {:.1} MiB (<= 100 MiB): {}",
        all.tokens,
        all.rss_kib as f64 / 1024.0,
        verdict(all.rss_kib <= 100 * 1024)
    );
    Ok(())
}

/// The intake target's line.
fn print_intake(loaded: &Run) {
    let Some((paced, flat_out)) = &loaded.intake_p99 else {
        return;
    };
    for (intake, how) in [(paced, "paced, ~320/s"), (flat_out, "flat out")] {
        let met = intake.p99 <= Duration::from_millis(10);
        println!(
            "  intake p99 with the engine at full concurrency, c=32 {how}: {:.1} ms (p50 {:.1} ms) over {} requests ({:.0} req/s, {}) (<= 10 ms): {}",
            intake.p99.as_secs_f64() * 1000.0,
            intake.p50.as_secs_f64() * 1000.0,
            intake.requests,
            intake.requests as f64 / intake.seconds,
            intake.by,
            if met { "met" } else { "NOT met" }
        );
    }
}

/// One run: `tokens` spread over `environments`; `hung`'s Signon never answers; with
/// `intake_load`, 32 clients post webhooks until the rotations end.
async fn once(
    tokens: usize,
    profile: Profile,
    environments: &[&str],
    hung: Option<&str>,
    intake_load: bool,
) -> anyhow::Result<Run> {
    let users: Vec<String> = (0..tokens)
        .map(|i| format!("bench-{i:05}@alphagov.co.uk"))
        .collect();
    let targets: Vec<(String, String)> = users
        .iter()
        .enumerate()
        .map(|(i, u)| (u.clone(), environments[i % environments.len()].to_owned()))
        .collect();
    // Each run's own peak RSS: Linux resets VmHWM on "5" (proc(5), /proc/pid/clear_refs).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let bench = setup::build(&users, environments, profile, hung).await?;
    let http = reqwest::Client::new();
    let started = Instant::now();
    for (group, chunk) in targets.chunks(GROUP).enumerate() {
        let response = http
            .post(&bench.url)
            .bearer_auth(CREDENTIAL)
            .json(&delivery(group, chunk, 0))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("group {group}: HTTP {}", response.status());
        }
    }
    // Intake beside a busy engine: 20 s of webhooks while every rotation is due or running.
    let intake_p99 = if intake_load {
        let paced = load::measure(
            &bench.url,
            targets[0].clone(),
            Duration::from_secs(10),
            true,
        );
        let paced = paced.await?;
        let flat_out = load::measure(
            &bench.url,
            targets[0].clone(),
            Duration::from_secs(10),
            false,
        );
        Some((paced, flat_out.await?))
    } else {
        None
    };
    let waited_for: Vec<&str> = environments
        .iter()
        .copied()
        .filter(|e| Some(*e) != hung)
        .collect();
    let done_at = wait_for(&bench, &waited_for, started).await?;
    let rows = rotations::all_rotations(bench.engine.journal().pool()).await?;
    let done = rows.iter().filter(|r| r.phase == "done").count();
    let floor = Floor::of(&bench, &rows);
    let drain = profile == Profile::Fast;
    report(
        &bench,
        tokens,
        environments,
        hung,
        &done_at,
        done,
        &floor,
        started,
        drain,
    )
    .await?;
    let Bench { stop, server, .. } = bench;
    let _ = stop.send(());
    server.await??;
    Ok(Run {
        tokens,
        done_at,
        done,
        floor,
        intake_p99,
        rss_kib: peak_rss_kib(),
    })
}

/// Waits until every rotation of `environments` has ended; returns when each did.
async fn wait_for(
    bench: &Bench,
    environments: &[&str],
    started: Instant,
) -> anyhow::Result<BTreeMap<String, Duration>> {
    let pool = bench.engine.journal().pool();
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut done_at = BTreeMap::new();
    while done_at.len() < environments.len() {
        if Instant::now() > deadline {
            bail!("not done after 15 minutes");
        }
        let rows = rotations::all_rotations(pool).await?;
        for environment in environments {
            let mine: Vec<_> = rows
                .iter()
                .filter(|r| r.environment == *environment)
                .collect();
            if !mine.is_empty()
                && mine.iter().all(|r| r.next_attempt_at_ms.is_none())
                && !done_at.contains_key(*environment)
            {
                done_at.insert((*environment).to_owned(), started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(done_at)
}

#[allow(clippy::too_many_arguments)]
async fn report(
    bench: &Bench,
    tokens: usize,
    environments: &[&str],
    hung: Option<&str>,
    done_at: &BTreeMap<String, Duration>,
    done: usize,
    floor: &Floor,
    started: Instant,
    drain: bool,
) -> anyhow::Result<()> {
    let pool = bench.engine.journal().pool();
    let hung_note = hung.map_or(String::new(), |h| format!(", {h}'s Signon hung"));
    println!(
        "tokens                 {tokens} in groups of {GROUP}, over {}{hung_note}",
        environments.join(" and ")
    );
    for (environment, at) in done_at {
        println!(
            "{environment:<22} all ended after {:.1} s",
            at.as_secs_f64()
        );
    }
    let last = done_at.values().max().copied().unwrap_or_default();
    println!(
        "rotations per second   {:.1} ({done} done)",
        done as f64 / last.as_secs_f64().max(0.001)
    );
    floor.print();
    if drain {
        // Slack goes on at its own pace: wait for it, for the message counts.
        let deadline = Instant::now() + Duration::from_secs(300);
        while !threads::with_work(pool, jiff::Timestamp::now())
            .await?
            .is_empty()
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let journal_bytes: u64 = ["journal.db", "journal.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(bench.dir.path().join(f)).ok())
        .map(|m| m.len())
        .sum();
    let mut max_per_second = 0;
    for times in bench.slack.post_times().values() {
        for (i, t) in times.iter().enumerate() {
            let within = times[i..]
                .iter()
                .take_while(|u| u.duration_since(*t) < Duration::from_secs(1))
                .count();
            max_per_second = max_per_second.max(within);
        }
    }
    println!(
        "peak RSS               {:.1} MiB",
        peak_rss_kib() as f64 / 1024.0
    );
    println!(
        "journal size           {:.1} MiB",
        journal_bytes as f64 / 1_048_576.0
    );
    println!(
        "Slack                  {} messages, {} edits, max {max_per_second} post(s) in any second per channel, {} refused by the 1/s limit; {} after {:.1} s",
        bench.slack.posted().len(),
        bench.slack.posted().iter().map(|m| m.edits).sum::<usize>(),
        bench.slack.rate_limited(),
        if drain { "drained" } else { "so far" },
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
