//! `[signon]` (with `[signon.job]` and `[signon.probes]`) and `[kubernetes]`: how tokens are
//! made and where they go, the way GOV.UK runs Signon.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::raw::Checker;
use super::sections::{DEFAULT_HTTP_TIMEOUT, optional_duration};
use super::{Distribution, IssuerMode, KubernetesSettings, SignonSettings};
use crate::adapters::kubernetes::JobTemplate;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSignon {
    url: Spanned<String>,
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    issuer: IssuerMode,
    /// The email of the Signon user the Job scripts act as: an API user made for token-rotator.
    initiator: Option<Spanned<String>>,
    job: Option<RawJob>,
    #[serde(default)]
    probes: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawJob {
    /// Overrides the image of the sync CronJob's template; pinned by digest.
    image: Option<Spanned<String>>,
    namespace: Option<String>,
    service_account: Option<String>,
    scripts_config_map: Option<String>,
    ttl_seconds_after_finished: Option<i32>,
    deadline: Option<Spanned<String>>,
    cpu: Option<String>,
    memory: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKubernetes {
    url: Option<String>,
    namespace: Option<String>,
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    distribution: Distribution,
    sync_cronjob: Option<String>,
    /// Stakater Reloader rolls the consumers; `false`: token-rotator restarts them.
    reloader: Option<bool>,
    /// Jobs running at once (default 4).
    max_jobs: Option<usize>,
}

impl RawSignon {
    pub(super) fn probes(&self) -> BTreeMap<String, String> {
        self.probes.clone()
    }
}

pub(super) fn validate_kubernetes(
    checker: &mut Checker,
    raw: Option<RawKubernetes>,
) -> Option<KubernetesSettings> {
    let kube = raw.unwrap_or_default();
    let timeout = optional_duration(
        checker,
        "kubernetes.timeout",
        kube.timeout,
        DEFAULT_HTTP_TIMEOUT,
    )?;
    Some(KubernetesSettings {
        timeout,
        url: kube.url,
        namespace: kube.namespace.unwrap_or_else(|| "apps".into()),
        distribution: kube.distribution,
        sync_cronjob: kube
            .sync_cronjob
            .unwrap_or_else(|| "signon-sync-token-secrets-to-k8s".into()),
        reloader: kube.reloader.unwrap_or(true),
        max_jobs: match kube.max_jobs {
            Some(0) => {
                checker.report_span(0..0, "kubernetes.max_jobs must be at least 1".into());
                return None;
            }
            Some(max) => max,
            None => crate::adapters::kubernetes::DEFAULT_MAX_JOBS,
        },
    })
}

/// `[signon]`; `issuers` are the environments' own `signon_issuer`.
pub(super) fn validate_signon(
    checker: &mut Checker,
    raw: Option<RawSignon>,
    namespace: &str,
    cronjob: &str,
    issuers: BTreeMap<String, IssuerMode>,
) -> Option<SignonSettings> {
    let signon = raw?;
    let timeout = optional_duration(
        checker,
        "signon.timeout",
        signon.timeout,
        DEFAULT_HTTP_TIMEOUT,
    );
    let wants_job =
        signon.issuer == IssuerMode::Job || issuers.values().any(|i| *i == IssuerMode::Job);
    // Signon records who made or revoked a token and refuses the event without one
    // (app/models/event_log.rb: ACCESS_TOKEN_GENERATED/REVOKED require an initiator). An API
    // user is never suspended for inactivity (lib/inactive_users_suspender.rb takes web users
    // only); the scripts check it exists and is active, at start-up and daily too.
    let initiator = match signon.initiator {
        Some(email) if !looks_like_email(email.get_ref()) => {
            checker.report_span(
                email.span(),
                format!(
                    "signon.initiator {:?} is not an email address (the Signon API user the Job scripts act as)",
                    email.get_ref()
                ),
            );
            None
        }
        Some(email) => Some(email.into_inner().trim().to_owned()),
        None if wants_job => {
            checker.report_span(
                signon.url.span(),
                "signon: issuer \"job\" needs `initiator`, the email of the Signon API user the scripts act as (Signon refuses to record a token made or revoked without one)"
                    .into(),
            );
            None
        }
        None => None,
    };
    // Without [signon.job], the defaults: everything else comes from Signon's sync CronJob.
    let job = match signon.job.or_else(|| wants_job.then(RawJob::default)) {
        Some(job) => {
            let deadline = optional_duration(
                checker,
                "signon.job.deadline",
                job.deadline,
                Duration::from_secs(300),
            );
            // Signon's scripts must run the release whose schema the database has: the
            // template's image is that; an override must not move under us (a tag does).
            let image = match job.image {
                Some(image) if !image.get_ref().contains("@sha256:") => {
                    checker.report_span(
                        image.span(),
                        format!(
                            "signon.job.image {:?} is not pinned by digest (name@sha256:…); leave it out to run the image Signon's sync CronJob runs",
                            image.get_ref()
                        ),
                    );
                    None
                }
                image => image.map(Spanned::into_inner),
            };
            Some(JobTemplate {
                pod_template: cronjob.to_owned(),
                image,
                namespace: job.namespace.unwrap_or_else(|| namespace.to_owned()),
                service_account: job.service_account,
                scripts_config_map: job
                    .scripts_config_map
                    .unwrap_or_else(|| "token-rotator-signon-scripts".into()),
                ttl_seconds_after_finished: job.ttl_seconds_after_finished.unwrap_or(3600),
                active_deadline_seconds: deadline?.as_secs() as i64,
                cpu: job.cpu,
                memory: job.memory,
                initiator: initiator.clone().unwrap_or_default(),
            })
        }
        None => None,
    };
    if wants_job && initiator.is_none() {
        return None;
    }
    Some(SignonSettings {
        url: signon.url.into_inner(),
        timeout: timeout?,
        issuer: signon.issuer,
        issuers,
        job,
    })
}

/// Enough of an email to catch a name or a typo: something@something.something, no spaces.
fn looks_like_email(value: &str) -> bool {
    let value = value.trim();
    match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !value.contains(char::is_whitespace)
        }
        None => false,
    }
}
