//! The config's sections beyond the rules: `[rotation]`, `[environments.*]`, `[signon]`,
//! `[kubernetes]`, `[alertmanager]`, `[slack]`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::IssuerMode;
pub(super) use super::cluster::{RawKubernetes, RawSignon};
use super::cluster::{validate_kubernetes, validate_signon};
use super::raw::{Checker, Origin, Sourced, parse_duration};
use super::{AlertmanagerSettings, KubernetesSettings, SignonSettings, SlackSettings};
use crate::engine::{EngineSettings, RetryPolicy, SlackRouting};
use crate::policy::Mode;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEnvironment {
    pub(super) mode: Option<Mode>,
    /// This environment's own way of making tokens, over `[signon] issuer`.
    pub(super) signon_issuer: Option<IssuerMode>,
    /// This environment's Slack channel (Web API notifier), over `[slack] channel`.
    pub(super) slack_channel: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSlack {
    /// Default channel of the Web API notifier (an id such as `C0123ABCD`, or `#name`).
    pub(super) channel: Option<Spanned<String>>,
    pub(super) api_url: Option<String>,
    pub(super) timeout: Option<Spanned<String>>,
    /// How long an Approve/Reject request stays open.
    pub(super) approval_timeout: Option<Spanned<String>>,
    /// On `not_in_channel`, join the channel (`conversations.join`) instead of waiting.
    pub(super) join_channels: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlertmanager {
    pub(super) urls: Vec<String>,
    pub(super) reconcile_interval: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRotation {
    pub(super) grace_period: Option<Spanned<String>>,
    pub(super) safety_margin: Option<Spanned<String>>,
    pub(super) token_life: Option<Spanned<String>>,
    pub(super) cooldown: Option<Spanned<String>>,
    pub(super) retry_min_delay: Option<Spanned<String>>,
    pub(super) retry_max_delay: Option<Spanned<String>>,
    pub(super) max_attempts: Option<u32>,
    pub(super) max_in_flight: Option<usize>,
    pub(super) max_in_flight_per_upstream: Option<usize>,
}

/// The sections as written, handed over from the file's top level.
pub(super) struct RawSections {
    pub(super) rotation: Option<RawRotation>,
    pub(super) environments: BTreeMap<String, RawEnvironment>,
    pub(super) signon: Option<RawSignon>,
    pub(super) kubernetes: Option<RawKubernetes>,
    pub(super) alertmanager: Option<RawAlertmanager>,
    pub(super) slack: Option<RawSlack>,
}

/// Validated sections; `None` where a problem was reported.
pub(super) struct Sections {
    pub(super) engine: Option<EngineSettings>,
    pub(super) signon: Option<SignonSettings>,
    pub(super) kubernetes: Option<KubernetesSettings>,
    pub(super) alertmanager: Option<AlertmanagerSettings>,
    pub(super) slack: Option<SlackSettings>,
}

pub(super) fn validate_sections(checker: &mut Checker, raw: RawSections) -> Sections {
    let slack = raw.slack.unwrap_or_default();
    let mut channels = BTreeMap::new();
    for (name, environment) in &raw.environments {
        if let Some(channel) = &environment.slack_channel
            && let Some(channel) = valid_channel(checker, &format!("environments.{name}"), channel)
        {
            channels.insert(name.clone(), channel);
        }
    }
    let default_channel = slack
        .channel
        .as_ref()
        .and_then(|c| valid_channel(checker, "slack", c));
    let approval_timeout = optional_duration(
        checker,
        "slack.approval_timeout",
        slack.approval_timeout,
        Duration::from_secs(24 * 3600),
    );
    let slack_timeout = optional_duration(
        checker,
        "slack.timeout",
        slack.timeout,
        DEFAULT_HTTP_TIMEOUT,
    );
    let slack_settings = slack_timeout.map(|timeout| SlackSettings {
        api_url: slack
            .api_url
            .unwrap_or_else(|| "https://slack.com/api".into())
            .trim_end_matches('/')
            .to_owned(),
        timeout,
        join_channels: slack.join_channels.unwrap_or(false),
    });
    let issuers: BTreeMap<String, IssuerMode> = raw
        .environments
        .iter()
        .filter_map(|(name, e)| Some((name.clone(), e.signon_issuer?)))
        .collect();
    let probes = raw
        .signon
        .as_ref()
        .map(RawSignon::probes)
        .unwrap_or_default();
    let engine =
        validate_rotation(checker, raw.rotation.unwrap_or_default()).and_then(|mut engine| {
            engine.probes = probes;
            // The allow-list: an alert for an environment not named here is unroutable, so a
            // mistyped or forged `environment` label can never reach an active upstream.
            engine.modes = raw
                .environments
                .into_iter()
                .map(|(name, environment)| (name, environment.mode.unwrap_or_default()))
                .collect();
            engine.slack = SlackRouting {
                default_channel,
                channels,
            };
            engine.approval_timeout = approval_timeout?;
            Some(engine)
        });
    let kubernetes = validate_kubernetes(checker, raw.kubernetes);
    let namespace = kubernetes.as_ref().map_or("apps", |k| k.namespace.as_str());
    let cronjob = kubernetes
        .as_ref()
        .map_or("signon-sync-token-secrets-to-k8s", |k| {
            k.sync_cronjob.as_str()
        });
    let signon = validate_signon(checker, raw.signon, namespace, cronjob, issuers);
    let alertmanager = raw.alertmanager.and_then(|am| {
        let interval = optional_duration(
            checker,
            "alertmanager.reconcile_interval",
            am.reconcile_interval,
            Duration::from_secs(300),
        );
        let timeout = optional_duration(
            checker,
            "alertmanager.timeout",
            am.timeout,
            DEFAULT_HTTP_TIMEOUT,
        );
        Some(AlertmanagerSettings {
            urls: am.urls,
            reconcile_interval: interval?,
            timeout: timeout?,
        })
    });
    Sections {
        engine,
        signon,
        kubernetes,
        alertmanager,
        slack: slack_settings,
    }
}

/// What Slack accepts as a channel: an id (`C0123ABCD`) or a name; never blank or spaced.
pub(super) fn check_channel(channel: &str) -> Result<(), String> {
    if channel.is_empty() || channel.len() > 80 || channel.chars().any(char::is_whitespace) {
        return Err(format!(
            "{channel:?} is not a Slack channel id (C0123ABCD) or name (#rotations)"
        ));
    }
    Ok(())
}

fn valid_channel(
    checker: &mut Checker,
    section: &str,
    channel: &Spanned<String>,
) -> Option<String> {
    match check_channel(channel.get_ref()) {
        Ok(()) => Some(channel.get_ref().clone()),
        Err(e) => {
            checker.report_span(channel.span(), format!("{section}: slack_channel {e}"));
            None
        }
    }
}

pub(super) const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) fn optional_duration(
    checker: &mut Checker,
    key: &str,
    value: Option<Spanned<String>>,
    default: Duration,
) -> Option<Duration> {
    match value {
        None => Some(default),
        Some(v) => {
            let sourced = Sourced {
                from: Origin::File(v.span()),
                value: v.into_inner(),
            };
            parse_duration(checker, key, &sourced)
        }
    }
}

fn validate_rotation(checker: &mut Checker, raw: RawRotation) -> Option<EngineSettings> {
    let defaults = EngineSettings::default();
    let grace = optional_duration(
        checker,
        "rotation.grace_period",
        raw.grace_period,
        defaults.grace,
    );
    let safety_margin = optional_duration(
        checker,
        "rotation.safety_margin",
        raw.safety_margin,
        defaults.safety_margin,
    );
    let token_life = optional_duration(
        checker,
        "rotation.token_life",
        raw.token_life,
        defaults.token_life,
    );
    let cooldown = optional_duration(
        checker,
        "rotation.cooldown",
        raw.cooldown,
        defaults.cooldown,
    );
    let min_delay = optional_duration(
        checker,
        "rotation.retry_min_delay",
        raw.retry_min_delay,
        defaults.retry.min_delay,
    );
    let max_delay = optional_duration(
        checker,
        "rotation.retry_max_delay",
        raw.retry_max_delay,
        defaults.retry.max_delay,
    );
    for (key, value) in [
        ("rotation.max_in_flight", raw.max_in_flight),
        (
            "rotation.max_in_flight_per_upstream",
            raw.max_in_flight_per_upstream,
        ),
    ] {
        if value == Some(0) {
            checker.report_span(0..0, format!("{key} must be at least 1"));
        }
    }
    Some(EngineSettings {
        owners: Default::default(),
        max_in_flight: raw.max_in_flight.unwrap_or(defaults.max_in_flight).max(1),
        max_in_flight_per_upstream: raw
            .max_in_flight_per_upstream
            .unwrap_or(defaults.max_in_flight_per_upstream)
            .max(1),
        sweep: defaults.sweep,
        modes: BTreeMap::new(),
        slack: SlackRouting::default(),
        approval_timeout: defaults.approval_timeout,
        adopt_fresher_than: defaults.adopt_fresher_than,
        poll: defaults.poll,
        probes: BTreeMap::new(),
        public_url: defaults.public_url,
        retention: defaults.retention,
        grace: grace?,
        safety_margin: safety_margin?,
        token_life: token_life?,
        cooldown: cooldown?,
        retry: RetryPolicy {
            min_delay: min_delay?,
            max_delay: max_delay?,
            max_attempts: raw
                .max_attempts
                .unwrap_or(defaults.retry.max_attempts)
                .max(1),
        },
    })
}
