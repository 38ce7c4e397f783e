//! Threads: one parent per delivery, replies at Slack's pace, edits, broadcasts, refusals.

use super::*;

#[tokio::test]
async fn a_batch_of_twenty_is_one_thread_at_slacks_pace_and_survives_a_429_storm() {
    let world = Sims::start()
        .await
        .world_with(None, threads_options())
        .await;
    let targets: Vec<(String, String)> = (0..20)
        .map(|i| {
            (
                format!("app-{i:02}@alphagov.co.uk"),
                "Publishing API".to_owned(),
            )
        })
        .collect();
    for (user, app) in &targets {
        world.seed(user, app);
    }
    // Slack says "slow down" to the first five posts, whatever we do.
    world
        .slack
        .faults
        .next("chat.postMessage", Fault::Status(429), 5);
    assert_eq!(world.app.post_webhook(batch(&targets)).await.status(), 200);
    world.run_to_the_end().await;
    wait_for_slack(&world).await;

    let messages = world.slack.posted();
    let parents = parents(&messages);
    assert_eq!(
        parents.len(),
        1,
        "one parent for one delivery: {messages:#?}"
    );
    let parent = parents[0];
    assert_eq!(parent.channel, CHANNEL);
    // Edited only when what it shows changed: the storm may hold the parent back until every
    // target is done, and then there is nothing to edit.
    assert!(parent.edits <= 20, "{} edits", parent.edits);
    assert!(
        parent.all_text().contains("20 done"),
        "{}",
        parent.all_text()
    );
    let replies: Vec<&Message> = messages.iter().filter(|m| m.thread_ts.is_some()).collect();
    assert!(!replies.is_empty());
    for reply in &replies {
        assert_eq!(reply.thread_ts.as_deref(), Some(parent.ts.as_str()));
        assert!(!reply.broadcast, "nothing failed, so nothing is broadcast");
    }
    let thread: String = replies.iter().map(|m| m.all_text()).collect();
    for (user, _) in &targets {
        assert!(
            thread.contains(&format!("Rotated the token of `{user}`")),
            "{user}'s outcome is missing from the thread"
        );
        assert!(thread.contains(&format!(
            "`{user}` / *Publishing API* (production): planned → issued"
        )));
    }
    // Coalesced: far fewer replies than the 180 phase changes they tell.
    assert!(replies.len() < 20, "{} replies", replies.len());
    // Slack's pace: no post came faster than 1/s per channel, so the simulator never had to
    // refuse one on its own; the injected storm was sat out, and nothing was lost.
    assert_eq!(world.slack.rate_limited(), 0);
    assert!(world.slack.faults.calls("chat.postMessage") as usize >= messages.len() + 5);
    for times in world.slack.post_times().values() {
        for pair in times.windows(2) {
            assert!(
                pair[1] - pair[0] >= Duration::from_millis(1000),
                "{:?}",
                pair[1] - pair[0]
            );
        }
    }
    assert!(
        world
            .notifications()
            .await
            .iter()
            .all(|n| n.delivered_at_ms.is_some())
    );
}

#[tokio::test]
async fn a_restart_mid_batch_keeps_the_thread() {
    let sims = Sims::start().await;
    let world = sims.world_with(None, threads_options()).await;
    let targets: Vec<(String, String)> = (0..3)
        .map(|i| {
            (
                format!("restart-{i}@alphagov.co.uk"),
                "Content Store".to_owned(),
            )
        })
        .collect();
    for (user, app) in &targets {
        world.seed(user, app);
    }
    world.app.post_webhook(batch(&targets)).await;
    world.run_until(Phase::Issued).await;
    // Wait for the parent to be posted, then crash before the rest is told.
    let deadline = Instant::now() + Duration::from_secs(10);
    while parents(&world.slack.posted()).is_empty() {
        assert!(Instant::now() < deadline, "the parent was never posted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (sims, dir) = world.crash().await;
    let world = sims.world_with(Some(dir), threads_options()).await;
    world.run_to_the_end().await;
    wait_for_slack(&world).await;

    let messages = world.slack.posted();
    let parents = parents(&messages);
    assert_eq!(parents.len(), 1, "the restart made no second parent");
    let thread: String = messages
        .iter()
        .filter(|m| m.thread_ts.as_deref() == Some(parents[0].ts.as_str()))
        .map(Message::all_text)
        .collect();
    for (user, _) in &targets {
        assert!(
            thread.contains(&format!("Rotated the token of `{user}`")),
            "{thread}"
        );
    }
    assert!(parents[0].all_text().contains("3 done"));
}

#[tokio::test]
async fn label_values_with_markup_and_emoji_arrive_escaped_and_intact() {
    let world = Sims::start()
        .await
        .world_with(None, threads_options())
        .await;
    let app = "Publishing <API> & 🚀 café";
    world.seed("escape@alphagov.co.uk", app);
    world
        .app
        .post_webhook(batch(&[("escape@alphagov.co.uk".into(), app.into())]))
        .await;
    world.run_to_the_end().await;
    wait_for_slack(&world).await;
    let text: String = world.slack.posted().iter().map(Message::all_text).collect();
    assert!(
        text.contains("Publishing &lt;API&gt; &amp; 🚀 café"),
        "{text}"
    );
    assert!(!text.contains("<API>"), "a raw label value reached Slack");
}

#[tokio::test]
async fn a_failure_is_broadcast_to_the_channel_too() {
    let world = Sims::start()
        .await
        .world_with(None, threads_options())
        .await;
    world.seed("fails@alphagov.co.uk", "Publishing API");
    world.fail_signon("mint", Fault::Status(403), 1);
    world
        .app
        .post_webhook(batch(&[(
            "fails@alphagov.co.uk".into(),
            "Publishing API".into(),
        )]))
        .await;
    world.run_to_the_end().await;
    wait_for_slack(&world).await;
    let messages = world.slack.posted();
    let broadcast: Vec<&Message> = messages.iter().filter(|m| m.broadcast).collect();
    assert_eq!(broadcast.len(), 1, "{messages:#?}");
    assert!(
        broadcast[0].all_text().contains("failed"),
        "{}",
        broadcast[0].all_text()
    );
    assert!(parents(&messages)[0].all_text().contains("1 failed"));
}

#[tokio::test]
async fn slack_refusing_the_channel_shows_on_readyz_and_in_metrics_and_loses_nothing() {
    let world = Sims::start()
        .await
        .world_with(None, threads_options())
        .await;
    world
        .slack
        .faults
        .always("chat.postMessage", Fault::SlackError("channel_not_found"));
    world.seed("refused@alphagov.co.uk", "Content Store");
    world
        .app
        .post_webhook(batch(&[(
            "refused@alphagov.co.uk".into(),
            "Content Store".into(),
        )]))
        .await;
    world.run_to_the_end().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let readyz = loop {
        let (status, body) = world.app.get_text("/readyz").await;
        assert_eq!(status, 200, "Slack trouble does not make intake unready");
        if body.contains("channel_not_found") {
            break body;
        }
        assert!(Instant::now() < deadline, "readyz never told: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(readyz.contains(CHANNEL), "{readyz}");
    let (_, metrics) = world.app.get_text("/metrics").await;
    assert!(metrics.contains("token_rotator_slack_errors_total{error=\"channel_not_found\"}"));
    assert!(
        metrics.contains("token_rotator_slack_refused 1"),
        "{metrics}"
    );
    assert!(world.slack.posted().is_empty());
    // Someone invites the app to the channel: everything queued goes out.
    world.slack.faults.clear("chat.postMessage");
    wait_for_slack(&world).await;
    let text: String = world.slack.posted().iter().map(Message::all_text).collect();
    assert!(
        text.contains("Rotated the token of `refused@alphagov.co.uk`"),
        "{text}"
    );
    let (_, readyz) = world.app.get_text("/readyz").await;
    assert!(!readyz.contains("channel_not_found"), "{readyz}");
}

/// The one rotation waiting for approval, once the alert is in.

#[tokio::test]
async fn a_long_batch_is_summarised_within_block_kits_limits() {
    let world = Sims::start()
        .await
        .world_with(None, threads_options())
        .await;
    let targets: Vec<(String, String)> = (0..45)
        .map(|i| {
            (
                format!("many-{i:02}@alphagov.co.uk"),
                "Content Store".to_owned(),
            )
        })
        .collect();
    world.app.post_webhook(batch(&targets)).await;
    world.engine.ingest().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    // The parent may be posted while the delivery is still being taken in, then edited: wait
    // for the edit that has them all.
    let parent = loop {
        if let Some(parent) = parents(&world.slack.posted()).first().cloned().cloned()
            && parent.all_text().contains("45 target(s)")
        {
            break parent;
        }
        assert!(Instant::now() < deadline, "no parent with all 45");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The simulator refuses more than 50 blocks or 3 000 characters a section, so getting here
    // with blocks means the limits held.
    let blocks = parent.body["blocks"]
        .as_array()
        .expect("blocks, not the text fallback");
    assert!(blocks.len() <= 50);
    let text = parent.all_text();
    assert!(text.contains("45 target(s)"), "{text}");
    assert!(text.contains("`many-39@alphagov.co.uk`"));
    assert!(
        !text.contains("`many-40@alphagov.co.uk`"),
        "only 40 are listed one by one"
    );
    assert!(text.contains("…and 5 more (5 planned)"), "{text}");
}
