//! GitLab access tokens, end to end through `token-rotator serve` (its config, its wiring, the
//! engine) against the GitLab simulator: a scheduled target into a file, an alert-driven one into
//! the tokens directory, a rotation whose answer was lost, and the simulator refusing what GitLab
//! refuses. The provider is `src/adapters/gitlab/`; `targets` holds one identity per token,
//! `upstream` GitLab's pages, dates and token families, `sim` the simulator's own rules.

mod sim;
mod targets;
mod upstream;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use token_rotator::clock::{Clock, SystemClock};
use token_rotator::sim::gitlab::{GitLabSim, Owner};
use token_rotator::sim::slack::{SlackSim, WEBHOOK_PATH};
use token_rotator::sim::{Fault, Running};

use crate::helpers::alert_body;
use crate::process::{Serve, free_port, kill};

const GITLAB_TOKEN: &str = "glpat-token-rotator-maintainer";

struct GitLabWorld {
    sim: Arc<GitLabSim>,
    _gitlab: Running,
    _slack: Running,
    serve: Serve,
    dir: tempfile::TempDir,
    /// Project 42, `platform/ci`: the schedule's (named by its path; token `ci-bot`).
    project: Owner,
    /// Project 43, `platform/web`: no schedule's.
    web: Owner,
    /// Group 7, `platform`.
    group: Owner,
}

async fn world() -> GitLabWorld {
    token_rotator::install_crypto_provider();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let sim = GitLabSim::new(GITLAB_TOKEN, clock);
    let project = sim.add_project(42, "platform/ci");
    let web = sim.add_project(43, "platform/web");
    let group = sim.add_group(7, "platform");
    let gitlab = sim.start().await.unwrap();
    let slack = SlackSim::new().start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = |name: &str| dir.path().join(name).display().to_string();
    std::fs::create_dir_all(path("tokens")).unwrap();
    let config = format!(
        r#"database_url = "sqlite://{journal}"
listen = "127.0.0.1:{port}"

[environments.ops]
mode = "active"

[rotation]
grace_period = "1s"
retry_min_delay = "200ms"

[gitlab]
url = "{gitlab}"
tokens_dir = "{tokens}"
environments = ["ops"]

[[schedules]]
name = "ci-bot"
issuer = "gitlab"
environment = "ops"
owner = "project:platform/ci"
token = "ci-bot"
every = "1d"
file = {{ path = "{ci_bot}" }}

[[rules]]
name = "gitlab-tokens"
action = "rotate"
match = {{ environment = "ops" }}
"#,
        journal = path("journal.db"),
        gitlab = gitlab.url(),
        tokens = path("tokens"),
        ci_bot = path("ci-bot.token"),
    );
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, config).unwrap();
    let serve = Serve::new(config_path, port, format!("{}{WEBHOOK_PATH}", slack.url()));
    GitLabWorld {
        sim,
        _gitlab: gitlab,
        _slack: slack,
        serve,
        dir,
        project,
        web,
        group,
    }
}

impl GitLabWorld {
    fn spawn(&self) -> crate::process::Spawned {
        self.serve.spawn_with(|c| {
            c.env("TOKEN_ROTATOR_GITLAB_TOKEN", GITLAB_TOKEN);
        })
    }

    /// Waits until `count` rotations are journaled and every one has ended; returns them.
    async fn ended(&self, count: usize) -> Vec<serde_json::Value> {
        for _ in 0..300 {
            let rows = self.serve.rotations().await;
            if rows.len() >= count && rows.iter().all(|r| r["finished_at_ms"].is_number()) {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("not ended: {:#?}", self.serve.rotations().await);
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap()
    }

    fn write(&self, name: &str, value: &str) {
        std::fs::write(self.dir.path().join(name), value).unwrap();
    }

    /// Posts an alert from the GitLab environment naming `api_user`'s token `application`.
    async fn alert(&self, fingerprint: &str, api_user: &str, application: &str) {
        let body = alert_body(
            fingerprint,
            &[
                ("alertname", "GitLabTokenExpirySoon"),
                ("environment", "ops"),
                ("api_user", api_user),
                ("application", application),
            ],
        );
        assert!(self.serve.post_webhook(body).await);
    }
}

/// The rows about `application`'s token.
fn about<'a>(rows: &'a [serde_json::Value], application: &str) -> Vec<&'a serde_json::Value> {
    rows.iter()
        .filter(|r| r["application"] == application)
        .collect()
}

/// Every token GitLab keeps of `owner` named `name`, live or not.
pub(crate) fn family(
    sim: &GitLabSim,
    owner: &Owner,
    name: &str,
) -> Vec<token_rotator::sim::gitlab::GitLabToken> {
    sim.tokens()
        .into_iter()
        .filter(|t| &t.owner == owner && t.name == name)
        .collect()
}

fn live_named(sim: &GitLabSim, owner: &Owner, name: &str) -> Vec<String> {
    sim.tokens()
        .into_iter()
        .filter(|t| &t.owner == owner && t.name == name && !t.revoked)
        .map(|t| t.value)
        .collect()
}

#[tokio::test]
async fn a_scheduled_gitlab_token_is_rotated_into_its_file_and_the_old_one_is_gone_at_once() {
    let world = world().await;
    let project = world.project.clone();
    let old = world.sim.add_token(project.clone(), "ci-bot", 20);
    std::fs::write(world.dir.path().join("ci-bot.token"), &old).unwrap();
    let mut child = world.spawn();
    world.serve.ready().await;
    let rows = world.ended(1).await;
    kill(&mut child);

    assert_eq!(rows[0]["phase"], "done", "{rows:#?}");
    let new = world.read("ci-bot.token");
    assert_ne!(new, old);
    assert!(world.sim.is_live(&new), "the file holds a live token");
    assert!(
        !world.sim.is_live(&old),
        "GitLab's rotation revoked the old one"
    );
    assert_eq!(
        live_named(&world.sim, &project, "ci-bot"),
        vec![new.clone()],
        "GitLab lists one live ci-bot: the one in the file"
    );
    // Rotate, not mint: the old token was found by asking GitLab which token the file holds.
    assert_eq!(world.sim.faults.calls("self"), 2, "identify, then verify");
    let outcome = rows[0]["outcome"].as_str().unwrap();
    assert!(
        outcome.contains("revoked by GitLab's rotation"),
        "{outcome}"
    );
    let journal = std::fs::read(world.dir.path().join("journal.db")).unwrap();
    for secret in [&old, &new] {
        assert!(
            !journal
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "a token value in the journal in clear"
        );
    }
}

#[tokio::test]
async fn an_alert_naming_a_gitlab_token_rotates_it_into_the_tokens_directory() {
    let world = world().await;
    let old = world.sim.add_token(world.group.clone(), "deploy-bot", 5);
    // The alert names the group by its path; the file is named after GitLab's id for it.
    let file = "tokens/group-7-deploy-bot.token";
    std::fs::write(world.dir.path().join(file), &old).unwrap();
    // The scheduled target has no token: it fails on its own, saying so.
    let mut child = world.spawn();
    world.serve.ready().await;
    let body = alert_body(
        "9a1b2c3d4e5f6071",
        &[
            ("alertname", "GitLabTokenExpirySoon"),
            ("environment", "ops"),
            ("api_user", "group:platform"),
            ("application", "deploy-bot"),
        ],
    );
    assert!(world.serve.post_webhook(body).await);
    let rows = world.ended(2).await;
    kill(&mut child);

    let alerted = rows.iter().find(|r| r["api_user"] == "group:7").unwrap();
    assert_eq!(alerted["phase"], "done", "{rows:#?}");
    let new = world.read(file);
    assert!(world.sim.is_live(&new) && !world.sim.is_live(&old));
    let scheduled = rows.iter().find(|r| r["api_user"] == "project:42").unwrap();
    assert_eq!(scheduled["phase"], "failed");
    assert!(
        scheduled["outcome"]
            .as_str()
            .unwrap()
            .contains("GitLab lists no live token"),
        "{scheduled:#?}"
    );
}

#[tokio::test]
async fn a_rotation_whose_answer_was_lost_is_recovered_by_rotating_the_orphan() {
    let world = world().await;
    let project = world.project.clone();
    let old = world.sim.add_token(project.clone(), "ci-bot", 20);
    std::fs::write(world.dir.path().join("ci-bot.token"), &old).unwrap();
    // GitLab rotates, then the connection drops: the old token is revoked and the new value lost.
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
    let family: Vec<_> = world
        .sim
        .tokens()
        .into_iter()
        .filter(|t| t.owner == project && t.name == "ci-bot")
        .collect();
    assert_eq!(
        family.len(),
        3,
        "old, the orphan of the lost answer, the recovered one"
    );
    assert_eq!(
        family.iter().filter(|t| !t.revoked).count(),
        1,
        "the orphan was revoked by rotating it: one live token, in the file"
    );
}

#[tokio::test]
async fn the_simulator_refuses_what_gitlab_refuses() {
    token_rotator::install_crypto_provider();
    let sim = GitLabSim::new(GITLAB_TOKEN, Arc::new(SystemClock));
    let running = sim.start().await.unwrap();
    let old = sim.add_token(sim.add_project(42, "platform/ci"), "ci-bot", 20);
    let id = sim.tokens()[0].id;
    let http = reqwest::Client::new();
    let rotate = |token: &str, expires: &str| {
        http.post(format!(
            "{}/api/v4/projects/42/access_tokens/{id}/rotate?expires_at={expires}",
            running.url()
        ))
        .header("PRIVATE-TOKEN", token.to_owned())
        .send()
    };
    let in_a_month = (Timestamp::now() + Duration::from_secs(30 * 86400))
        .strftime("%Y-%m-%d")
        .to_string();
    let wrong = rotate("glpat-wrong", &in_a_month).await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        wrong.json::<serde_json::Value>().await.unwrap()["message"],
        "401 Unauthorized"
    );
    let too_long = (Timestamp::now() + Duration::from_secs(400 * 86400))
        .strftime("%Y-%m-%d")
        .to_string();
    assert_eq!(rotate(GITLAB_TOKEN, &too_long).await.unwrap().status(), 400);
    let rotated = rotate(GITLAB_TOKEN, &in_a_month).await.unwrap();
    assert_eq!(rotated.status(), 200);
    let body: serde_json::Value = rotated.json().await.unwrap();
    assert!(body["token"].as_str().unwrap().starts_with("glpat-"));
    assert!(!sim.is_live(&old));
    // The old token is revoked: rotating it again is refused.
    let again = rotate(GITLAB_TOKEN, &in_a_month).await.unwrap();
    assert_eq!(again.status(), 400);
    let whoami = http
        .get(format!(
            "{}/api/v4/personal_access_tokens/self",
            running.url()
        ))
        .header("PRIVATE-TOKEN", &old)
        .send()
        .await
        .unwrap();
    assert_eq!(
        whoami.status(),
        401,
        "a revoked token does not authenticate"
    );
}
