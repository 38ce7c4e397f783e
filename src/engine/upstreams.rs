//! What the engine calls out to: each environment's issuer, distributor and verifier, Slack,
//! Alertmanager,
//! and the scheduled targets.

use std::collections::BTreeMap;

use crate::adapters::AdapterError;
use crate::adapters::alertmanager::AlertmanagerClient;
use crate::adapters::slack::SlackWebhook;

use super::Upstreams;
use super::schedule::{self, Schedule, Scheduled};
use crate::store::rotations::RotationRow;

/// How the outbox reaches Slack.
pub enum SlackOut {
    /// Journaled and logged, not posted: no Slack is configured.
    Log,
    /// One message per outcome to an incoming webhook, posted by the engine's pass.
    Webhook(SlackWebhook),
    /// Threads through the Web API, posted by the notifier's own rate-limited loop
    /// ([`crate::notifier`]); the engine leaves the outbox to it.
    Threads,
}

impl From<Option<SlackWebhook>> for SlackOut {
    fn from(webhook: Option<SlackWebhook>) -> Self {
        webhook.map_or(SlackOut::Log, SlackOut::Webhook)
    }
}

/// Every system the engine talks to.
pub struct Adapters {
    /// By environment name; `*` serves any environment not named (one instance per cluster).
    pub environments: BTreeMap<String, Upstreams>,
    /// Where outcomes go.
    pub slack: SlackOut,
    /// Where `silence` decisions become silences; `None`: they fail, saying so.
    pub alertmanager: Option<AlertmanagerClient>,
    /// Scheduled targets by name, each with its own issuer and distributor.
    pub schedules: BTreeMap<String, Scheduled>,
}

impl Adapters {
    /// One set of upstreams for every environment.
    pub fn single(
        upstreams: Upstreams,
        slack: Option<SlackWebhook>,
        alertmanager: Option<AlertmanagerClient>,
    ) -> Self {
        Self {
            environments: BTreeMap::from([("*".to_owned(), upstreams)]),
            slack: slack.into(),
            alertmanager,
            schedules: BTreeMap::new(),
        }
    }

    /// The schedule a rotation belongs to, if any.
    pub(super) fn schedule_of(&self, row: &RotationRow) -> Option<&Schedule> {
        schedule::name_of(row)
            .and_then(|name| self.schedules.get(name))
            .map(|s| &s.schedule)
    }

    /// The upstreams of a rotation: its schedule's, or its environment's.
    pub(super) fn for_row(&self, row: &RotationRow) -> Result<&Upstreams, AdapterError> {
        match schedule::name_of(row) {
            Some(name) => self
                .schedules
                .get(name)
                .map(|s| &s.upstreams)
                .ok_or_else(|| {
                    AdapterError::permanent(
                        "config",
                        format!("schedule {name:?} is no longer configured"),
                    )
                }),
            None => self.upstreams(&row.environment),
        }
    }

    pub(super) fn upstreams(&self, environment: &str) -> Result<&Upstreams, AdapterError> {
        self.environments
            .get(environment)
            .or_else(|| self.environments.get("*"))
            .ok_or_else(|| {
                AdapterError::permanent(
                    "config",
                    format!("no issuer is configured for environment {environment:?}"),
                )
            })
    }
}
