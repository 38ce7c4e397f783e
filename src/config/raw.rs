//! The configuration file as written (spans kept for error messages), and its validation.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::rules::{RawRule, validate_rules};
use super::sections::{
    RawAlertmanager, RawEnvironment, RawKubernetes, RawRotation, RawSections, RawSignon, RawSlack,
    validate_sections,
};
use super::{Config, ConfigErrors, Location, Problem};
use crate::domain::Environment;
use crate::policy::Policy;

const DEFAULT_DATABASE_URL: &str = "sqlite://token-rotator.db";
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_BUSY_TIMEOUT: &str = "5s";
/// Alertmanager sends a whole group at once; GOV.UK's largest is a few dozen alerts.
const DEFAULT_MAX_ALERTS: usize = 1000;
/// Finished rotations and handled deliveries are kept this long (over a year of audit).
const DEFAULT_RETENTION: &str = "400d";
/// With a PostgreSQL journal: failover within a lease and a fifth (see `leader`).
const DEFAULT_LEADER_LEASE: &str = "10s";
const DEFAULT_INTERNAL_DOMAINS: [&str; 3] = [
    "alphagov.co.uk",
    "publishing.service.gov.uk",
    "digital.cabinet-office.gov.uk",
];

/// Environment variables that override top-level keys; rules are only ever set in the file.
const ENV_KEYS: [&str; 9] = [
    "public_url",
    "database_url",
    "listen",
    "metrics_listen",
    "public_listen",
    "default_environment",
    "internal_domains",
    "journal_busy_timeout",
    "leader_lease",
];
const ENV_PREFIX: &str = "TOKEN_ROTATOR_";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    database_url: Option<Spanned<String>>,
    listen: Option<Spanned<String>>,
    metrics_listen: Option<Spanned<String>>,
    /// Slack's interactions and handover links on an address of their own, the one exposed.
    public_listen: Option<Spanned<String>>,
    #[serde(default)]
    status_page_open: bool,
    /// A webhook delivery with more alerts is refused with 400.
    max_alerts_per_delivery: Option<usize>,
    /// How long finished rotations and handled deliveries stay in the journal.
    retention: Option<Spanned<String>>,
    /// Where token-rotator is reached from outside (handover links).
    public_url: Option<Spanned<String>>,
    default_environment: Option<Spanned<String>>,
    internal_domains: Option<Vec<String>>,
    journal_busy_timeout: Option<Spanned<String>>,
    leader_lease: Option<Spanned<String>>,
    /// `postgres` (the journal's advisory lock) or `kubernetes` (a Lease).
    leader_election: Option<Spanned<String>>,
    leader_lease_name: Option<String>,
    #[serde(default)]
    rules: Vec<Spanned<RawRule>>,
    rotation: Option<RawRotation>,
    signon: Option<RawSignon>,
    kubernetes: Option<RawKubernetes>,
    alertmanager: Option<RawAlertmanager>,
    slack: Option<RawSlack>,
    synoptic: Option<super::schedules::RawSynoptic>,
    #[serde(default)]
    schedules: Vec<super::schedules::RawSchedule>,
    gitlab: Option<super::gitlab::RawGitLab>,
    /// The nightly sweep of superseded tokens.
    sweep: Option<super::sweep::RawSweep>,
    /// The listeners' timeouts and connection caps.
    http: Option<super::http::RawHttp>,
    #[serde(default)]
    environments: BTreeMap<String, RawEnvironment>,
    /// Who is asked about a token, by API user (an email) or email domain: Slack user or user
    /// group ids. Overrides the `approvers` of a rule that asks.
    #[serde(default)]
    owners: BTreeMap<String, Spanned<Vec<String>>>,
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
    let scheme = database_url.value.split(':').next().unwrap_or_default();
    if !matches!(scheme, "sqlite" | "postgres" | "postgresql") {
        checker.report(
            &database_url.from,
            format!(
                "database_url {:?} is not supported: expected sqlite://PATH or postgres://USER@HOST:PORT/DATABASE",
                crate::store::redact_url(&database_url.value)
            ),
        );
    }
    if let Some(problem) = crate::store::unsupported_postgres_parameter(&database_url.value) {
        checker.report(&database_url.from, format!("database_url: {problem}"));
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
    let metrics_listen = pick(raw.metrics_listen, &env, "metrics_listen", None)
        .and_then(|m| address(checker, "metrics_listen", &m, "127.0.0.1:9090"));
    let public_listen = pick(raw.public_listen, &env, "public_listen", None)
        .and_then(|m| address(checker, "public_listen", &m, "0.0.0.0:8443"));
    let busy = pick(
        raw.journal_busy_timeout,
        &env,
        "journal_busy_timeout",
        Some(DEFAULT_BUSY_TIMEOUT),
    )?;
    let busy_timeout = parse_duration(checker, "journal_busy_timeout", &busy);
    let lease = pick(
        raw.leader_lease,
        &env,
        "leader_lease",
        Some(DEFAULT_LEADER_LEASE),
    )?;
    let leader_lease = parse_duration(checker, "leader_lease", &lease).filter(|value| {
        let ok = *value >= std::time::Duration::from_secs(1);
        if !ok {
            checker.report(&lease.from, "leader_lease must be at least 1s".into());
        }
        ok
    });
    let election = match raw.leader_election.as_ref().map(|e| e.as_ref().as_str()) {
        None | Some("postgres") => Some(super::LeaderElection::Postgres),
        Some("kubernetes") => Some(super::LeaderElection::Kubernetes {
            lease_name: raw
                .leader_lease_name
                .clone()
                .unwrap_or_else(|| "token-rotator".into()),
        }),
        Some(other) => {
            let span = raw.leader_election.as_ref().map_or(0..0, Spanned::span);
            checker.report_span(
                span,
                format!("leader_election {other:?} is not one of \"postgres\", \"kubernetes\""),
            );
            None
        }
    };
    if raw.leader_election.is_some() && scheme == "sqlite" {
        let span = raw.leader_election.as_ref().map_or(0..0, Spanned::span);
        checker.report_span(
            span,
            "leader_election needs a journal replicas share: set database_url to postgres://…"
                .into(),
        );
    }
    let default_environment = pick(raw.default_environment, &env, "default_environment", None)
        .and_then(|env_value| match Environment::parse(&env_value.value) {
            Ok(environment) => Some((environment, env_value.from)),
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
    let public_url_from = pick(raw.public_url, &env, "public_url", None);
    let public_url = public_url_from
        .as_ref()
        .map(|u| u.value.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| format!("http://{}", listen.value));
    let rules = validate_rules(checker, raw.rules);
    let synoptic = super::schedules::validate_synoptic(checker, raw.synoptic);
    let served: std::collections::BTreeSet<String> = raw.environments.keys().cloned().collect();
    let gitlab = super::gitlab::validate_gitlab(checker, raw.gitlab, &served);
    let schedules = super::schedules::validate_schedules(
        checker,
        raw.schedules,
        synoptic.is_some(),
        gitlab.is_some(),
    );
    // A handover link is a credential: it travels over TLS or stays on this machine.
    let hands_over = schedules
        .iter()
        .any(|s| s.distribution == super::ScheduleDistribution::Handover);
    if hands_over && !secure_or_loopback(&public_url) {
        let from = public_url_from.map_or(Origin::Default, |u| u.from);
        checker.report(
            &from,
            format!(
                "public_url {public_url:?} must be https:// (handover links carry a credential); \
                 http:// only on a loopback address"
            ),
        );
    }
    let sections = validate_sections(
        checker,
        RawSections {
            rotation: raw.rotation,
            environments: raw.environments,
            signon: raw.signon,
            kubernetes: raw.kubernetes,
            alertmanager: raw.alertmanager,
            slack: raw.slack,
        },
    );

    if let Some(engine) = &sections.engine {
        let served: Vec<&str> = engine.modes.keys().map(String::as_str).collect();
        if served.is_empty() {
            checker.report_span(
                0..0,
                "no environment is served: name each one this instance serves under \
                 [environments.<name>] (with mode = \"shadow\" or \"active\"); alerts for any \
                 other are unroutable"
                    .into(),
            );
        }
        if let Some((environment, from)) = &default_environment
            && !engine.modes.contains_key(environment.as_str())
        {
            checker.report(
                from,
                format!(
                    "default_environment {:?} is not served: add [environments.{}] (served: {})",
                    environment.as_str(),
                    environment.as_str(),
                    served.join(", ")
                ),
            );
        }
    }
    let default_environment = default_environment.map(|(environment, _)| environment);
    let retention = {
        let from = raw
            .retention
            .as_ref()
            .map_or(Origin::Default, |r| Origin::File(r.span()));
        let text = raw
            .retention
            .map(Spanned::into_inner)
            .unwrap_or_else(|| DEFAULT_RETENTION.to_owned());
        parse_duration(checker, "retention", &Sourced { value: text, from })
    };
    if raw.max_alerts_per_delivery == Some(0) {
        checker.report_span(0..0, "max_alerts_per_delivery must be at least 1".into());
    }

    let owners = super::rules::validate_owners(checker, raw.owners);
    let sweep = super::sweep::validate_sweep(checker, raw.sweep.unwrap_or_default());
    let http = super::http::validate_http(checker, raw.http.unwrap_or_default());
    Some(Config {
        database_url: database_url.value,
        listen: listen_addr.ok()?,
        metrics_listen,
        public_listen,
        http: http?,
        status_page_open: raw.status_page_open,
        max_alerts_per_delivery: raw.max_alerts_per_delivery.unwrap_or(DEFAULT_MAX_ALERTS),
        retention: retention?,
        default_environment,
        journal_busy_timeout: busy_timeout?,
        leader_lease: leader_lease?,
        leader_election: election?,
        policy: Policy::new(rules, internal_domains).with_owners(owners.clone()),
        engine: sections
            .engine
            .map(|mut engine| {
                engine.public_url = public_url;
                engine.owners = owners;
                engine.retention = retention.unwrap_or(engine.retention);
                engine
            })
            .zip(sweep)
            .map(|(mut engine, sweep)| {
                engine.sweep = sweep;
                engine
            })?,
        signon: sections.signon,
        kubernetes: sections.kubernetes?,
        alertmanager: sections.alertmanager,
        slack: sections.slack?,
        synoptic,
        schedules,
        gitlab,
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

/// `https://…`, or `http://` to a loopback address (the demo, a port-forward).
fn secure_or_loopback(url: &str) -> bool {
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "https" => true,
        Ok(u) if u.scheme() == "http" => match u.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        },
        _ => false,
    }
}

/// A socket address, or a problem naming `key`, what it was and an example.
fn address(
    checker: &mut Checker,
    key: &str,
    value: &Sourced<String>,
    example: &str,
) -> Option<SocketAddr> {
    value
        .value
        .parse::<SocketAddr>()
        .map_err(|e| {
            checker.report(
                &value.from,
                format!(
                    "{key} {:?} is not an address like {example}: {e}",
                    value.value
                ),
            )
        })
        .ok()
}
