//! GitLab in the demo: its simulator, a scheduled project token and an alerted group token.

use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use secrecy::ExposeSecret;

use super::random_secret;
use crate::adapters::Observer;
use crate::adapters::gitlab::{GitLabClient, GitLabSettings};
use crate::clock::Clock;
use crate::config::ScheduleDistribution;
use crate::engine::{Schedule, Upstreams};
use crate::sim::gitlab::GitLabSim;
use crate::store::rotations::RotationRow;

/// The environment whose alerts name GitLab tokens.
pub(super) const GITLAB_ENVIRONMENT: &str = "tools";

/// GitLab in the demo: a project's CI token rotated every 30 days into a file, and a group's
/// deploy token its alert names, rotated into the tokens directory.
pub(super) struct GitLabWorld {
    sim: Arc<GitLabSim>,
    _server: crate::sim::Running,
    ci_file: std::path::PathBuf,
    deploy_file: std::path::PathBuf,
    old: [String; 2],
}

pub(super) async fn gitlab_world(
    dir: &tempfile::TempDir,
    clock: &Arc<dyn Clock>,
    observer: &Observer,
) -> anyhow::Result<(GitLabWorld, Upstreams, crate::engine::Scheduled)> {
    let token = random_secret();
    let sim = GitLabSim::new(token.expose_secret(), Arc::clone(clock));
    let server = sim.start().await?;
    let tokens_dir = dir.path().join("gitlab-tokens");
    std::fs::create_dir_all(&tokens_dir)?;
    let ci_file = dir.path().join("ci-bot.token");
    // The alert names the group by its path; its file is named after GitLab's id for it.
    let deploy_file = tokens_dir.join("group-7-deploy-bot.token");
    let ci_old = sim.add_token(sim.add_project(42, "platform/ci"), "ci-bot", 20);
    let deploy_old = sim.add_token(sim.add_group(7, "platform"), "deploy-bot", 5);
    std::fs::write(&ci_file, &ci_old)?;
    std::fs::write(&deploy_file, &deploy_old)?;
    let settings = GitLabSettings {
        url: server.url(),
        timeout: Duration::from_secs(5),
        max_lifetime: crate::adapters::gitlab::DEFAULT_MAX_LIFETIME,
        time_zone: jiff::tz::TimeZone::UTC,
        tokens_dir: Some(tokens_dir.display().to_string()),
        environments: vec![GITLAB_ENVIRONMENT.to_owned()],
    };
    let client = GitLabClient::new(&settings, token, Arc::clone(clock)).observed(observer.clone());
    let schedule = Schedule {
        name: "ci-bot".into(),
        api_user: "project:42".into(),
        environment: GITLAB_ENVIRONMENT.into(),
        application: "ci-bot".into(),
        every: Duration::from_secs(30 * 86400),
        overlap: Duration::from_secs(30 * 86400),
        window: None,
        jitter: Duration::ZERO,
        disable_old: false,
        handover: None,
    };
    let file = ScheduleDistribution::File {
        path: ci_file.display().to_string(),
        mode: 0o600,
        owner: None,
    };
    let environment =
        crate::adapters::gitlab::environment(client.clone(), &tokens_dir.display().to_string());
    let scheduled = crate::engine::Scheduled {
        schedule,
        upstreams: crate::adapters::gitlab::scheduled(client, &file),
    };
    let world = GitLabWorld {
        sim,
        _server: server,
        ci_file,
        deploy_file,
        old: [ci_old, deploy_old],
    };
    Ok((world, environment, scheduled))
}

/// The alert GitLab's token expiry would raise for the group's deploy token.
pub(super) fn gitlab_alert() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "receiver": "token-rotation", "status": "firing",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "GitLabTokenExpirySoon", "environment": GITLAB_ENVIRONMENT,
                       "api_user": "group:platform", "application": "deploy-bot"},
            "annotations": {}, "startsAt": "2026-11-24T10:04:07.964Z",
            "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "6c1ab0e2d0f4a9b3",
        }],
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093", "version": "4",
        "groupKey": "{}:{alertname=\"GitLabTokenExpirySoon\"}", "truncatedAlerts": 0,
    }))
    .expect("JSON")
}

impl GitLabWorld {
    /// Both GitLab targets done, each file holding a new live token, the old ones revoked.
    pub(super) fn check(
        &self,
        scheduled: &[RotationRow],
        alerted: &[RotationRow],
    ) -> anyhow::Result<()> {
        let fresh = |path: &std::path::Path, old: &str| {
            let now = std::fs::read_to_string(path).unwrap_or_default();
            now != old && self.sim.is_live(&now) && !self.sim.is_live(old)
        };
        let ci = fresh(&self.ci_file, &self.old[0]);
        let deploy = fresh(&self.deploy_file, &self.old[1]);
        println!(
            "GitLab: {} tokens, {} live; the scheduled CI token {} and the alerted deploy token {} (each file holds a new live token; GitLab's rotation revoked the old ones)",
            self.sim.tokens().len(),
            self.sim.tokens().iter().filter(|t| !t.revoked).count(),
            scheduled
                .first()
                .map_or("did not run", |r| r.phase.as_str()),
            alerted.first().map_or("did not run", |r| r.phase.as_str()),
        );
        ensure!(
            scheduled.len() == 1 && scheduled[0].phase == "done" && ci,
            "the scheduled GitLab target did not rotate: {scheduled:?}"
        );
        ensure!(
            alerted.len() == 1 && alerted[0].phase == "done" && deploy,
            "the alerted GitLab target did not rotate: {alerted:?}"
        );
        Ok(())
    }
}
