//! Slack as operators live in it: one thread per delivery, live edits of the parent, Slack's
//! pace kept through a 429 storm, Approve/Reject buttons with signed interactions.

mod approvals;
mod asks;
mod buttons_refused;
mod click_answers;
mod dead;
mod drain;
mod errors;
mod limits;
mod mrkdwn;
mod thread;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use token_rotator::clock::Clock;
use token_rotator::engine::Phase;
use token_rotator::engine::message::{APPROVE, REJECT};
use token_rotator::sim::Fault;
use token_rotator::sim::slack::{Answer, Message, SIGNING_SECRET, interaction, signed_headers};
use token_rotator::store::clicks::{self, ClickRow};
use token_rotator::store::threads;

use crate::helpers::alert_body;
use crate::world::{CHANNEL, Sims, World, WorldOptions};

pub(super) fn threads_options() -> WorldOptions {
    WorldOptions {
        slack_threads: true,
        ..WorldOptions::default()
    }
}

pub(super) const APPROVERS_CONFIG: &str = r##"
[environments.production]
[environments.integration]

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

pub(super) fn approvals_options() -> WorldOptions {
    WorldOptions {
        config_toml: Some(APPROVERS_CONFIG.to_owned()),
        ..threads_options()
    }
}

/// One webhook body carrying an alert for each `(api_user, application)`.
pub(crate) fn batch(targets: &[(String, String)]) -> Vec<u8> {
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
pub(super) async fn wait_for_slack(world: &World) {
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

pub(super) fn parents(messages: &[Message]) -> Vec<&Message> {
    messages.iter().filter(|m| m.thread_ts.is_none()).collect()
}

/// What one click on a button sends, signed with `secret` at `unix_seconds`.
pub(super) async fn click(
    world: &World,
    rotation_id: &str,
    action: &str,
    user: &str,
    secret: &str,
    unix_seconds: i64,
) -> u16 {
    send_click(world, rotation_id, action, user, secret, unix_seconds)
        .await
        .status()
        .as_u16()
}

/// A click now, with the answer: its status and the text the clicker alone was then shown.
pub(super) async fn click_answer(
    world: &World,
    rotation_id: &str,
    action: &str,
    user: &str,
) -> (u16, String) {
    let before = world.slack.answers_for(user).len();
    let status = click_now(world, rotation_id, action, user).await;
    (status, answer_after(world, user, before).await.text)
}

/// The answer `user` was shown after the `before` they had seen (it is sent just after the
/// acknowledgement, so it may take a moment).
pub(super) async fn answer_after(world: &World, user: &str, before: usize) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(answer) = world.slack.answers_for(user).get(before) {
            return answer.clone();
        }
        if Instant::now() >= deadline {
            let journaled = clicks::all(world.engine.journal().pool()).await;
            panic!(
                "{user} was shown no answer within 10 s; shown: {:#?}; refused response URLs: {}; journaled: {journaled:#?}",
                world.slack.answers(),
                world.slack.refused_responses()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every click the journal holds, once each has its answer's delivery noted.
pub(super) async fn journaled_clicks(world: &World) -> Vec<ClickRow> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let clicks = clicks::all(world.engine.journal().pool()).await.unwrap();
        if clicks.iter().all(|c| c.answered_by.is_some()) {
            return clicks;
        }
        assert!(
            Instant::now() < deadline,
            "answers not delivered: {clicks:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(super) async fn send_body(world: &World, body: &str) -> reqwest::Response {
    let now = jiff::Timestamp::now().as_second();
    let mut request = world
        .app
        .client
        .post(world.app.url("/v1/slack/interactions"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned());
    for (name, value) in signed_headers(SIGNING_SECRET, body, now) {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

async fn send_click(
    world: &World,
    rotation_id: &str,
    action: &str,
    user: &str,
    secret: &str,
    unix_seconds: i64,
) -> reqwest::Response {
    let body = world.slack.press(rotation_id, action, user, "someone");
    let mut request = world
        .app
        .client
        .post(world.app.url("/v1/slack/interactions"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.clone());
    for (name, value) in signed_headers(secret, &body, unix_seconds) {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

pub(super) async fn click_now(world: &World, rotation_id: &str, action: &str, user: &str) -> u16 {
    let now = jiff::Timestamp::now().as_second();
    click(world, rotation_id, action, user, SIGNING_SECRET, now).await
}

pub(super) async fn request_approval(world: &World, user: &str) -> String {
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
