//! An approval request Slack will not show with its buttons cannot be answered in Slack: the
//! rotation goes to a person at once (manual), saying why, instead of being posted as text that
//! looks like a question and waiting out the approval timeout for clicks that cannot come.

use token_rotator::sim::slack::POST_WITH_BUTTONS;

use super::*;

#[tokio::test]
async fn an_approval_request_whose_buttons_are_refused_goes_to_a_person_at_once() {
    let world = Sims::start()
        .await
        .world_with(None, approvals_options())
        .await;
    world
        .slack
        .faults
        .next(POST_WITH_BUTTONS, Fault::SlackError("invalid_blocks"), 1);
    let user = "no-buttons@alphagov.co.uk";
    world.seed(user, "Publishing API");
    world
        .app
        .post_webhook(batch(&[(user.into(), "Publishing API".into())]))
        .await;
    world.engine.run_until_idle().await.unwrap();
    wait_for_slack(&world).await;

    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "manual");
    assert_eq!(row.approval_ts, None, "no message stands for the request");
    let outcome = row.outcome.as_deref().unwrap_or_default();
    assert!(outcome.contains("invalid_blocks"), "{outcome}");
    assert!(outcome.contains("rotate it by hand"), "{outcome}");
    let audit = world.audit(&row.id).await;
    assert!(
        audit
            .iter()
            .any(|a| a.from_phase.as_deref() == Some("awaiting_approval")
                && a.to_phase == "manual"
                && a.trigger == "slack"),
        "{audit:#?}"
    );

    let posted = world.slack.posted();
    assert!(
        !posted
            .iter()
            .any(|m| m.text().contains("approve its rotation?")),
        "the request is not posted as text nobody can answer"
    );
    assert!(
        posted
            .iter()
            .any(|m| m.broadcast && m.all_text().contains("could not be shown with its buttons")),
        "the channel is told, not only the thread: {}",
        world.slack.transcript()
    );
    assert_eq!(world.signon.minted().len(), 0);

    // The engine leaves it alone: nothing waits for a click.
    world.engine.run_until_idle().await.unwrap();
    assert_eq!(world.rotations().await[0].phase, "manual");
}
