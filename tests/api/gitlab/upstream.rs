//! GitLab as it is: lists a page at a time with revoked tokens kept, dates that end at their
//! start (00:00 UTC), a lifetime limit counted from the instance's own today, and a family
//! revoked when a revoked token is rotated. End to end through `serve` where the engine is
//! involved, and against the client alone where a date or a refusal is the point.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use secrecy::SecretString;
use token_rotator::adapters::gitlab::{DEFAULT_MAX_LIFETIME, GitLabClient, GitLabSettings};
use token_rotator::adapters::{Issuer, Permit};
use token_rotator::clock::{Clock, ManualClock};
use token_rotator::domain::{ApiUser, Application, Environment, Target};
use token_rotator::policy::Mode;
use token_rotator::sim::Fault;
use token_rotator::sim::gitlab::{GitLabSim, Owner};

use super::{GITLAB_TOKEN, about, family, world};
use crate::process::kill;

#[tokio::test]
async fn the_live_token_past_the_first_page_and_after_revoked_ones_is_rotated() {
    let world = world().await;
    // 45 revoked tokens of its name first, and 110 live ones of other names: with GitLab's
    // default 20 a page, the live one is pages away.
    for _ in 0..45 {
        world.sim.add_revoked(world.web.clone(), "web-bot");
    }
    for i in 0..110 {
        world
            .sim
            .add_token(world.web.clone(), &format!("other-{i}"), 30);
    }
    let old = world.sim.add_token(world.web.clone(), "web-bot", 5);
    world.write("tokens/project-43-web-bot.token", &old);
    let mut child = world.spawn();
    world.serve.ready().await;
    world
        .alert("1a2b3c4d5e6f7081", "project:platform/web", "web-bot")
        .await;
    let rows = world.ended(2).await;
    kill(&mut child);

    let row = about(&rows, "web-bot")[0];
    assert_eq!(row["phase"], "done", "{row:#?}");
    let new = world.read("tokens/project-43-web-bot.token");
    assert!(world.sim.is_live(&new) && !world.sim.is_live(&old));
}

#[tokio::test]
async fn a_lost_answer_is_recovered_from_the_last_page_and_no_revoked_token_is_rotated() {
    let world = world().await;
    for i in 0..110 {
        world
            .sim
            .add_token(world.project.clone(), &format!("other-{i}"), 30);
    }
    let old = world.sim.add_token(world.project.clone(), "ci-bot", 20);
    world.write("ci-bot.token", &old);
    world
        .sim
        .faults
        .next("rotate-answer", Fault::Status(502), 1);
    let mut child = world.spawn();
    world.serve.ready().await;
    let rows = world.ended(1).await;
    kill(&mut child);

    assert_eq!(rows[0]["phase"], "done", "{rows:#?}");
    let new = world.read("ci-bot.token");
    assert!(world.sim.is_live(&new));
    let tokens = family(&world.sim, &world.project, "ci-bot");
    assert_eq!(
        tokens.len(),
        3,
        "old, the lost answer's orphan, the recovered one: {tokens:#?}"
    );
    assert_eq!(tokens.iter().filter(|t| !t.revoked).count(), 1);
}

/// A client and a simulator on one clock, stopped at `now`.
async fn client_at(
    now: &str,
    zone: &str,
) -> (GitLabClient, Arc<GitLabSim>, token_rotator::sim::Running) {
    token_rotator::install_crypto_provider();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(now.parse::<Timestamp>().unwrap()));
    let sim = GitLabSim::new(GITLAB_TOKEN, Arc::clone(&clock));
    let zone = TimeZone::get(zone).unwrap();
    sim.set_time_zone(zone.clone());
    sim.add_project(42, "platform/ci");
    let running = sim.start().await.unwrap();
    let settings = GitLabSettings {
        url: running.url(),
        timeout: Duration::from_secs(5),
        max_lifetime: DEFAULT_MAX_LIFETIME,
        time_zone: zone,
        tokens_dir: None,
        environments: vec![],
    };
    let client = GitLabClient::new(&settings, SecretString::from(GITLAB_TOKEN), clock);
    (client, sim, running)
}

fn ci_bot() -> Target {
    Target {
        environment: Environment::parse("ops").unwrap(),
        api_user: ApiUser::parse("project:42").unwrap(),
        application: Application::parse("ci-bot").unwrap(),
    }
}

fn active() -> Permit {
    Permit::for_mode(Mode::Active).unwrap()
}

#[tokio::test]
async fn a_token_expires_at_the_start_of_its_date_in_utc_not_at_its_end() {
    let (client, sim, _running) = client_at("2026-03-02T15:00:00Z", "UTC").await;
    let project = Owner::Project("42".into());
    // Its date is today: it stopped working at 00:00 UTC.
    sim.add_token(project.clone(), "ci-bot", 0);
    sim.add_token(project, "ci-bot", 5);
    let listing = client.list(&ci_bot(), "k").await.unwrap();
    assert_eq!(
        listing.tokens.len(),
        1,
        "the one expired today is not live: {listing:?}"
    );
    assert_eq!(
        listing.tokens[0].expires_at,
        "2026-03-07T00:00:00Z".parse::<Timestamp>().unwrap(),
        "expires_at 2026-03-07 ends at that date's start"
    );
}

#[tokio::test]
async fn the_longest_life_is_counted_from_the_instances_today_in_its_time_zone() {
    // 05:00 UTC on the 2nd is the evening of the 1st in Los Angeles: the instance's today.
    let (client, sim, _running) = client_at("2026-03-02T05:00:00Z", "America/Los_Angeles").await;
    sim.add_token(Owner::Project("42".into()), "ci-bot", 20);
    let old = client.list(&ci_bot(), "k").await.unwrap().tokens[0]
        .id
        .clone();
    let two_years = Duration::from_secs(730 * 86400);
    let minted = client
        .mint(&active(), &ci_bot(), two_years, "k", Some(&old))
        .await
        .unwrap();
    assert_eq!(
        minted.expires_at,
        "2027-03-01T00:00:00Z".parse::<Timestamp>().unwrap(),
        "365 days after the instance's today, 2026-03-01"
    );
}

#[tokio::test]
async fn a_revoked_token_is_never_rotated_so_its_family_stays_live() {
    let (client, sim, _running) = client_at("2026-03-02T10:00:00Z", "UTC").await;
    sim.add_token(Owner::Project("42".into()), "ci-bot", 20);
    let old = client.list(&ci_bot(), "k").await.unwrap().tokens[0]
        .id
        .clone();
    let life = Duration::from_secs(30 * 86400);
    client
        .mint(&active(), &ci_bot(), life, "k", Some(&old))
        .await
        .unwrap();
    // Asked again with the token the first rotation revoked (a journal naming it as old).
    let refused = client
        .mint(&active(), &ci_bot(), life, "k", Some(&old))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("refusing to rotate") && refused.contains("revoked"),
        "{refused}"
    );
    let live: Vec<_> = sim.tokens().into_iter().filter(|t| !t.revoked).collect();
    assert_eq!(
        live.len(),
        1,
        "the first rotation's token is still live: {live:#?}"
    );
    assert_eq!(
        sim.faults.calls("rotate"),
        1,
        "GitLab was asked to rotate once"
    );
}
