//! Slack as it really answers: per-workspace budgets, the error codes its specification lists,
//! messages a person deleted, the size of a message, and approver groups that are slow to read.

use token_rotator::store::outbox;

use super::*;

/// Waits until the simulator holds a parent message, and returns it.
async fn first_parent(world: &World) -> Message {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(parent) = parents(&world.slack.posted()).first() {
            return (*parent).clone();
        }
        assert!(Instant::now() < deadline, "no parent was posted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn rotate_one(world: &World, user: &str) {
    world.seed(user, "Content Store");
    world
        .app
        .post_webhook(batch(&[(user.into(), "Content Store".into())]))
        .await;
}

#[tokio::test]
async fn messages_outside_any_thread_keep_the_channels_pace_too() {
    let world = Sims::start()
        .await
        .world_with(None, threads_options())
        .await;
    let pool = world.engine.journal().pool().clone();
    for i in 0..4 {
        let body = json!({"text": format!("notice {i}")});
        outbox::enqueue(&pool, &body, world.clock.now())
            .await
            .unwrap();
    }
    wait_for_slack(&world).await;
    let texts: Vec<String> = world
        .slack
        .posted()
        .iter()
        .map(|m| m.text().to_owned())
        .collect();
    assert_eq!(texts.len(), 4, "{texts:?}");
    assert_eq!(
        world.slack.rate_limited(),
        0,
        "no post came faster than Slack's 1 per second per channel"
    );
}

#[tokio::test]
async fn a_refused_bot_token_is_one_workspace_problem_not_one_per_channel() {
    let config = r##"
[environments.production]
slack_channel = "C0PROD"
[environments.integration]
slack_channel = "C0INTEG"

[slack]
channel = "#rotations"

[[rules]]
name = "internal-api-user"
action = "rotate"
api_user_domain = "internal"
"##;
    let world = Sims::start()
        .await
        .world_with(
            None,
            WorldOptions {
                config_toml: Some(config.to_owned()),
                ..threads_options()
            },
        )
        .await;
    world
        .slack
        .faults
        .always("chat.postMessage", Fault::SlackError("token_revoked"));
    for environment in ["production", "integration"] {
        world.seed_in(environment, "revoked@alphagov.co.uk", "Content Store");
    }
    let alert = |environment: &str, fingerprint: &str| {
        let one: Value = serde_json::from_slice(&alert_body(
            fingerprint,
            &[
                ("alertname", "SignonApiUserTokenExpirySoon"),
                ("environment", environment),
                ("api_user", "revoked@alphagov.co.uk"),
                ("application", "Content Store"),
            ],
        ))
        .unwrap();
        one["alerts"][0].clone()
    };
    let mut body: Value = serde_json::from_slice(&alert_body("0", &[])).unwrap();
    body["alerts"] = json!([
        alert("production", "0000000000000001"),
        alert("integration", "0000000000000002")
    ]);
    world
        .app
        .post_webhook(serde_json::to_vec(&body).unwrap())
        .await;
    world.engine.ingest().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let readyz = loop {
        let (_, body) = world.app.get_text("/readyz").await;
        if body.contains("token_revoked") {
            break body;
        }
        assert!(Instant::now() < deadline, "readyz never told: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Two threads in two channels, but the token is the workspace's: one call found out, one
    // line says so, and the workspace rests (10 s, then longer) instead of each channel trying.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(world.slack.faults.calls("chat.postMessage"), 1, "{readyz}");
    assert!(readyz.contains("workspace: "), "{readyz}");
    assert_eq!(readyz.matches("token_revoked").count(), 1, "{readyz}");
    assert!(!readyz.contains("channel C0"), "{readyz}");
}

#[tokio::test]
async fn an_error_code_we_do_not_know_holds_the_reply_instead_of_dropping_it() {
    let world = Sims::start()
        .await
        .world_with(None, threads_options())
        .await;
    rotate_one(&world, "unknown-code@alphagov.co.uk").await;
    world.run_to_the_end().await;
    first_parent(&world).await;
    // The reply comes at least a second after the parent: Slack now answers a code we have
    // never seen, then recovers.
    world.slack.faults.always(
        "chat.postMessage",
        Fault::SlackError("a_code_slack_adds_next_year"),
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    world.slack.faults.clear("chat.postMessage");
    wait_for_slack(&world).await;
    let text: String = world.slack.posted().iter().map(Message::all_text).collect();
    assert!(
        text.contains("Rotated the token of `unknown-code@alphagov.co.uk`"),
        "the reply was dropped: {text}"
    );
    assert!(
        world
            .notifications()
            .await
            .iter()
            .all(|n| n.delivered_at_ms.is_some()),
        "nothing abandoned"
    );
}

#[tokio::test]
async fn a_parent_a_person_deleted_is_posted_again_and_the_thread_goes_on_there() {
    let world = Sims::start()
        .await
        .world_with(None, threads_options())
        .await;
    rotate_one(&world, "deleted@alphagov.co.uk").await;
    world.engine.ingest().await.unwrap();
    let first = first_parent(&world).await;
    world.slack.delete(&first.ts);
    world.run_to_the_end().await;
    wait_for_slack(&world).await;
    let messages = world.slack.posted();
    let parents = parents(&messages);
    assert_eq!(parents.len(), 1, "{messages:#?}");
    assert_ne!(parents[0].ts, first.ts, "a new parent");
    let thread: String = messages
        .iter()
        .filter(|m| m.thread_ts.as_deref() == Some(parents[0].ts.as_str()))
        .map(Message::all_text)
        .collect();
    assert!(
        thread.contains("Rotated the token of `deleted@alphagov.co.uk`"),
        "{thread}"
    );
    assert!(
        thread.contains("planned → issued"),
        "told again from the start: {thread}"
    );
    assert!(parents[0].all_text().contains("1 done"));
}

#[tokio::test]
async fn long_replies_are_split_within_slacks_size_and_every_event_is_told() {
    let world = Sims::start()
        .await
        .world_with(None, threads_options())
        .await;
    // Long names make each event line ~300 characters: 60 of them would pass 12 000.
    let targets: Vec<(String, String)> = (0..12)
        .map(|i| {
            (
                format!(
                    "{}-{i:02}@alphagov.co.uk",
                    "a-rather-long-api-user-name".repeat(3)
                ),
                format!("Application {}", "with a long name ".repeat(4)),
            )
        })
        .collect();
    for (user, app) in &targets {
        world.seed(user, app);
    }
    world.app.post_webhook(batch(&targets)).await;
    world.run_to_the_end().await;
    wait_for_slack(&world).await;
    let messages = world.slack.posted();
    let thread: String = messages
        .iter()
        .filter(|m| m.thread_ts.is_some())
        .map(Message::all_text)
        .collect();
    let rows = world.rotations().await;
    for row in &rows {
        let events = world.audit(&row.id).await.len();
        let told = thread
            .lines()
            .filter(|l| l.contains(&format!("` `{}` / ", row.api_user)))
            .count();
        assert_eq!(told, events, "every event of {} is told", row.api_user);
    }
    assert!(
        messages.iter().filter(|m| m.thread_ts.is_some()).count() > 1,
        "split over several replies"
    );
    assert!(
        world
            .notifications()
            .await
            .iter()
            .all(|n| n.last_error.is_none()),
        "nothing was refused as too long"
    );
}

#[tokio::test]
async fn a_group_lookup_that_fails_is_answered_try_again_and_refuses_nobody() {
    let world = Sims::start()
        .await
        .world_with(None, approvals_options())
        .await;
    world.slack.set_group("S0PLATFORM", &["U0BOB"]);
    let id = request_approval(&world, "lookup@alphagov.co.uk").await;
    world
        .slack
        .faults
        .next("usergroups.users.list", Fault::Status(500), 1);
    let (status, text) = click_answer(&world, &id, APPROVE, "U0BOB").await;
    assert_eq!(status, 200);
    assert!(text.contains("try again"), "{text}");
    world.engine.run_until_idle().await.unwrap();
    assert_eq!(world.rotations().await[0].phase, "awaiting_approval");
    let notes: Vec<String> = world
        .notifications()
        .await
        .iter()
        .map(|n| n.body.clone())
        .collect();
    assert!(
        !notes.iter().any(|n| n.contains("may not decide")),
        "a failed lookup is no refusal: {notes:#?}"
    );
    // The same click once Slack answers: Bob is in the group.
    assert_eq!(click_now(&world, &id, APPROVE, "U0BOB").await, 200);
    world.run_to_the_end().await;
    assert_eq!(world.rotations().await[0].phase, "done");
}

#[tokio::test]
async fn an_approver_in_any_of_several_groups_may_decide_and_groups_are_read_once() {
    let config = APPROVERS_CONFIG.replace(
        r#"approvers = ["U0ALICE", "S0PLATFORM"]"#,
        r#"approvers = ["S0SECURITY", "S0PLATFORM", "S0ONCALL"]"#,
    );
    let world = Sims::start()
        .await
        .world_with(
            None,
            WorldOptions {
                config_toml: Some(config),
                ..threads_options()
            },
        )
        .await;
    world.slack.set_group("S0SECURITY", &["U0EVE"]);
    world.slack.set_group("S0PLATFORM", &["U0ALICE"]);
    world.slack.set_group("S0ONCALL", &["U0BOB"]);
    let first = request_approval(&world, "groups@alphagov.co.uk").await;
    assert_eq!(click_now(&world, &first, APPROVE, "U0BOB").await, 200);
    world.run_to_the_end().await;
    assert_eq!(world.rotations().await[0].phase, "done");
    let asked = world.slack.faults.calls("usergroups.users.list");
    assert!((1..=3).contains(&asked), "{asked}");
    // A second click soon after is answered from what Slack said (Tier 2 is 20 a minute).
    assert_eq!(click_now(&world, &first, APPROVE, "U0BOB").await, 200);
    assert_eq!(world.slack.faults.calls("usergroups.users.list"), asked);
}

#[tokio::test]
async fn with_join_channels_a_channel_the_bot_left_is_joined_and_told() {
    let world = Sims::start()
        .await
        .world_with(
            None,
            WorldOptions {
                slack_join: true,
                ..threads_options()
            },
        )
        .await;
    world.slack.remove_bot_from(CHANNEL);
    rotate_one(&world, "joined@alphagov.co.uk").await;
    world.run_to_the_end().await;
    wait_for_slack(&world).await;
    assert_eq!(world.slack.faults.calls("conversations.join"), 1);
    let text: String = world.slack.posted().iter().map(Message::all_text).collect();
    assert!(
        text.contains("Rotated the token of `joined@alphagov.co.uk`"),
        "{text}"
    );
    let (_, readyz) = world.app.get_text("/readyz").await;
    assert!(!readyz.contains("not_in_channel"), "{readyz}");
}

#[tokio::test]
async fn a_group_lookup_that_hangs_is_cut_off_and_answered_try_again() {
    let world = Sims::start()
        .await
        .world_with(None, approvals_options())
        .await;
    world.slack.set_group("S0PLATFORM", &["U0BOB"]);
    let id = request_approval(&world, "slow@alphagov.co.uk").await;
    world.slack.faults.next(
        "usergroups.users.list",
        Fault::Hang(Duration::from_secs(30)),
        1,
    );
    // The lookup hangs for 30 s: the click is answered at the lookups' deadline (kept under
    // Slack's 3 s; not timed here), saying what happened.
    let (status, text) = click_answer(&world, &id, APPROVE, "U0BOB").await;
    assert_eq!(status, 200);
    assert!(text.contains("try again"));
    assert_eq!(world.rotations().await[0].phase, "awaiting_approval");
}

/// A 429 from `usergroups.users.list` pauses every group lookup of the workspace for its
/// `Retry-After`: the next click is answered "try again" without asking Slack.
#[tokio::test]
async fn a_429_on_group_lookups_pauses_them_for_the_whole_workspace() {
    let world = Sims::start()
        .await
        .world_with(None, approvals_options())
        .await;
    world.slack.set_group("S0PLATFORM", &["U0BOB"]);
    let id = request_approval(&world, "paused@alphagov.co.uk").await;
    world
        .slack
        .faults
        .next("usergroups.users.list", Fault::RetryAfter(60), 1);
    assert_eq!(click_now(&world, &id, APPROVE, "U0BOB").await, 200);
    assert_eq!(world.slack.faults.calls("usergroups.users.list"), 1);
    assert_eq!(click_now(&world, &id, APPROVE, "U0BOB").await, 200);
    assert_eq!(
        world.slack.faults.calls("usergroups.users.list"),
        1,
        "no lookup while Slack asked to wait"
    );
    world.engine.run_until_idle().await.unwrap();
    assert_eq!(world.rotations().await[0].phase, "awaiting_approval");
}
