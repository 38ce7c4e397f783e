//! The configuration file as written (spans kept for error messages), and its validation.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::rules::{RawRule, validate_rules};
use super::{
    AlertmanagerSettings, Config, ConfigErrors, KubernetesSettings, Location, Problem,
    SignonSettings,
};
use crate::domain::Environment;
use crate::engine::{EngineSettings, RetryPolicy};
use crate::policy::{Mode, Policy};

const DEFAULT_DATABASE_URL: &str = "sqlite://token-rotator.db";
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_BUSY_TIMEOUT: &str = "5s";
const DEFAULT_INTERNAL_DOMAINS: [&str; 3] = [
    "alphagov.co.uk",
    "publishing.service.gov.uk",
    "digital.cabinet-office.gov.uk",
];

/// Environment variables that override top-level keys; rules are only ever set in the file.
const ENV_KEYS: [&str; 6] = [
    "database_url",
    "listen",
    "metrics_listen",
    "default_environment",
    "internal_domains",
    "journal_busy_timeout",
];
const ENV_PREFIX: &str = "TOKEN_ROTATOR_";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    database_url: Option<Spanned<String>>,
    listen: Option<Spanned<String>>,
    metrics_listen: Option<Spanned<String>>,
    #[serde(default)]
    status_page_open: bool,
    default_environment: Option<Spanned<String>>,
    internal_domains: Option<Vec<String>>,
    journal_busy_timeout: Option<Spanned<String>>,
    #[serde(default)]
    rules: Vec<Spanned<RawRule>>,
    rotation: Option<RawRotation>,
    signon: Option<RawSignon>,
    kubernetes: Option<RawKubernetes>,
    alertmanager: Option<RawAlertmanager>,
    #[serde(default)]
    environments: BTreeMap<String, RawEnvironment>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvironment {
    mode: Mode,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlertmanager {
    urls: Vec<String>,
    reconcile_interval: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRotation {
    grace_period: Option<Spanned<String>>,
    safety_margin: Option<Spanned<String>>,
    token_life: Option<Spanned<String>>,
    cooldown: Option<Spanned<String>>,
    retry_min_delay: Option<Spanned<String>>,
    retry_max_delay: Option<Spanned<String>>,
    max_attempts: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignon {
    url: Spanned<String>,
    timeout: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawKubernetes {
    url: Option<String>,
    namespace: Option<String>,
    timeout: Option<Spanned<String>>,
}

/// A value that came either from the file (with its span) or from an environment variable.
pub(super) struct Sourced<T> {
    pub(super) value: T,
    pub(super) from: Origin,
}

pub(super) enum Origin {
    File(Range<usize>),
    Env(String),
    Default,
}

/// Collects problems so one run of `check-config` reports all it can.
pub(super) struct Checker<'a> {
    text: &'a str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn at(&self, span: Range<usize>) -> Location {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit_once('\n')
            .map_or(before, |(_, tail)| tail)
            .chars()
            .count()
            + 1;
        Location::File { line, column }
    }

    pub(super) fn report(&mut self, origin: &Origin, message: String) {
        let location = match origin {
            Origin::File(span) => self.at(span.clone()),
            Origin::Env(var) => Location::Env(var.clone()),
            Origin::Default => Location::Env("<built-in default>".into()),
        };
        self.problems.push(Problem { location, message });
    }

    pub(super) fn report_span(&mut self, span: Range<usize>, message: String) {
        self.report(&Origin::File(span), message);
    }
}

pub(super) fn parse<I>(text: &str, env: I) -> Result<Config, ConfigErrors>
where
    I: IntoIterator<Item = (String, String)>,
{
    let mut checker = Checker {
        text,
        problems: Vec::new(),
    };
    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(err) => {
            let span = err.span().unwrap_or(0..0);
            checker.report_span(span, err.message().trim().to_owned());
            return Err(ConfigErrors {
                problems: checker.problems,
            });
        }
    };
    let overrides = env_overrides(env);
    let config = validate(&mut checker, raw, overrides);
    match config {
        Some(config) if checker.problems.is_empty() => Ok(config),
        _ => Err(ConfigErrors {
            problems: checker.problems,
        }),
    }
}

fn env_overrides<I>(env: I) -> BTreeMap<&'static str, (String, String)>
where
    I: IntoIterator<Item = (String, String)>,
{
    let mut overrides = BTreeMap::new();
    for (var, value) in env {
        let Some(key) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let key = key.to_ascii_lowercase();
        if let Some(known) = ENV_KEYS.iter().find(|k| **k == key) {
            overrides.insert(*known, (var, value));
        }
    }
    overrides
}

fn pick(
    file: Option<Spanned<String>>,
    env: &BTreeMap<&'static str, (String, String)>,
    key: &str,
    default: Option<&str>,
) -> Option<Sourced<String>> {
    if let Some((var, value)) = env.get(key) {
        return Some(Sourced {
            value: value.clone(),
            from: Origin::Env(var.clone()),
        });
    }
    if let Some(spanned) = file {
        let span = spanned.span();
        return Some(Sourced {
            value: spanned.into_inner(),
            from: Origin::File(span),
        });
    }
    default.map(|value| Sourced {
        value: value.to_owned(),
        from: Origin::Default,
    })
}

fn validate(
    checker: &mut Checker,
    raw: RawConfig,
    env: BTreeMap<&'static str, (String, String)>,
) -> Option<Config> {
    // `pick` with a default always answers; the `?`s below cannot fire.
    let database_url = pick(
        raw.database_url,
        &env,
        "database_url",
        Some(DEFAULT_DATABASE_URL),
    )?;
    if !database_url.value.starts_with("sqlite:") {
        checker.report(
            &database_url.from,
            format!(
                "database_url {:?} is not supported: expected sqlite://PATH",
                database_url.value
            ),
        );
    }
    let listen = pick(raw.listen, &env, "listen", Some(DEFAULT_LISTEN))?;
    let listen_addr = listen.value.parse::<SocketAddr>().map_err(|e| {
        checker.report(
            &listen.from,
            format!(
                "listen {:?} is not an address like 127.0.0.1:8080: {e}",
                listen.value
            ),
        )
    });
    let metrics_listen = pick(raw.metrics_listen, &env, "metrics_listen", None).and_then(|m| {
        m.value
            .parse::<SocketAddr>()
            .map_err(|e| {
                checker.report(
                    &m.from,
                    format!(
                        "metrics_listen {:?} is not an address like 127.0.0.1:9090: {e}",
                        m.value
                    ),
                )
            })
            .ok()
    });
    let busy = pick(
        raw.journal_busy_timeout,
        &env,
        "journal_busy_timeout",
        Some(DEFAULT_BUSY_TIMEOUT),
    )?;
    let busy_timeout = parse_duration(checker, "journal_busy_timeout", &busy);
    let default_environment = pick(raw.default_environment, &env, "default_environment", None)
        .and_then(|env_value| match Environment::parse(&env_value.value) {
            Ok(environment) => Some(environment),
            Err(e) => {
                checker.report(&env_value.from, format!("default_environment: {e}"));
                None
            }
        });
    let internal_domains = match env.get("internal_domains") {
        Some((_, value)) => value.split(',').map(|d| d.trim().to_owned()).collect(),
        None => raw
            .internal_domains
            .unwrap_or_else(|| DEFAULT_INTERNAL_DOMAINS.map(String::from).to_vec()),
    };
    let rules = validate_rules(checker, raw.rules);
    let engine = validate_rotation(checker, raw.rotation.unwrap_or_default()).map(|mut engine| {
        engine.modes = raw
            .environments
            .into_iter()
            .map(|(name, environment)| (name, environment.mode))
            .collect();
        engine
    });
    let signon = raw.signon.and_then(|signon| {
        let timeout = optional_duration(
            checker,
            "signon.timeout",
            signon.timeout,
            DEFAULT_HTTP_TIMEOUT,
        )?;
        let url = signon.url.into_inner();
        Some(SignonSettings { url, timeout })
    });
    let kube = raw.kubernetes.unwrap_or_default();
    let kubernetes = KubernetesSettings {
        timeout: optional_duration(
            checker,
            "kubernetes.timeout",
            kube.timeout,
            DEFAULT_HTTP_TIMEOUT,
        )?,
        url: kube.url,
        namespace: kube.namespace.unwrap_or_else(|| "apps".into()),
    };

    let alertmanager = match raw.alertmanager {
        None => None,
        Some(am) => {
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
        }
    };

    Some(Config {
        database_url: database_url.value,
        listen: listen_addr.ok()?,
        metrics_listen,
        status_page_open: raw.status_page_open,
        default_environment,
        journal_busy_timeout: busy_timeout?,
        policy: Policy::new(rules, internal_domains),
        engine: engine?,
        signon,
        kubernetes,
        alertmanager,
    })
}

const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

fn optional_duration(
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
    Some(EngineSettings {
        modes: BTreeMap::new(),
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

pub(super) fn parse_duration(
    checker: &mut Checker,
    key: &str,
    value: &Sourced<String>,
) -> Option<Duration> {
    match humantime::parse_duration(value.value.trim()) {
        Ok(d) => Some(d),
        Err(e) => {
            checker.report(
                &value.from,
                format!(
                    "{key} {:?} is not a duration like \"90s\", \"1h\" or \"7d\": {e}",
                    value.value
                ),
            );
            None
        }
    }
}
