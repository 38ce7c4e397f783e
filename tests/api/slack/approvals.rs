//! Approve / Reject: signed clicks, approvers, second clicks, expiry, the command line.

use super::*;

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
    // The clicker alone hears it: the first answer was the approval, the second the late click.
    let approved = answer_after(&world, "U0ALICE", 0).await;
    assert!(
        approved.text.contains("You approved the rotation of"),
        "{}",
        approved.text
    );
    let late = answer_after(&world, "U0ALICE", 1).await;
    assert!(
        late.text.contains("but it is closed (done"),
        "{}",
        late.text
    );
    let text: String = messages.iter().map(Message::all_text).collect();
    assert!(!text.contains("it is closed"), "not in the channel: {text}");
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
    let refused = answer_after(&world, "U0MALLORY", 0).await;
    assert!(
        refused.text.contains("You may not decide"),
        "{}",
        refused.text
    );
    let text: String = world.slack.posted().iter().map(Message::all_text).collect();
    assert!(
        !text.contains("may not decide"),
        "told the clicker alone: {text}"
    );
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
    let late = answer_after(&world, "U0ALICE", 0).await;
    assert!(
        late.text.contains("but it is closed (manual"),
        "{}",
        late.text
    );
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
            "database_url = \"{}\"\n[environments.production]\n[[rules]]\nname = \"x\"\naction = \"rotate\"\n",
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
