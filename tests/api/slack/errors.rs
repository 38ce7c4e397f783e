//! Slack's permanent errors, classed per method from Slack's own lists: surfaced once (on
//! `/readyz`, the status page, the thread) and never retried at Slack's pace for ever; a parent
//! edit Slack rejects; channels configured by name; replies under a parent a person deleted.

use super::*;

const NAMED_CONFIG: &str = r##"
[environments.production]
[environments.integration]

[slack]
channel = "#rotations"

[[rules]]
name = "internal-api-user"
action = "rotate"
api_user_domain = "internal"
"##;

fn named(channel: &str) -> WorldOptions {
    WorldOptions {
        config_toml: Some(NAMED_CONFIG.replace("#rotations", channel)),
        ..threads_options()
    }
}

async fn rotate_one(world: &World, user: &str) {
    world.seed(user, "Content Store");
    world
        .app
        .post_webhook(batch(&[(user.into(), "Content Store".into())]))
        .await;
    world.run_to_the_end().await;
}

/// Polls `/readyz` until it mentions `needle`.
async fn readyz_with(world: &World, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = world.app.get_text("/readyz").await;
        assert_eq!(status, 200, "Slack trouble does not make intake unready");
        if body.contains(needle) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "readyz never told {needle}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn status_page(world: &World) -> String {
    let response = world
        .app
        .client
        .get(world.app.url("/"))
        .bearer_auth(crate::helpers::TOKEN)
        .send()
        .await
        .unwrap();
    response.text().await.unwrap()
}

fn thread_text(world: &World) -> String {
    world.slack.posted().iter().map(Message::all_text).collect()
}

#[tokio::test]
async fn an_archived_channel_is_surfaced_once_and_not_edited_every_two_seconds() {
    let world = Sims::start()
        .await
        .world_with(None, threads_options())
        .await;
    rotate_one(&world, "archived@alphagov.co.uk").await;
    wait_for_slack(&world).await;
    let edits = world.slack.faults.calls("chat.update");
    // An admin archives the channel: Slack answers `is_inactive` to an edit there and
    // `is_archived` to a post; neither is Slack's own trouble, so neither is tried every 2 s.
    world.slack.archive(CHANNEL);
    world
        .slack
        .faults
        .always("chat.update", Fault::SlackError("is_inactive"));
    world.seed("archived2@alphagov.co.uk", "Content Store");
    world
        .app
        .post_webhook(batch(&[(
            "archived2@alphagov.co.uk".into(),
            "Content Store".into(),
        )]))
        .await;
    world.run_to_the_end().await;
    let readyz = readyz_with(&world, "is_archived").await;
    assert!(readyz.contains(CHANNEL), "{readyz}");
    let posts = world.slack.faults.calls("chat.postMessage");
    tokio::time::sleep(Duration::from_secs(8)).await;
    let more_posts = world.slack.faults.calls("chat.postMessage") - posts;
    assert!(
        more_posts <= 1,
        "a refusing channel rests longer each time: {more_posts} posts in 8 s"
    );
    assert!(
        world.slack.faults.calls("chat.update") - edits <= 1,
        "no edit loop"
    );
    let page = status_page(&world).await;
    assert!(page.contains("Slack refuses some messages"), "{page}");
    assert!(page.contains("is_archived"), "{page}");
}

#[tokio::test]
async fn is_inactive_on_a_parent_edit_is_the_channels_problem_not_a_retry_every_two_seconds() {
    let world = Sims::start()
        .await
        .world_with(None, threads_options())
        .await;
    // A frozen channel: Slack still takes the posts Slack takes, but no edit.
    world
        .slack
        .faults
        .always("chat.update", Fault::SlackError("is_inactive"));
    rotate_one(&world, "frozen@alphagov.co.uk").await;
    let readyz = readyz_with(&world, "is_inactive").await;
    assert!(readyz.contains(CHANNEL), "{readyz}");
    let edits = world.slack.faults.calls("chat.update");
    tokio::time::sleep(Duration::from_secs(8)).await;
    let more = world.slack.faults.calls("chat.update") - edits;
    assert!(
        more <= 1,
        "{more} edits in 8 s: the channel rests longer each time"
    );
    let page = status_page(&world).await;
    assert!(page.contains("is_inactive"), "{page}");
}

#[tokio::test]
async fn a_parent_edit_slack_rejects_is_sent_as_text_and_never_loops() {
    let world = Sims::start()
        .await
        .world_with(None, threads_options())
        .await;
    world
        .slack
        .faults
        .always("chat.update", Fault::SlackError("invalid_blocks"));
    rotate_one(&world, "rejected@alphagov.co.uk").await;
    wait_for_slack(&world).await;
    let edits = world.slack.faults.calls("chat.update");
    // Once as blocks, once as text; then given up until the parent has something new to say.
    assert!((1..=3).contains(&edits), "{edits} edits");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(world.slack.faults.calls("chat.update"), edits, "no loop");
    let text = thread_text(&world);
    assert!(
        text.contains("Rotated the token of `rejected@alphagov.co.uk`"),
        "the thread goes on: {text}"
    );
    assert_eq!(
        text.matches("was rejected by Slack (invalid_blocks)")
            .count(),
        1,
        "said once in the thread: {text}"
    );
    let readyz = readyz_with(&world, "invalid_blocks").await;
    assert!(readyz.contains("given up"), "{readyz}");
}

#[tokio::test]
async fn msg_blocks_too_long_on_an_edit_holds_the_edit_slot_a_bounded_time() {
    // `chat.update` does not document `msg_blocks_too_long` (only `chat.postMessage` does):
    // retried a few times as any undocumented code is, then given up: never a loop.
    let world = Sims::start()
        .await
        .world_with(None, threads_options())
        .await;
    world
        .slack
        .faults
        .always("chat.update", Fault::SlackError("msg_blocks_too_long"));
    rotate_one(&world, "toolong@alphagov.co.uk").await;
    wait_for_slack(&world).await;
    let edits = world.slack.faults.calls("chat.update");
    assert!(edits <= 10, "{edits} edits");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(world.slack.faults.calls("chat.update"), edits, "no loop");
    let text = thread_text(&world);
    assert!(
        text.contains("Rotated the token of `toolong@alphagov.co.uk`"),
        "{text}"
    );
}

#[tokio::test]
async fn a_parent_edit_rejected_once_is_sent_as_plain_text() {
    let world = Sims::start()
        .await
        .world_with(None, threads_options())
        .await;
    world
        .slack
        .faults
        .next("chat.update", Fault::SlackError("invalid_blocks"), 1);
    rotate_one(&world, "astext@alphagov.co.uk").await;
    wait_for_slack(&world).await;
    let messages = world.slack.posted();
    let parent = parents(&messages)[0].clone();
    assert!(parent.edits >= 1, "{parent:#?}");
    assert!(
        parent.body.get("blocks").is_none(),
        "edited as text: {parent:#?}"
    );
    assert!(parent.text().contains("1 done"), "{}", parent.text());
}

#[tokio::test]
async fn a_channel_named_in_the_config_is_resolved_to_its_id_and_joined() {
    let world = Sims::start()
        .await
        .world_with(
            None,
            WorldOptions {
                slack_join: true,
                ..named("#rotations")
            },
        )
        .await;
    world.slack.remove_bot_from(CHANNEL);
    rotate_one(&world, "joined-by-name@alphagov.co.uk").await;
    wait_for_slack(&world).await;
    assert_eq!(world.slack.faults.calls("conversations.join"), 1);
    // 230 other channels come first: the name is on the second page.
    assert_eq!(
        world.slack.faults.calls("conversations.list"),
        2,
        "read once"
    );
    let text = thread_text(&world);
    assert!(
        text.contains("Rotated the token of `joined-by-name@alphagov.co.uk`"),
        "{text}"
    );
    let (_, readyz) = world.app.get_text("/readyz").await;
    assert!(!readyz.contains("not_in_channel"), "{readyz}");
}

#[tokio::test]
async fn a_channel_name_no_channel_has_is_a_clear_surfaced_error() {
    let world = Sims::start()
        .await
        .world_with(None, named("#no-such-channel"))
        .await;
    rotate_one(&world, "nowhere@alphagov.co.uk").await;
    let readyz = readyz_with(&world, "no-such-channel").await;
    assert!(readyz.contains("no public, unarchived channel"), "{readyz}");
    assert!(world.slack.posted().is_empty());
    let lists = world.slack.faults.calls("conversations.list");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        world.slack.faults.calls("conversations.list") - lists <= 2,
        "not looked up every pass"
    );
    // Someone creates the channel: the thread goes there.
    world.slack.add_channel("no-such-channel");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !thread_text(&world).contains("nowhere@alphagov.co.uk") {
        assert!(
            Instant::now() < deadline,
            "never posted once the channel exists"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn joining_by_name_is_refused_by_slack_as_channel_not_found() {
    // What Slack does with a name, and why names are resolved first.
    use token_rotator::sim::slack::{API_PATH, BOT_TOKEN, SlackSim};
    token_rotator::install_crypto_provider();
    let sim = SlackSim::new();
    let running = sim.start().await.unwrap();
    let base = format!("{}{API_PATH}", running.url());
    let api = token_rotator::adapters::slack::SlackApi::new(
        &base,
        BOT_TOKEN.to_owned().into(),
        Duration::from_secs(5),
    );
    let answer = reqwest::Client::new()
        .post(format!("{base}/conversations.join"))
        .bearer_auth(BOT_TOKEN)
        .json(&json!({"channel": "#rotations"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(answer["error"], "channel_not_found", "{answer}");
    assert_eq!(api.channel_id("#rotations").await.unwrap(), CHANNEL);
    assert_eq!(api.channel_id("rotations").await.unwrap(), CHANNEL);
    api.join("#rotations").await.unwrap();
}

#[tokio::test]
async fn replies_under_a_parent_deleted_mid_thread_are_told_again_under_the_new_one() {
    let world = Sims::start()
        .await
        .world_with(None, threads_options())
        .await;
    world.seed("midway@alphagov.co.uk", "Content Store");
    world
        .app
        .post_webhook(batch(&[(
            "midway@alphagov.co.uk".into(),
            "Content Store".into(),
        )]))
        .await;
    world.engine.ingest().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let first = loop {
        if let Some(p) = parents(&world.slack.posted()).first() {
            break (*p).clone();
        }
        assert!(Instant::now() < deadline, "no parent");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // Deleted after the parent went out and before the replies: Slack answers them `ok`,
    // and nobody sees them.
    world.slack.delete(&first.ts);
    world.run_to_the_end().await;
    wait_for_slack(&world).await;
    assert!(
        world.slack.unseen_replies() >= 1,
        "a reply went under the deleted parent"
    );
    let messages = world.slack.posted();
    let parents = parents(&messages);
    assert_eq!(parents.len(), 1, "{}", world.slack.transcript());
    assert_ne!(parents[0].ts, first.ts);
    let thread: String = messages
        .iter()
        .filter(|m| m.thread_ts.as_deref() == Some(parents[0].ts.as_str()))
        .map(Message::all_text)
        .collect();
    for line in [
        "planned → issued",
        "Rotated the token of `midway@alphagov.co.uk`",
    ] {
        assert!(
            thread.contains(line),
            "{line} lost: {}",
            world.slack.transcript()
        );
    }
}

#[tokio::test]
async fn a_code_slack_does_not_document_is_retried_a_few_times_then_given_up_and_said() {
    let world = Sims::start()
        .await
        .world_with(None, threads_options())
        .await;
    rotate_one(&world, "undocumented@alphagov.co.uk").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while parents(&world.slack.posted()).is_empty() {
        assert!(Instant::now() < deadline, "no parent");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    world.slack.faults.always(
        "chat.postMessage",
        Fault::SlackError("a_code_slack_adds_next_year"),
    );
    let readyz = readyz_with(&world, "unknown_code").await;
    assert!(readyz.contains("given up"), "{readyz}");
    let calls = world.slack.faults.calls("chat.postMessage");
    assert!(calls <= 8, "a bounded number of tries: {calls}");
    world.slack.faults.clear("chat.postMessage");
    // Said in the thread once Slack takes posts again.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !thread_text(&world).contains("was rejected by Slack (unknown_code)") {
        assert!(Instant::now() < deadline, "{}", world.slack.transcript());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
