//! `[gitlab]`: GitLab's API for scheduled GitLab targets (`[[schedules]] issuer = "gitlab"`)
//! and for environments whose alerts name GitLab tokens. The token token-rotator authenticates
//! with comes from `TOKEN_ROTATOR_GITLAB_TOKEN(_FILE)`.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::raw::Checker;
use super::sections::{DEFAULT_HTTP_TIMEOUT, optional_duration};
use crate::adapters::gitlab::{DEFAULT_MAX_LIFETIME, GitLabSettings};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGitLab {
    url: Spanned<String>,
    timeout: Option<Spanned<String>>,
    /// The instance's maximum token lifetime (default 365d, GitLab's own default).
    max_lifetime: Option<Spanned<String>>,
    /// The instance's time zone (`gitlab_rails['time_zone']`; UTC, GitLab's default): its
    /// maximum token lifetime is counted from its own today.
    time_zone: Option<Spanned<String>>,
    /// Where alert-driven GitLab tokens are written, one file each.
    tokens_dir: Option<String>,
    /// Environments whose alerts name GitLab tokens (`api_user = "project:42"`,
    /// `application = "<token name>"`).
    #[serde(default)]
    environments: Vec<Spanned<String>>,
}

pub(super) fn validate_gitlab(
    checker: &mut Checker,
    raw: Option<RawGitLab>,
    served: &BTreeSet<String>,
) -> Option<GitLabSettings> {
    let raw = raw?;
    let url_span = raw.url.span();
    let url = raw.url.into_inner();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        checker.report_span(
            url_span.clone(),
            format!("gitlab.url {url:?} is not an http(s) URL"),
        );
        return None;
    }
    let timeout = optional_duration(checker, "gitlab.timeout", raw.timeout, DEFAULT_HTTP_TIMEOUT)?;
    let max_lifetime = optional_duration(
        checker,
        "gitlab.max_lifetime",
        raw.max_lifetime,
        DEFAULT_MAX_LIFETIME,
    )?;
    if max_lifetime < Duration::from_secs(2 * 86400) {
        checker.report_span(
            url_span.clone(),
            "gitlab.max_lifetime must be at least 2 days: GitLab's expiry is a date after today"
                .into(),
        );
        return None;
    }
    let time_zone = match raw.time_zone {
        None => jiff::tz::TimeZone::UTC,
        Some(zone) => {
            let span = zone.span();
            match jiff::tz::TimeZone::get(zone.get_ref()) {
                Ok(tz) => tz,
                Err(e) => {
                    checker.report_span(
                        span,
                        format!(
                            "gitlab.time_zone {:?} is not an IANA time zone (as gitlab_rails['time_zone'], e.g. \"Europe/London\"): {e}",
                            zone.get_ref()
                        ),
                    );
                    return None;
                }
            }
        }
    };
    let mut environments = Vec::new();
    for environment in raw.environments {
        let span = environment.span();
        let name = environment.into_inner();
        if !served.contains(&name) {
            checker.report_span(
                span,
                format!("gitlab.environments: {name:?} is not served: add [environments.{name}]"),
            );
            continue;
        }
        environments.push(name);
    }
    if !environments.is_empty() && raw.tokens_dir.is_none() {
        checker.report_span(
            url_span,
            "gitlab.environments needs gitlab.tokens_dir: where each rotated token is written"
                .into(),
        );
        return None;
    }
    Some(GitLabSettings {
        url,
        timeout,
        max_lifetime,
        time_zone,
        tokens_dir: raw.tokens_dir,
        environments,
    })
}
