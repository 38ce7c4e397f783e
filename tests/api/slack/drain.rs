//! How fast the notifier drains a backlog against the fastest Slack allows: 200 rotations over
//! 20 channels, told as ten deliveries (one thread per delivery and channel), measured from the
//! first call Slack saw to the last.
//!
//! The floor is Slack's own limits applied to the calls the simulator counted
//! (docs.slack.dev/apis/web-api/rate-limits): `chat.postMessage` "generally allows posting one
//! message per second per channel", so a channel with `n` posts needs `n - 1` seconds;
//! `chat.update` is Tier 3, "50+ per minute" for the workspace (the simulator counts 50 in any
//! 60 s), so `e` edits need `(e - 1) / 50` whole minutes.

use std::collections::HashSet;

use super::*;

const CHANNELS: usize = 20;
const DELIVERIES: usize = 10;

fn config() -> String {
    let mut config = String::from(
        "[environments.production]\n[environments.integration]\n\n[slack]\nchannel = \"C0DEFAULT\"\n",
    );
    for c in 0..CHANNELS {
        config.push_str(&format!(
            "\n[[rules]]\nname = \"app-{c:02}\"\naction = \"rotate\"\nslack_channel = \"C0CHAN{c:02}\"\nmatch = {{ application = \"App {c:02}\" }}\n"
        ));
    }
    config
}

/// One delivery: a target in every channel, each alert with a fingerprint of its own.
fn delivery(d: usize) -> Vec<u8> {
    let alerts: Vec<Value> = (0..CHANNELS)
        .map(|c| {
            let one: Value = serde_json::from_slice(&alert_body(
                &format!("{:016x}", d * CHANNELS + c + 1),
                &[
                    ("alertname", "SignonApiUserTokenExpirySoon"),
                    ("environment", "production"),
                    ("api_user", &user(d, c)),
                    ("application", &format!("App {c:02}")),
                ],
            ))
            .unwrap();
            one["alerts"][0].clone()
        })
        .collect();
    let mut body: Value = serde_json::from_slice(&alert_body("0", &[])).unwrap();
    body["alerts"] = json!(alerts);
    body["groupKey"] = json!(format!("{{}}:{{delivery=\"{d}\"}}"));
    serde_json::to_vec(&body).unwrap()
}

fn user(d: usize, c: usize) -> String {
    format!("drain-{d:02}-{c:02}@alphagov.co.uk")
}

/// Slack's floor for these calls: the busiest channel's posts at one a second, or the edits at
/// 50 in any minute (a burst of 50 at once, the next 50 a minute later, and so on), whichever is
/// longer.
fn floor(posts_per_channel: usize, edits: usize) -> Duration {
    let posts = Duration::from_secs(posts_per_channel.saturating_sub(1) as u64);
    let edits = Duration::from_secs(60 * (edits.saturating_sub(1) / 50) as u64);
    posts.max(edits)
}

/// Waits until every message is out; the old pace took minutes, so this waits up to ten.
async fn drained(world: &World) {
    let pool = world.engine.journal().pool().clone();
    let deadline = Instant::now() + Duration::from_secs(600);
    while !threads::with_work(&pool, world.clock.now())
        .await
        .unwrap()
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "Slack messages still queued after 600 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// A timing target, so a benchmark (see bench/README.md, "Slack's drain"): run by
// `bench/slack-drain.sh`, which fails below the target, not by every suite run.
#[tokio::test]
#[ignore = "a benchmark: bench/slack-drain.sh runs it"]
async fn a_backlog_in_twenty_channels_drains_at_nine_tenths_of_slacks_pace_or_better() {
    let world = Sims::start()
        .await
        .world_with(
            None,
            WorldOptions {
                config_toml: Some(config()),
                ..threads_options()
            },
        )
        .await;
    for d in 0..DELIVERIES {
        for c in 0..CHANNELS {
            world.seed(&user(d, c), &format!("App {c:02}"));
        }
    }
    for d in 0..DELIVERIES {
        let response = world.app.post_webhook(delivery(d)).await;
        assert!(response.status().is_success(), "{}", response.status());
    }
    world.run_to_the_end().await;
    let rows = world.rotations().await;
    assert_eq!(rows.len(), CHANNELS * DELIVERIES);
    assert!(rows.iter().all(|r| r.phase == "done"), "{rows:#?}");
    drained(&world).await;

    let posts = world.slack.post_times();
    let edits = world.slack.edit_times();
    assert_eq!(
        posts.len(),
        CHANNELS,
        "one pace per channel: {:?}",
        posts.keys()
    );
    let busiest = posts.values().map(Vec::len).max().unwrap();
    let first = posts.values().flatten().chain(&edits).min().unwrap();
    let last = posts.values().flatten().chain(&edits).max().unwrap();
    let achieved = last.duration_since(*first);
    let floor = floor(busiest, edits.len());
    let ratio = floor.as_secs_f64() / achieved.as_secs_f64();
    println!(
        "Slack drain: {} posts (busiest channel {busiest}), {} edits in {:.1} s; floor {:.1} s; ratio {ratio:.2}",
        posts.values().map(Vec::len).sum::<usize>(),
        edits.len(),
        achieved.as_secs_f64(),
        floor.as_secs_f64()
    );
    assert_eq!(world.slack.rate_limited(), 0, "no call past Slack's limits");
    // Every rotation told, once: each target named in exactly one thread's parent.
    let messages = world.slack.posted();
    let parents = parents(&messages);
    assert_eq!(
        parents.len(),
        CHANNELS * DELIVERIES,
        "one parent per delivery and channel"
    );
    let channels: HashSet<&str> = parents.iter().map(|m| m.channel.as_str()).collect();
    assert_eq!(channels.len(), CHANNELS);
    for d in 0..DELIVERIES {
        for c in 0..CHANNELS {
            let named = parents
                .iter()
                .filter(|m| m.all_text().contains(&user(d, c)))
                .count();
            assert_eq!(named, 1, "{} in {named} parents", user(d, c));
        }
    }
    assert!(
        ratio >= 0.9,
        "drained in {:.1} s against Slack's floor of {:.1} s: {ratio:.2} of the allowed pace",
        achieved.as_secs_f64(),
        floor.as_secs_f64()
    );
}
