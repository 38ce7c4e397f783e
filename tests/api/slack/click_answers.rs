//! Every click is answered, to its clicker alone: Slack shows nothing of an acknowledgement's
//! body for `block_actions`, so the answer goes through the response URL Slack handed out in
//! the payload (or `chat.postEphemeral`), and the journal keeps the click with that answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;
use token_rotator::sim::slack::{
    RESPONSE_URL_LIFETIME, RESPONSE_URL_USES, interaction_answering_at,
};

use super::*;

fn mentions_anyone(text: &str) -> bool {
    text.contains("<@") || text.contains("<!subteam^") || text.contains("<!")
}

#[tokio::test]
async fn every_kind_of_click_is_answered_to_its_clicker_alone_and_journaled() {
    let world = Sims::start()
        .await
        .world_with(None, approvals_options())
        .await;
    world.slack.set_group("S0PLATFORM", &["U0BOB"]);
    let id = request_approval(&world, "answered@alphagov.co.uk").await;
    wait_for_slack(&world).await;

    // The approvers' group cannot be read: nothing is decided, the clicker is asked to retry.
    world
        .slack
        .faults
        .next("usergroups.users.list", Fault::Status(500), 1);
    let (status, again) = click_answer(&world, &id, APPROVE, "U0BOB").await;
    assert_eq!(status, 200);
    assert!(again.contains("try again"), "{again}");

    // Not an approver: told who is, by id, with no one pinged.
    let (status, refused) = click_answer(&world, &id, APPROVE, "U0MALLORY").await;
    assert_eq!(status, 200);
    assert!(refused.contains("You may not decide"), "{refused}");
    assert!(refused.contains("user `U0ALICE`"), "{refused}");
    assert!(refused.contains("user group `S0PLATFORM`"), "{refused}");
    assert!(!mentions_anyone(&refused), "{refused}");

    let (_, approved) = click_answer(&world, &id, APPROVE, "U0BOB").await;
    assert!(
        approved.contains("You approved the rotation of"),
        "{approved}"
    );

    // Already decided.
    let (_, closed) = click_answer(&world, &id, REJECT, "U0ALICE").await;
    assert!(closed.contains("it is closed (planned"), "{closed}");
    assert!(
        closed.contains("decided by `slack:U0BOB (someone)`"),
        "{closed}"
    );
    assert!(!mentions_anyone(&closed), "{closed}");

    // A button whose request the journal does not have.
    let (_, unknown) = click_answer(&world, "r-no-such-rotation", APPROVE, "U0ALICE").await;
    assert!(unknown.contains("does not have"), "{unknown}");

    for answer in world.slack.answers() {
        assert_eq!(answer.via, "response_url", "{answer:?}");
        assert_eq!(answer.body["response_type"], "ephemeral", "{answer:?}");
        assert_eq!(answer.body["replace_original"], false, "{answer:?}");
    }
    let clicks = journaled_clicks(&world).await;
    let journaled: Vec<(&str, &str, &str)> = clicks
        .iter()
        .map(|c| (c.user_id.as_str(), c.action.as_str(), c.outcome.as_str()))
        .collect();
    assert_eq!(
        journaled,
        [
            ("U0BOB", "approve", "try_again"),
            ("U0MALLORY", "approve", "refused"),
            ("U0BOB", "approve", "approved"),
            ("U0ALICE", "reject", "closed"),
            ("U0ALICE", "approve", "unknown"),
        ]
    );
    let told = [&again, &refused, &approved, &closed, &unknown];
    for (click, text) in clicks.iter().zip(told) {
        assert_eq!(click.answered_by.as_deref(), Some("response_url"));
        assert_eq!(text.trim(), click.answer);
    }
    assert_eq!(clicks[4].rotation_id, "r-no-such-rotation");

    // None of it reached the channel.
    wait_for_slack(&world).await;
    let channel: String = world.slack.posted().iter().map(Message::all_text).collect();
    for words in [
        "may not decide",
        "it is closed",
        "try again",
        "does not have",
    ] {
        assert!(
            !channel.contains(words),
            "{words:?} in the channel: {channel}"
        );
    }
}

#[tokio::test]
async fn a_click_the_journal_cannot_take_is_answered_and_changes_nothing() {
    let world = Sims::start()
        .await
        .world_with(None, approvals_options())
        .await;
    let id = request_approval(&world, "unjournaled@alphagov.co.uk").await;
    wait_for_slack(&world).await;
    let url = crate::helpers::database_url(world.app.dir.path());
    let mut other = SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse_decisions BEFORE UPDATE ON rotations \
         BEGIN SELECT RAISE(ABORT, 'refused-by-the-test'); END",
    )
    .execute(&mut other)
    .await
    .unwrap();

    let (status, text) = click_answer(&world, &id, APPROVE, "U0ALICE").await;
    assert_eq!(status, 200, "Slack hears a plain acknowledgement");
    assert!(text.contains("could not record your choice"), "{text}");
    assert!(
        !text.contains("refused-by-the-test"),
        "the database's words stay in the log: {text}"
    );
    assert_eq!(world.rotations().await[0].phase, "awaiting_approval");

    sqlx::query("DROP TRIGGER refuse_decisions")
        .execute(&mut other)
        .await
        .unwrap();
    let (_, text) = click_answer(&world, &id, APPROVE, "U0ALICE").await;
    assert!(text.contains("You approved"), "{text}");
}

/// The simulator holds Slack's rule (5 answers within 30 minutes), and the service, given a
/// response URL Slack no longer takes, answers with `chat.postEphemeral` instead.
#[tokio::test]
async fn a_used_up_or_expired_response_url_is_refused_and_the_answer_still_arrives() {
    let world = Sims::start()
        .await
        .world_with(None, approvals_options())
        .await;
    let response_url = |body: &str| -> String {
        let payload = form_urlencoded::parse(body.as_bytes())
            .find(|(k, _)| k == "payload")
            .unwrap()
            .1;
        let payload: Value = serde_json::from_str(&payload).unwrap();
        payload["response_url"].as_str().unwrap().to_owned()
    };
    let client = reqwest::Client::new();
    let post = |url: String, n: u32| {
        let request = client
            .post(url)
            .json(&json!({"text": format!("answer {n}")}));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let used = response_url(&world.slack.press("r-x", APPROVE, "U0ALICE", "alice"));
    for n in 0..RESPONSE_URL_USES {
        assert_eq!(post(used.clone(), n).await, 200, "use {n}");
    }
    assert_eq!(post(used.clone(), 5).await, 404, "a sixth use is refused");
    let late = response_url(&world.slack.press("r-x", APPROVE, "U0ALICE", "alice"));
    world
        .slack
        .elapse(RESPONSE_URL_LIFETIME + Duration::from_secs(1));
    assert_eq!(post(late, 0).await, 404, "past 30 minutes it is refused");
    assert_eq!(world.slack.refused_responses(), 2);
    assert_eq!(world.slack.answers_for("U0ALICE").len(), 5);

    let id = request_approval(&world, "expired-url@alphagov.co.uk").await;
    wait_for_slack(&world).await;
    let body = world.slack.press(&id, APPROVE, "U0ALICE", "alice");
    world
        .slack
        .elapse(RESPONSE_URL_LIFETIME + Duration::from_secs(60));
    assert_eq!(send_body(&world, &body).await.status(), 200);
    let answer = answer_after(&world, "U0ALICE", 5).await;
    assert_eq!(answer.via, "chat.postEphemeral");
    assert_eq!(
        answer.body["channel"], "C0ROTATIONS",
        "where the button was"
    );
    assert!(answer.text.contains("You approved"), "{}", answer.text);
    assert_eq!(
        world.slack.refused_responses(),
        3,
        "the service tried the URL first"
    );
    let clicks = journaled_clicks(&world).await;
    assert_eq!(clicks[0].answered_by.as_deref(), Some("chat.postEphemeral"));
}

/// A response URL comes from a signed payload, yet only Slack's origin (`[slack] api_url`'s)
/// is ever called: anything else would make a leaked signing secret a way to have the service
/// POST wherever its network reaches.
#[tokio::test]
async fn a_response_url_outside_the_slack_origin_is_never_called() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let elsewhere = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&hits);
    let _server = tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    let world = Sims::start()
        .await
        .world_with(None, approvals_options())
        .await;
    world.slack.set_group("S0PLATFORM", &[]);
    let id = request_approval(&world, "origin@alphagov.co.uk").await;
    wait_for_slack(&world).await;
    let slack = world.slack.press(&id, REJECT, "U0MALLORY", "mallory");
    let slack_url = form_urlencoded::parse(slack.as_bytes())
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| serde_json::from_str::<Value>(&v).unwrap()["response_url"].clone())
        .unwrap();
    let same_path = slack_url
        .as_str()
        .unwrap()
        .split_once("/actions/")
        .unwrap()
        .1;
    let outside = [
        format!("http://{elsewhere}/actions/{same_path}"),
        format!("http://localhost:{}/actions/{same_path}", elsewhere.port()),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ];
    for (n, url) in outside.iter().enumerate() {
        let body = interaction_answering_at(&id, REJECT, "U0MALLORY", "mallory", url);
        assert_eq!(send_body(&world, &body).await.status(), 200);
        let answer = answer_after(&world, "U0MALLORY", n).await;
        assert_eq!(answer.via, "chat.postEphemeral", "{url}");
        assert!(
            answer.text.contains("You may not decide"),
            "{}",
            answer.text
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "nothing outside Slack was called"
    );
    assert_eq!(world.rotations().await[0].phase, "awaiting_approval");
}
