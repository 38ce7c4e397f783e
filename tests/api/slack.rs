//! Slack as operators live in it: one thread per delivery, live edits of the parent, Slack's
//! pace kept through a 429 storm, Approve/Reject buttons with signed interactions.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use token_rotator::clock::Clock;
use token_rotator::engine::Phase;
use token_rotator::engine::message::{APPROVE, REJECT};
use token_rotator::sim::Fault;
use token_rotator::sim::slack::{Message, SIGNING_SECRET, interaction, signed_headers};
use token_rotator::store::threads;

use crate::helpers::alert_body;
use crate::world::{CHANNEL, Sims, World, WorldOptions};

fn threads_options() -> WorldOptions {
    WorldOptions {
        slack_threads: true,
        ..WorldOptions::default()
    }
}

const APPROVERS_CONFIG: &str = r##"
[slack]
# A name: Slack answers with the id, which edits need.
channel = "#rotations"
approval_timeout = "2h"

[[rules]]
name = "publishing-api-asks-first"
action = "manual"
owner = "#platform"
runbook_url = "https://runbook.example/rotate"
approval = true
approvers = ["U0ALICE", "S0PLATFORM"]
match = { application = "Publishing API" }

[[rules]]
name = "internal-api-user"
action = "rotate"
api_user_domain = "internal"
"##;

fn approvals_options() -> WorldOptions {
    WorldOptions {
        config_toml: Some(APPROVERS_CONFIG.to_owned()),
        ..threads_options()
    }
}

/// One webhook body carrying an alert for each `(api_user, application)`.
fn batch(targets: &[(String, String)]) -> Vec<u8> {
    let alerts: Vec<Value> = targets
        .iter()
        .enumerate()
        .map(|(i, (user, app))| {
            let one: Value = serde_json::from_slice(&alert_body(
                &format!("{i:016x}"),
                &[
                    ("alertname", "SignonApiUserTokenExpirySoon"),
                    ("environment", "production"),
                    ("api_user", user),
                    ("application", app),
                ],
            ))
            .unwrap();
            one["alerts"][0].clone()
        })
        .collect();
    let mut body: Value = serde_json::from_slice(&alert_body("0", &[])).unwrap();
    body["alerts"] = json!(alerts);
    serde_json::to_vec(&body).unwrap()
}

/// Waits (in real time: the notifier keeps Slack's real pace) until every message is out.
async fn wait_for_slack(world: &World) {
    let pool = world.engine.journal().pool().clone();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let busy = !threads::with_work(&pool, world.clock.now())
            .await
            .unwrap()
            .is_empty()
            || world
                .notifications()
                .await
                .iter()
                .any(|n| n.next_attempt_at_ms.is_some());
        if !busy {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Slack messages still queued after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn parents(messages: &[Message]) -> Vec<&Message> {
    messages.iter().filter(|m| m.thread_ts.is_none()).collect()
}

/// What one click on a button sends, signed with `secret` at `unix_seconds`.
async fn click(
    world: &World,
    rotation_id: &str,
    action: &str,
    user: &str,
    secret: &str,
    unix_seconds: i64,
) -> u16 {
    let body = interaction(rotation_id, action, user, "someone");
    let mut request = world
        .app
        .client
        .post(world.app.url("/v1/slack/interactions"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.clone());
    for (name, value) in signed_headers(secret, &body, unix_seconds) {
        request = request.header(name, value);
    }
    request.send().await.unwrap().status().as_u16()
}

async fn click_now(world: &World, rotation_id: &str, action: &str, user: &str) -> u16 {
    let now = jiff::Timestamp::now().as_second();
    click(world, rotation_id, action, user, SIGNING_SECRET, now).await
}

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
    assert!(parent.edits >= 1, "the parent is edited as targets move");
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
async fn request_approval(world: &World, user: &str) -> String {
    world.seed(user, "Publishing API");
    world
        .app
        .post_webhook(batch(&[(user.into(), "Publishing API".into())]))
        .await;
    world.engine.run_until_idle().await.unwrap();
    let rows = world.rotations().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].phase, "awaiting_approval");
    rows[0].id.clone()
}

#[tokio::test]
async fn approve_rotates_and_the_audit_and_the_message_name_who() {
    let world = Sims::start()
        .await
        .world_with(None, approvals_options())
        .await;
    let id = request_approval(&world, "approve@alphagov.co.uk").await;
    wait_for_slack(&world).await;
    let request = world
        .slack
        .posted()
        .into_iter()
        .find(|m| m.body.to_string().contains("\"action_id\":\"approve\""))
        .expect("the request with buttons was posted");
    assert!(
        request.broadcast,
        "a request for a person is shown in the channel"
    );
    assert_eq!(
        world.signon.minted().len(),
        0,
        "nothing minted before approval"
    );

    assert_eq!(click_now(&world, &id, APPROVE, "U0ALICE").await, 200);
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "done");
    assert_eq!(row.decided_by.as_deref(), Some("slack:U0ALICE (someone)"));
    assert_eq!(world.signon.minted().len(), 1);
    let audit = world.audit(&id).await;
    assert!(
        audit
            .iter()
            .any(|a| a.to_phase == "planned" && a.trigger == "slack:U0ALICE (someone)")
    );

    // A second click says so and changes nothing.
    assert_eq!(click_now(&world, &id, REJECT, "U0ALICE").await, 200);
    world.run_to_the_end().await;
    wait_for_slack(&world).await;
    assert_eq!(world.rotations().await[0].phase, "done");
    assert_eq!(world.signon.minted().len(), 1);
    let messages = world.slack.posted();
    let edited = messages.iter().find(|m| m.ts == request.ts).unwrap();
    assert!(
        edited.all_text().contains("approved by <@U0ALICE>"),
        "{}",
        edited.all_text()
    );
    assert!(
        !edited.body.to_string().contains("\"type\":\"button\""),
        "the buttons are gone"
    );
    let text: String = messages.iter().map(Message::all_text).collect();
    assert!(text.contains("but it is closed (done"), "{text}");
}

#[tokio::test]
async fn reject_mints_nothing_and_a_group_member_may_decide() {
    let world = Sims::start()
        .await
        .world_with(None, approvals_options())
        .await;
    world.slack.set_group("S0PLATFORM", &["U0BOB"]);
    let id = request_approval(&world, "reject@alphagov.co.uk").await;
    assert_eq!(click_now(&world, &id, REJECT, "U0BOB").await, 200);
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "rejected");
    assert_eq!(row.decided_by.as_deref(), Some("slack:U0BOB (someone)"));
    assert_eq!(world.signon.minted().len(), 0);
    assert_eq!(world.signon.revoked().len(), 0);
}

#[tokio::test]
async fn a_user_not_allowed_is_refused_with_a_message() {
    let world = Sims::start()
        .await
        .world_with(None, approvals_options())
        .await;
    world.slack.set_group("S0PLATFORM", &["U0BOB"]);
    let id = request_approval(&world, "refused@alphagov.co.uk").await;
    assert_eq!(click_now(&world, &id, APPROVE, "U0MALLORY").await, 200);
    world.engine.run_until_idle().await.unwrap();
    wait_for_slack(&world).await;
    assert_eq!(world.rotations().await[0].phase, "awaiting_approval");
    assert_eq!(world.signon.minted().len(), 0);
    let text: String = world.slack.posted().iter().map(Message::all_text).collect();
    assert!(text.contains("<@U0MALLORY> may not decide"), "{text}");
}

#[tokio::test]
async fn unsigned_tampered_and_replayed_clicks_are_401_and_change_nothing() {
    let world = Sims::start()
        .await
        .world_with(None, approvals_options())
        .await;
    let id = request_approval(&world, "hostile@alphagov.co.uk").await;
    let now = jiff::Timestamp::now().as_second();
    // Replayed: a genuine signature from ten minutes ago.
    assert_eq!(
        click(&world, &id, APPROVE, "U0ALICE", SIGNING_SECRET, now - 600).await,
        401
    );
    // Signed with another secret.
    assert_eq!(
        click(&world, &id, APPROVE, "U0ALICE", "not-the-secret", now).await,
        401
    );
    // Tampered: signed for one body, sent with another.
    let body = interaction(&id, APPROVE, "U0MALLORY", "mallory");
    let headers = signed_headers(SIGNING_SECRET, &body, now);
    let tampered = body.replace("U0MALLORY", "U0ALICE");
    let mut request = world
        .app
        .client
        .post(world.app.url("/v1/slack/interactions"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(tampered);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    assert_eq!(request.send().await.unwrap().status(), 401);
    // Unsigned.
    let unsigned = world
        .app
        .client
        .post(world.app.url("/v1/slack/interactions"))
        .body(interaction(&id, APPROVE, "U0ALICE", "alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);

    world.engine.run_until_idle().await.unwrap();
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "awaiting_approval");
    assert_eq!(row.decided_by, None);
    assert_eq!(world.signon.minted().len(), 0);
    assert_eq!(world.audit(&id).await.len(), 1, "not even an audit row");
}

#[tokio::test]
async fn an_unanswered_request_expires_to_manual_and_a_late_click_says_so() {
    let world = Sims::start()
        .await
        .world_with(None, approvals_options())
        .await;
    let id = request_approval(&world, "late@alphagov.co.uk").await;
    world.clock.advance(Duration::from_secs(2 * 3600 + 1));
    world.engine.run_until_idle().await.unwrap();
    assert_eq!(world.rotations().await[0].phase, "manual");
    assert_eq!(click_now(&world, &id, APPROVE, "U0ALICE").await, 200);
    world.engine.run_until_idle().await.unwrap();
    wait_for_slack(&world).await;
    assert_eq!(world.rotations().await[0].phase, "manual");
    assert_eq!(world.signon.minted().len(), 0);
    let text: String = world.slack.posted().iter().map(Message::all_text).collect();
    assert!(
        text.contains("expired: nobody approved or rejected within 2h"),
        "{text}"
    );
    assert!(text.contains("but it is closed (manual"), "{text}");
}

#[tokio::test]
async fn approve_from_the_command_line_does_what_the_button_does() {
    let world = Sims::start()
        .await
        .world_with(None, approvals_options())
        .await;
    let id = request_approval(&world, "cli@alphagov.co.uk").await;
    let config = world.app.dir.path().join("cli.toml");
    std::fs::write(
        &config,
        format!(
            "database_url = \"{}\"\n[[rules]]\nname = \"x\"\naction = \"rotate\"\n",
            crate::helpers::database_url(world.app.dir.path())
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_token-rotator"))
            .args(args)
            .output()
            .unwrap()
    };
    let config = config.to_str().unwrap();
    let first = run(&["approve", &id, "--as", "carol", "--config", config]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let second = run(&["reject", &id, "--as", "dave", "--config", config]);
    assert_eq!(
        second.status.code(),
        Some(1),
        "a second decision changes nothing"
    );
    assert!(String::from_utf8_lossy(&second.stderr).contains("decided by cli:carol"));
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "done");
    assert_eq!(row.decided_by.as_deref(), Some("cli:carol"));
}

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
    let parent = loop {
        if let Some(parent) = parents(&world.slack.posted()).first().cloned().cloned() {
            break parent;
        }
        assert!(Instant::now() < deadline, "no parent");
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
