//! Configuration: one TOML file (strict: unknown keys are errors), then `TOKEN_ROTATOR_*`
//! environment variables on top. Credentials never come from here (see `secrets`).
//!
//! Precedence: built-in defaults < TOML file < environment < command-line flags.

mod cluster;
mod gitlab;
mod http;
mod raw;
mod rules;
mod schedules;
mod sections;
mod sweep;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

pub use crate::adapters::settings::{
    Distribution, IssuerMode, KubernetesSettings, ScheduleDistribution,
};
pub use crate::adapters::synoptic::{CredentialApi, SynopticSettings};
pub use http::HttpSettings;
pub use schedules::{ScheduleIssuer, ScheduleSettings};

use std::collections::BTreeMap;

use crate::adapters::kubernetes::JobTemplate;
use crate::domain::Environment;
use crate::engine::EngineSettings;
use crate::policy::Policy;

/// The configuration shipped in the binary: the runbook's rule table.
pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.toml");

/// Validated configuration; nothing downstream re-checks it. Its `Debug` hides the password a
/// `database_url` may carry.
#[derive(Clone)]
pub struct Config {
    /// `sqlite://path` for the embedded journal (one replica), or `postgres://…` for a journal
    /// several replicas share (one of them leads).
    pub database_url: String,
    pub listen: SocketAddr,
    /// `/metrics` on its own address, so it is not exposed with the webhook; `None`: on `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// Slack's interactions and handover links on an address of their own (the public edge);
    /// `listen` then keeps only the webhook, the status page, `/readyz` and `/metrics`.
    pub public_listen: Option<SocketAddr>,
    /// `[http]`: every listener's timeouts and connection cap.
    pub http: HttpSettings,
    /// Serve the read-only status page without credentials (default: behind the webhook's).
    pub status_page_open: bool,
    /// A webhook delivery with more alerts is refused with 400 (`max_alerts_per_delivery`).
    pub max_alerts_per_delivery: usize,
    /// Finished rotations (with their audit trail) and handled deliveries older than this are
    /// exported and pruned (`retention`).
    pub retention: Duration,
    /// Environment for alerts that carry no `environment` label; `None` makes them unroutable.
    pub default_environment: Option<Environment>,
    /// How long a journal write waits for a lock held by someone else before giving up (503).
    pub journal_busy_timeout: Duration,
    /// With PostgreSQL: how long a leader cut off from the journal may go unheard (see `leader`).
    pub leader_lease: Duration,
    /// With PostgreSQL: how the leader is elected.
    pub leader_election: LeaderElection,
    pub policy: Policy,
    /// `[rotation]`: grace period, deadlines, retries.
    pub engine: EngineSettings,
    /// `[signon]`: without it the engine does not run and alerts are only journaled.
    pub signon: Option<SignonSettings>,
    pub kubernetes: KubernetesSettings,
    /// `[alertmanager]`: where silences go and what reconcile reads.
    pub alertmanager: Option<AlertmanagerSettings>,
    /// `[slack]`: the Web API's address (the channels are in `engine.slack`).
    pub slack: SlackSettings,
    /// `[synoptic]`: the credential API scheduled targets use.
    pub synoptic: Option<SynopticSettings>,
    /// `[[schedules]]`: targets rotated every so often.
    pub schedules: Vec<ScheduleSettings>,
    /// `[gitlab]`: GitLab's API, for GitLab schedules and environments.
    pub gitlab: Option<crate::adapters::gitlab::GitLabSettings>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field(
                "database_url",
                &crate::store::redact_url(&self.database_url),
            )
            .field("listen", &self.listen)
            .field("metrics_listen", &self.metrics_listen)
            .field("public_listen", &self.public_listen)
            .field("http", &self.http)
            .field("status_page_open", &self.status_page_open)
            .field("max_alerts_per_delivery", &self.max_alerts_per_delivery)
            .field("retention", &self.retention)
            .field("default_environment", &self.default_environment)
            .field("journal_busy_timeout", &self.journal_busy_timeout)
            .field("leader_lease", &self.leader_lease)
            .field("leader_election", &self.leader_election)
            .field("policy", &self.policy)
            .field("engine", &self.engine)
            .field("signon", &self.signon)
            .field("kubernetes", &self.kubernetes)
            .field("alertmanager", &self.alertmanager)
            .field("slack", &self.slack)
            .field("synoptic", &self.synoptic)
            .field("schedules", &self.schedules)
            .field("gitlab", &self.gitlab)
            .finish()
    }
}

/// How replicas sharing a PostgreSQL journal elect the one that acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderElection {
    /// A session advisory lock in the journal's own database: nothing else to grant.
    Postgres,
    /// A Lease in `[kubernetes] namespace` (needs get, create, update on `leases`).
    Kubernetes { lease_name: String },
}

/// The Slack Web API; the bot token comes from `TOKEN_ROTATOR_SLACK_BOT_TOKEN(_FILE)`.
#[derive(Debug, Clone)]
pub struct SlackSettings {
    pub api_url: String,
    pub timeout: Duration,
    /// Join a public channel that answers `not_in_channel` (needs the `channels:join` scope).
    pub join_channels: bool,
}

/// The Alertmanagers (an HA set) of this cluster.
#[derive(Debug, Clone)]
pub struct AlertmanagerSettings {
    pub urls: Vec<String>,
    /// How often firing alerts are read back, so a lost webhook is not a lost alert.
    pub reconcile_interval: Duration,
    pub timeout: Duration,
}

/// Where Signon's admin API is; its token comes from `TOKEN_ROTATOR_SIGNON_ADMIN_TOKEN(_FILE)`.
#[derive(Debug, Clone)]
pub struct SignonSettings {
    /// Its web address: `/user.json` (verification) and, with the HTTP issuer, the admin contract.
    pub url: String,
    pub timeout: Duration,
    pub issuer: IssuerMode,
    /// Environments with an issuer of their own (`[environments.<n>] signon_issuer`).
    pub issuers: BTreeMap<String, IssuerMode>,
    /// `[signon.job]`: how to run Signon's image; required when any issuer is `job`.
    pub job: Option<JobTemplate>,
}

/// Where a problem is: a place in the file, or an environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File { line: usize, column: usize },
    Env(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub location: Location,
    pub message: String,
}

/// Every problem found in one configuration, in file order.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.render("config"))]
pub struct ConfigErrors {
    pub problems: Vec<Problem>,
}

impl ConfigErrors {
    /// One line per problem, `file:line:column: message`, as compilers print them.
    pub fn render(&self, source: &str) -> String {
        self.problems
            .iter()
            .map(|p| match &p.location {
                Location::File { line, column } => {
                    format!("{source}:{line}:{column}: {}", p.message)
                }
                Location::Env(var) => format!("environment {var}: {}", p.message),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", errors.render(path))]
    Invalid { path: String, errors: ConfigErrors },
}

impl Config {
    /// What intake needs to route an alert: the environments served, the fallback environment,
    /// the rules.
    pub fn routes(&self) -> crate::intake::Routes {
        crate::intake::Routes {
            served: self.engine.modes.keys().cloned().collect(),
            default_environment: self.default_environment.clone(),
            policy: self.policy.clone(),
        }
    }

    /// Parses and validates TOML text alone (what `check-config` does).
    pub fn from_toml(text: &str) -> Result<Self, ConfigErrors> {
        raw::parse(text, std::iter::empty())
    }

    /// Parses TOML text, then applies `TOKEN_ROTATOR_*` overrides from `env`.
    pub fn from_toml_and_env<I>(text: &str, env: I) -> Result<Self, ConfigErrors>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        raw::parse(text, env)
    }

    /// The file named, or the built-in default, with the process environment on top.
    pub fn load(path: Option<&Path>) -> Result<Self, LoadError> {
        let (name, text) = match path {
            Some(path) => {
                let name = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
                    path: name.clone(),
                    source,
                })?;
                (name, text)
            }
            None => ("<built-in default>".to_owned(), DEFAULT_CONFIG.to_owned()),
        };
        Self::from_toml_and_env(&text, std::env::vars())
            .map_err(|errors| LoadError::Invalid { path: name, errors })
    }

    /// The built-in configuration, without the environment.
    pub fn builtin() -> Self {
        // The shipped file is tested (`shipped_default_config_is_valid`), so this cannot fail.
        Self::from_toml(DEFAULT_CONFIG).expect("the built-in config/default.toml is valid")
    }
}

#[cfg(test)]
mod people_tests;
#[cfg(test)]
mod schedule_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod upstream_tests;
