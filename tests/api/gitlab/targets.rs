//! One identity per GitLab token: the owner an alert names is resolved to GitLab's numeric id
//! before anything keys on it, a label that could reach another resource is refused, a token a
//! schedule owns is left to it, and an alert rotates only a token whose file holds it.

use super::{about, family, world};
use crate::process::kill;

#[tokio::test]
async fn three_spellings_of_one_project_are_one_token_one_rotation_one_file() {
    let world = world().await;
    let old = world.sim.add_token(world.project.clone(), "deploy-bot", 5);
    world.write("tokens/project-42-deploy-bot.token", &old);
    let mut child = world.spawn();
    world.serve.ready().await;
    // By path, by id, and by id with a space: one project.
    world
        .alert("a1a1a1a1a1a1a1a1", "project:platform/ci", "deploy-bot")
        .await;
    world
        .alert("b2b2b2b2b2b2b2b2", "project:42", "deploy-bot")
        .await;
    world
        .alert("c3c3c3c3c3c3c3c3", "project: 42", "deploy-bot")
        .await;
    // The schedule's rotation, and this token's.
    let rows = world.ended(2).await;
    // A fourth spelling after it is done: within the cooldown, nothing more.
    world
        .alert("d4d4d4d4d4d4d4d4", "project:Platform/CI", "deploy-bot")
        .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let after = world.serve.rotations().await;
    kill(&mut child);

    let mine = about(&rows, "deploy-bot");
    assert_eq!(
        mine.len(),
        1,
        "one rotation, whatever the spelling: {rows:#?}"
    );
    assert_eq!(mine[0]["api_user"], "project:42");
    assert_eq!(mine[0]["phase"], "done", "{mine:#?}");
    assert_eq!(
        about(&after, "deploy-bot").len(),
        1,
        "the cooldown saw the same token: {after:#?}"
    );
    let tokens = family(&world.sim, &world.project, "deploy-bot");
    assert_eq!(tokens.len(), 2, "GitLab rotated it once: {tokens:#?}");
    let new = world.read("tokens/project-42-deploy-bot.token");
    assert!(world.sim.is_live(&new), "the one file holds the live token");
    let files: Vec<_> = std::fs::read_dir(world.dir.path().join("tokens"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        files,
        vec!["project-42-deploy-bot.token".to_owned()],
        "no file per spelling"
    );
}

#[tokio::test]
async fn a_label_with_path_characters_is_refused_naming_it_and_reaches_no_gitlab_resource() {
    let world = world().await;
    let mut child = world.spawn();
    world.serve.ready().await;
    for (fingerprint, api_user) in [
        ("e5e5e5e5e5e5e5e5", "project:platform/../../users"),
        ("f6f6f6f6f6f6f6f6", "project:platform/ci?private_token=x"),
        ("a7a7a7a7a7a7a7a7", "group:platform%2F..%2Fadmin"),
        ("b8b8b8b8b8b8b8b8", "group:plat form"),
    ] {
        world.alert(fingerprint, api_user, "deploy-bot").await;
    }
    let rows = world.ended(5).await;
    kill(&mut child);

    let refused = about(&rows, "deploy-bot");
    assert_eq!(refused.len(), 4, "{rows:#?}");
    for row in refused {
        assert_eq!(row["phase"], "unroutable", "{row:#?}");
        let outcome = row["outcome"].as_str().unwrap();
        assert!(
            outcome.contains("does not name a GitLab token owner"),
            "{outcome}"
        );
        assert!(
            outcome.contains(&format!("{:?}", row["api_user"].as_str().unwrap())),
            "the outcome names the label: {outcome}"
        );
    }
    assert_eq!(
        world.sim.faults.calls("resolve"),
        1,
        "only the schedule's owner was looked up"
    );
    assert_eq!(
        world.sim.faults.calls("list"),
        1,
        "only the schedule's tokens were listed"
    );
}

#[tokio::test]
async fn an_alert_about_a_token_a_schedule_manages_leaves_it_to_the_schedule() {
    let world = world().await;
    let old = world.sim.add_token(world.project.clone(), "ci-bot", 20);
    world.write("ci-bot.token", &old);
    // The schedule names the project by its path; the alert by its id.
    let mut child = world.spawn();
    world.serve.ready().await;
    world
        .alert("c9c9c9c9c9c9c9c9", "project: 42", "ci-bot")
        .await;
    let rows = world.ended(2).await;
    kill(&mut child);

    let alerted = rows
        .iter()
        .find(|r| r["trigger"].as_str().unwrap().starts_with("alert:"))
        .unwrap();
    assert_eq!(alerted["phase"], "ignored", "{rows:#?}");
    let outcome = alerted["outcome"].as_str().unwrap();
    assert!(
        outcome.contains("managed by schedule \"ci-bot\""),
        "{outcome}"
    );
    let scheduled = rows
        .iter()
        .find(|r| r["trigger"] == "schedule:ci-bot")
        .unwrap();
    assert_eq!(scheduled["phase"], "done", "{rows:#?}");
    assert_eq!(
        scheduled["api_user"], "project:42",
        "the schedule's row names GitLab's id too"
    );
    assert_eq!(
        family(&world.sim, &world.project, "ci-bot").len(),
        2,
        "rotated once, by the schedule"
    );
    assert!(
        world.sim.is_live(&world.read("ci-bot.token")),
        "the schedule's file holds the live token"
    );
    assert!(
        !world
            .dir
            .path()
            .join("tokens/project-42-ci-bot.token")
            .exists(),
        "nothing written where nobody reads"
    );
}

#[tokio::test]
async fn an_alert_driven_token_without_its_file_or_with_another_token_there_is_refused() {
    let world = world().await;
    let missing = world.sim.add_token(world.web.clone(), "web-bot", 5);
    let other = world.sim.add_token(world.group.clone(), "release-bot", 5);
    let held = world.sim.add_token(world.group.clone(), "pages-bot", 5);
    // pages-bot's file holds release-bot's token: not the token the alert names.
    world.write("tokens/group-7-pages-bot.token", &other);
    let mut child = world.spawn();
    world.serve.ready().await;
    world
        .alert("d1d1d1d1d1d1d1d1", "project:platform/web", "web-bot")
        .await;
    world
        .alert("d2d2d2d2d2d2d2d2", "group:platform", "pages-bot")
        .await;
    let rows = world.ended(3).await;
    kill(&mut child);

    for (application, says) in [
        ("web-bot", "does not exist or is empty"),
        ("pages-bot", "holds no token GitLab lists as live"),
    ] {
        let row = about(&rows, application)[0];
        assert_eq!(row["phase"], "failed", "{row:#?}");
        let outcome = row["outcome"].as_str().unwrap();
        assert!(
            outcome.contains("refused") && outcome.contains(says),
            "{outcome}"
        );
    }
    for value in [&missing, &other, &held] {
        assert!(world.sim.is_live(value), "no token was rotated");
    }
    assert_eq!(world.sim.faults.calls("rotate"), 0);
}

#[tokio::test]
async fn an_alert_whose_owner_gitlab_cannot_look_up_now_waits_and_is_taken_in_later() {
    let world = world().await;
    let old = world.sim.add_token(world.web.clone(), "web-bot", 5);
    world.write("tokens/project-43-web-bot.token", &old);
    let mut child = world.spawn();
    world.serve.ready().await;
    world.ended(1).await;
    // GitLab fails the look-up twice: the alert is not decided without it.
    world
        .sim
        .faults
        .next("resolve", token_rotator::sim::Fault::Status(502), 2);
    world
        .alert("e1e1e1e1e1e1e1e1", "project:platform/web", "web-bot")
        .await;
    let rows = world.ended(2).await;
    kill(&mut child);

    let row = about(&rows, "web-bot")[0];
    assert_eq!(row["phase"], "done", "{row:#?}");
    assert_eq!(row["api_user"], "project:43");
    assert!(
        world
            .sim
            .is_live(&world.read("tokens/project-43-web-bot.token"))
    );
    assert!(
        world.sim.faults.calls("resolve") >= 4,
        "the schedule's, two failures, one answer"
    );
}
