//! A whole world on loopback: the service with its engine (driven by the test, on a manual
//! clock), and simulators of Signon, the Kubernetes API and Slack. Real HTTP everywhere.

use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;
use token_rotator::adapters::kubernetes::TOKEN_KEY;
use token_rotator::clock::ManualClock;
use token_rotator::domain::parameterize::secret_name;
use token_rotator::engine::{Engine, Phase};
use token_rotator::sim::Fault;
use token_rotator::sim::alertmanager::AlertmanagerSim;
use token_rotator::sim::kubernetes::KubernetesSim;
use token_rotator::sim::signon::SignonSim;
use token_rotator::sim::slack::SlackSim;
use token_rotator::sim::synoptic::SynopticSim;
use token_rotator::store::outbox::{self, NotificationRow};
use token_rotator::store::rotations::{self, AuditRow, RotationRow};

use crate::helpers::TestApp;

mod sims;

pub use sims::*;

pub const NAMESPACE: &str = "apps";
pub const ADMIN_TOKEN: &str = "signon-admin-token-for-tests";
pub const GRACE: Duration = Duration::from_secs(3600);

pub struct World {
    pub app: TestApp,
    pub engine: Arc<Engine>,
    pub clock: Arc<ManualClock>,
    /// Production's Signon and cluster, which most tests use.
    pub signon: Arc<SignonSim>,
    pub kubernetes: Arc<KubernetesSim>,
    pub slack: Arc<SlackSim>,
    /// The simulated Alertmanager silences go to, unless real ones were given.
    pub alertmanager: Arc<AlertmanagerSim>,
    /// Slack threads are posted by the notifier in real time, not by the engine's passes.
    slack_threads: bool,
    sims: Sims,
}

pub async fn spawn_world() -> World {
    Sims::start().await.world(None).await
}

impl World {
    /// Stops the service as a crash would leave it (the journal as last committed) and hands
    /// back the simulators and the journal's directory.
    pub async fn crash(self) -> (Sims, TempDir) {
        drop(self.engine);
        let dir = self.app.stop().await;
        (self.sims, dir)
    }

    /// An API user with a live production token ten days from expiry, synced to its Secret;
    /// returns the token's value.
    pub fn seed(&self, api_user: &str, application: &str) -> String {
        self.seed_in("production", api_user, application)
    }

    pub fn seed_in(&self, environment: &str, api_user: &str, application: &str) -> String {
        let env = &self.sims.envs[environment];
        let value = env
            .signon
            .add_token(api_user, application, Duration::from_secs(10 * 86400));
        let name = secret_name(&env.signon.user_name(api_user), application);
        env.kubernetes.put(NAMESPACE, &name, TOKEN_KEY, &value);
        value
    }

    pub fn seed_every_environment(&self, api_user: &str, application: &str) {
        for environment in ENVIRONMENTS {
            self.seed_in(environment, api_user, application);
        }
    }

    /// Production's Secret name for a target.
    pub fn secret_name(&self, api_user: &str, application: &str) -> String {
        secret_name(&self.signon.user_name(api_user), application)
    }

    /// The install's keys (what names tokens in the journal).
    pub fn keys(&self) -> &token_rotator::secrets::Keys {
        &self.sims.keys
    }

    pub fn synoptic(&self) -> std::sync::Arc<SynopticSim> {
        self.sims.synoptic.clone()
    }

    pub fn env(&self, environment: &str) -> &EnvSims {
        &self.sims.envs[environment]
    }

    pub fn secret(&self, api_user: &str, application: &str) -> Option<String> {
        let name = secret_name(&self.signon.user_name(api_user), application);
        self.kubernetes.value(NAMESPACE, &name, TOKEN_KEY)
    }

    /// Runs the engine, moving the clock past grace periods and retry delays, until every
    /// rotation has ended and every message is out (or `limit` passes).
    pub async fn run_to_the_end(&self) {
        for _ in 0..200 {
            self.engine.run_until_idle().await.unwrap();
            let rows = self.rotations().await;
            let undelivered = !self.slack_threads
                && self
                    .notifications()
                    .await
                    .iter()
                    .any(|n| n.delivered_at_ms.is_none());
            if rows.iter().all(|r| r.next_attempt_at_ms.is_none()) && !undelivered {
                return;
            }
            self.clock.advance(Duration::from_secs(61));
        }
        panic!("still running: {:#?}", self.rotations().await);
    }

    /// Ticks until the single active rotation is in `phase`.
    pub async fn run_until(&self, phase: Phase) -> RotationRow {
        for _ in 0..50 {
            self.engine.ingest().await.unwrap();
            let rows = self.rotations().await;
            if let Some(row) = rows.iter().find(|r| r.phase == phase.as_str()) {
                return row.clone();
            }
            self.engine.tick().await.unwrap();
            if rows.iter().any(|r| r.phase == Phase::Grace.as_str()) {
                self.clock.advance(GRACE + Duration::from_secs(1));
            }
        }
        panic!("never reached {phase}: {:#?}", self.rotations().await);
    }

    /// Engine passes, the clock moved past a waiting step's poll interval after each, until
    /// `done` holds (at most 20 passes): e.g. until a Job exists but has not finished.
    pub async fn tick_until(&self, done: impl Fn(&World) -> bool) {
        for _ in 0..20 {
            self.engine.tick().await.unwrap();
            if done(self) {
                return;
            }
            self.clock.advance(Duration::from_secs(3));
        }
    }

    pub async fn rotations(&self) -> Vec<RotationRow> {
        rotations::all_rotations(self.engine.journal().pool())
            .await
            .unwrap()
    }

    pub async fn notifications(&self) -> Vec<NotificationRow> {
        outbox::all_notifications(self.engine.journal().pool())
            .await
            .unwrap()
    }

    pub async fn audit(&self, rotation_id: &str) -> Vec<AuditRow> {
        rotations::audit(self.engine.journal().pool(), rotation_id)
            .await
            .unwrap()
    }

    pub fn slack_texts(&self) -> Vec<String> {
        self.slack
            .messages()
            .iter()
            .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    pub fn fail_signon(&self, operation: &'static str, fault: Fault, times: usize) {
        self.signon.faults.next(operation, fault, times);
    }
}

/// The default rules' whole path: both environments' email-alert-api rotated, staging silenced,
/// and the synthetic special cases (ignore, manual ×2, unroutable), all run to their end.
pub async fn rotated_world() -> World {
    let world = spawn_world().await;
    world.seed_every_environment("email-alert-api@alphagov.co.uk", "Email Alert API");
    world.app.post_webhook(crate::helpers::capture("05-")).await;
    world
        .app
        .post_webhook(crate::helpers::fixture("synthetic/special-cases.json"))
        .await;
    world.run_to_the_end().await;
    world
}
