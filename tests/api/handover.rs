//! Handover: a scheduled target's token handed to its owner through a one-time link, the
//! rotation waiting until the owner confirms or the window ends.

use std::time::Duration;

use token_rotator::clock::Clock;
use token_rotator::config::{ScheduleDistribution, ScheduleSettings};
use token_rotator::engine::Schedule;

use crate::scheduled::{DAY, daily};
use crate::world::{Sims, World, WorldOptions};

/// The owner's Slack member id: the link goes to them alone.
const OWNER: &str = "U0WEATHER1";

fn handed_over(window: Duration) -> ScheduleSettings {
    ScheduleSettings {
        issuer: token_rotator::config::ScheduleIssuer::Synoptic,
        schedule: Schedule {
            handover: Some(token_rotator::engine::Handover {
                owner: OWNER.into(),
                window,
            }),
            ..daily(std::path::Path::new("/unused"), false).schedule
        },
        distribution: ScheduleDistribution::Handover,
    }
}

async fn handover_world(window: Duration) -> (World, String) {
    let sims = Sims::start().await;
    let first = sims.synoptic.add_token(Some(sims.clock.now() + DAY), &[]);
    let options = WorldOptions {
        schedules: vec![handed_over(window)],
        grace: Duration::from_secs(600),
        // Handover links travel as direct messages: the Web API notifier.
        slack_threads: true,
        ..WorldOptions::default()
    };
    (sims.world_with(None, options).await, first)
}

/// Until `done` holds: the notifier posts on its own, at Slack's pace (one post a second per
/// conversation), so a thread's third message is seconds away.
async fn eventually(done: impl Fn() -> bool) {
    for _ in 0..150 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The link's path, from the direct message the owner received.
async fn link(world: &World) -> String {
    let texts = || -> String {
        let direct = world.slack.direct_messages(OWNER);
        direct.iter().map(|m| m.all_text()).collect()
    };
    eventually(|| texts().contains("/v1/handover/")).await;
    let texts = texts();
    let start = texts.find("/v1/handover/").unwrap_or_else(|| {
        panic!(
            "no handover link reached {OWNER}: {}",
            world.slack.transcript()
        )
    });
    texts[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches(['.', ',', '>'])
        .to_owned()
}

#[tokio::test]
async fn a_handover_is_collected_once_confirmed_then_verified() {
    let (world, first) = handover_world(2 * DAY).await;
    world.engine.run_until_idle().await.unwrap();
    assert_eq!(world.rotations().await[0].phase, "awaiting_handover");
    // Queued or sent, the outbox never holds the link in clear.
    for n in world.notifications().await {
        assert!(!n.body.contains("/v1/handover/"), "{n:?}");
    }
    let path = link(&world).await;
    let told = format!("<@{OWNER}> has the one-time link");
    eventually(|| {
        let slack = &world.slack;
        slack.posted().iter().any(|m| m.all_text().contains(&told))
    })
    .await;
    // The channel hears that the owner has it, never the link; the journal never held it in
    // clear and holds nothing of it once it was sent.
    let id = path.rsplit('/').next().unwrap().to_owned();
    let channel: String = world
        .slack
        .posted()
        .iter()
        .filter(|m| !m.channel.starts_with('D'))
        .map(|m| m.all_text())
        .collect();
    assert!(channel.contains(&told), "{channel}");
    assert!(!channel.contains("/v1/handover/"), "{channel}");
    for n in world.notifications().await {
        assert!(!n.body.contains(&id), "{n:?}");
    }

    // A GET (a link scanner, a chat preview, the owner opening it) shows a page and spends
    // nothing; the POST its button sends reveals the token, once.
    for _ in 0..3 {
        let (status, page) = world.app.get_text(&path).await;
        assert_eq!(status, 200);
        assert!(page.contains("Reveal the token (once)"), "{page}");
    }
    // The page may not be framed (a click-jacked reveal) and runs nothing; its form posts here.
    let page = world
        .app
        .client
        .get(world.app.url(&path))
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        page.headers()
            .get(name)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(header("x-frame-options"), "DENY");
    let policy = header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(policy.contains(directive), "{policy}");
    }
    let reveal = |path: String| {
        let request = world.app.client.post(world.app.url(&path));
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let (status, token) = reveal(path.clone()).await;
    assert_eq!(status, 200);
    let token = token.trim().to_owned();
    assert!(world.synoptic().is_live(&token) && token != first);
    let (again, body) = reveal(path.clone()).await;
    assert_eq!(again, 410, "a second collection gets nothing: {body}");
    assert!(!body.contains(&token));
    let (page_after, _) = world.app.get_text(&path).await;
    assert_eq!(page_after, 410);
    let (unknown, _) = reveal("/v1/handover/0123456789abcdef".into()).await;
    assert_eq!(unknown, 404);
    // The journal holds the link id's hash, never the id.
    let row = token_rotator::store::handovers::of_rotation(
        world.engine.journal().pool(),
        &world.rotations().await[0].id,
    )
    .await
    .unwrap()
    .unwrap();
    assert_ne!(row.id, id);
    assert_eq!(row.id.len(), 64);

    // Still waiting until the owner says it is in place.
    world.clock.advance(Duration::from_secs(3600));
    world.engine.run_until_idle().await.unwrap();
    assert_eq!(world.rotations().await[0].phase, "awaiting_handover");
    let confirmed = world
        .app
        .client
        .post(world.app.url(&format!("{path}/confirm")))
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200);
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "done", "{row:#?}");
    assert!(
        row.new_token_sealed.is_none(),
        "nothing sealed outlives the rotation"
    );
    let audit = world.audit(&row.id).await;
    assert!(
        audit
            .iter()
            .any(|a| a.reason.contains("the owner confirmed"))
    );
    assert!(
        world.synoptic().is_live(&first),
        "the old token dies at its own expiry"
    );
}

#[tokio::test]
async fn an_unconfirmed_handover_goes_on_to_verify_when_its_window_ends() {
    let (world, _) = handover_world(Duration::from_secs(3 * 3600)).await;
    world.engine.run_until_idle().await.unwrap();
    let path = link(&world).await;
    world.clock.advance(Duration::from_secs(3 * 3600 + 1));
    world.run_to_the_end().await;
    let row = &world.rotations().await[0];
    assert_eq!(row.phase, "done", "{row:#?}");
    let audit = world.audit(&row.id).await;
    assert!(
        audit.iter().any(|a| a.reason.contains("never collected")),
        "{audit:#?}"
    );
    let (gone, _) = world.app.get_text(&path).await;
    assert_eq!(gone, 410, "an expired link gives nothing");
}

#[tokio::test]
async fn a_link_that_cannot_reach_its_owner_is_said_so_and_kept_nowhere() {
    let (world, _) = handover_world(2 * DAY).await;
    world.slack.disable_user(OWNER);
    world.engine.run_until_idle().await.unwrap();
    let said = format!("could not be sent to <@{OWNER}>: Slack answered `user_disabled`");
    let everything = || -> String { world.slack.posted().iter().map(|m| m.all_text()).collect() };
    eventually(|| everything().contains(&said)).await;
    let transcript = everything();
    assert!(
        transcript.contains(&said),
        "{transcript}\n{:#?}",
        world.notifications().await
    );
    assert!(!transcript.contains("/v1/handover/"), "{transcript}");
    assert!(world.slack.direct_messages(OWNER).is_empty());
    let direct: Vec<_> = world
        .notifications()
        .await
        .into_iter()
        .filter(|n| n.kind == "direct")
        .collect();
    assert_eq!(direct.len(), 1);
    assert_eq!(direct[0].last_error.as_deref(), Some("user_disabled"));
    assert!(
        !direct[0].body.contains("sealed"),
        "given up: nothing sealed is kept: {}",
        direct[0].body
    );
}

/// `POST <link>/confirm` through the real edge: `(status, body)`.
async fn confirm(world: &World, path: &str) -> (u16, String) {
    let response = world
        .app
        .client
        .post(world.app.url(&format!("{path}/confirm")))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn a_confirm_before_the_token_is_collected_is_refused_and_changes_nothing() {
    let (world, first) = handover_world(2 * DAY).await;
    world.engine.run_until_idle().await.unwrap();
    let path = link(&world).await;
    let rotation = world.rotations().await[0].id.clone();

    // Nobody has the token yet: a confirm now would end the rotation and drop the only copy.
    let (status, body) = confirm(&world, &path).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("collect the token first"), "{body}");
    let pool = world.engine.journal().pool();
    let row = token_rotator::store::handovers::of_rotation(pool, &rotation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.confirmed_at_ms, None, "the refusal changes nothing");
    assert_eq!(row.collected_at_ms, None);
    world.clock.advance(Duration::from_secs(3600));
    world.engine.run_until_idle().await.unwrap();
    let rotation_row = &world.rotations().await[0];
    assert_eq!(rotation_row.phase, "awaiting_handover", "{rotation_row:#?}");
    assert!(
        rotation_row.new_token_sealed.is_some(),
        "the token is still held"
    );

    // The owner can still collect it, and then confirm.
    let response = world
        .app
        .client
        .post(world.app.url(&path))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let token = response.text().await.unwrap().trim().to_owned();
    assert!(world.synoptic().is_live(&token) && token != first);
    let (status, body) = confirm(&world, &path).await;
    assert_eq!(status, 200, "{body}");
    // A second confirm changes nothing and says so.
    let (again, body) = confirm(&world, &path).await;
    assert_eq!(again, 200, "{body}");
    assert!(body.contains("already"), "{body}");
    world.run_to_the_end().await;
    let done = &world.rotations().await[0];
    assert_eq!(done.phase, "done", "{done:#?}");
    let audit = world.audit(&done.id).await;
    assert!(
        audit
            .iter()
            .any(|a| a.reason.contains("the owner confirmed"))
    );
}
