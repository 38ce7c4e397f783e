//! The settings the adapters are built from. Each adapter owns the types it consumes; `config`
//! parses the file into them, and the composition root hands them over.

use std::time::Duration;

use serde::Deserialize;

/// How tokens are made, listed and revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssuerMode {
    /// The admin contract of `docs/signon-admin-api.md`, over HTTP.
    #[default]
    Http,
    /// `deploy/signon/*.rb` run with `rails runner` as Jobs in Signon's image.
    Job,
}

/// How a new token reaches its Secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// Server-side apply of the Secret (by token-rotator, or by `mint.rb` in a Job).
    #[default]
    Apply,
    /// A Job from Signon's sync CronJob, as `kubectl create job --from=cronjob/…` makes.
    Sync,
}

/// The cluster the Secrets live in. Without `url`, the in-cluster service account or kubeconfig.
#[derive(Debug, Clone)]
pub struct KubernetesSettings {
    pub url: Option<String>,
    pub namespace: String,
    pub timeout: Duration,
    pub distribution: Distribution,
    /// Signon's sync CronJob, for `distribution = "sync"` (and adopting tokens it made).
    pub sync_cronjob: String,
    /// Stakater Reloader rolls the consumers when their Secret changes; else token-rotator
    /// restarts them as `kubectl rollout restart` does.
    pub reloader: bool,
    /// Jobs this process runs at once in the cluster (Signon's scripts, the sync).
    pub max_jobs: usize,
}

/// Where a scheduled target's new token goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleDistribution {
    /// A file the application reads (atomic replace, mode, owner).
    File {
        path: String,
        mode: u32,
        owner: Option<(u32, u32)>,
    },
    /// Not stored anywhere: its owner collects it once through a link (see `Schedule::handover`).
    Handover,
}
