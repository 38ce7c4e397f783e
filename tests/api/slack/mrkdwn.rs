//! Labels in Slack: whatever an alert (or a person at the command line) puts in a label
//! reaches Slack as text, never as formatting, a link, a mention or a line of its own.

use token_rotator::commands::rotate;
use token_rotator::domain::{ApiUser, Application, Environment, Target};
use token_rotator::policy::Mode;

use super::*;

/// Every string Slack renders in a message: its fallback `text` and every text object's.
fn texts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("text", Value::String(s)) => out.push(s.clone()),
                    _ => texts(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| texts(v, out)),
        _ => {}
    }
}

/// Whether every mrkdwn text object in `value` is `verbatim` (no auto-linking of bare URLs,
/// `#channel`s or `@name`s).
fn all_verbatim(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            (map.get("type") != Some(&json!("mrkdwn")) || map.get("verbatim") == Some(&json!(true)))
                && map.values().all(all_verbatim)
        }
        Value::Array(items) => items.iter().all(all_verbatim),
        _ => true,
    }
}

/// Nothing of the hostile labels formats: no bold, no code span of theirs, no link, no emoji,
/// no line of their own; and they did arrive (as look-alike characters).
fn assert_inert(messages: &[Message]) {
    let mut all = Vec::new();
    for message in messages {
        assert!(all_verbatim(&message.body), "{:#}", message.body);
        texts(&message.body, &mut all);
    }
    for text in &all {
        for live in [
            "*bold*",
            "`*bold",
            "bold*`",
            "<https://evil",
            "|x>",
            "_it_",
            "~s~",
            ":fire:",
        ] {
            assert!(!text.contains(live), "{live:?} is live in {text:?}");
        }
        for line in text.lines() {
            assert!(
                !line.trim_start().starts_with("fake line"),
                "a line of its own: {text:?}"
            );
        }
    }
    assert!(
        all.iter()
            .any(|t| t.contains("\u{2217}bold\u{2217}") && t.contains("&lt;https://evil|x&gt;")),
        "the label reached Slack: {all:#?}"
    );
}

/// An alert's labels carry mrkdwn: they are shown, inert, in every message of the thread.
#[tokio::test]
async fn an_alerts_labels_cannot_format_link_or_mention_in_slack() {
    let world = Sims::start()
        .await
        .world_with(None, threads_options())
        .await;
    let user = "mrkdwn@alphagov.co.uk";
    let hostile = "`*bold*` <https://evil|x> _it_ ~s~ :fire: https://evil.example @here";
    world.seed(user, hostile);
    let labels = |environment: &str| {
        let one: Value = serde_json::from_slice(&alert_body(
            if environment == "production" {
                "00000000000000e1"
            } else {
                "00000000000000e2"
            },
            &[
                ("alertname", "SignonApiUserTokenExpirySoon"),
                ("environment", environment),
                ("api_user", user),
                ("application", hostile),
            ],
        ))
        .unwrap();
        one["alerts"][0].clone()
    };
    let mut body: Value = serde_json::from_slice(&alert_body("0000000000000000", &[])).unwrap();
    // The second alert's environment is hostile too (and not served: its reason quotes it).
    body["alerts"] = json!([labels("production"), labels(hostile)]);
    let answer = world
        .app
        .post_webhook(serde_json::to_vec(&body).unwrap())
        .await;
    assert_eq!(answer.status(), 200);
    world.run_to_the_end().await;
    wait_for_slack(&world).await;
    let messages = world.slack.posted();
    assert!(messages.len() >= 2, "{}", world.slack.transcript());
    assert_inert(&messages);
}

/// The label the attack used, newline and all: the webhook refuses it (400), and where such a
/// value can still come from (a rotation asked for on the command line, or journaled before
/// labels were checked), Slack still shows it on one line, inert.
#[tokio::test]
async fn a_label_with_a_newline_is_refused_and_rendered_inert_where_it_comes_from_elsewhere() {
    const HOSTILE: &str = "`*bold*` <https://evil|x> \n fake line";
    let world = Sims::start()
        .await
        .world_with(None, threads_options())
        .await;
    let refused = world
        .app
        .post_webhook(alert_body(
            "00000000000000e3",
            &[
                ("environment", "production"),
                ("api_user", HOSTILE),
                ("application", "Publishing API"),
            ],
        ))
        .await;
    assert_eq!(refused.status(), 400);

    let target = Target {
        environment: Environment::parse("production").unwrap(),
        api_user: ApiUser::parse(HOSTILE).unwrap(),
        application: Application::parse("Publishing API").unwrap(),
    };
    rotate::request(
        world.engine.journal(),
        &target,
        Mode::Active,
        CHANNEL.to_owned(),
        world.clock.now(),
    )
    .await
    .unwrap();
    world.run_to_the_end().await;
    wait_for_slack(&world).await;
    let messages = world.slack.posted();
    assert!(!messages.is_empty(), "{}", world.slack.transcript());
    assert_inert(&messages);
}
