//! `[[schedules]]` (targets rotated every so often, not on an alert) and `[synoptic]` (the
//! credential API they use).

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::raw::Checker;
use super::sections::{DEFAULT_HTTP_TIMEOUT, optional_duration};
use super::{CredentialApi, ScheduleDistribution, SynopticSettings};
use crate::adapters::synoptic::settings::{DEFAULT_DISABLE_PROPAGATION, DEFAULT_VERIFY_PATH};
use crate::engine::{Handover, Schedule, Window};

/// Which issuer a scheduled target's token comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleIssuer {
    Synoptic,
    GitLab,
}

#[derive(Debug, Clone)]
pub struct ScheduleSettings {
    pub schedule: Schedule,
    pub distribution: ScheduleDistribution,
    pub issuer: ScheduleIssuer,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSynoptic {
    url: Option<String>,
    /// "current" (default) or "legacy".
    credential_api: Option<Spanned<String>>,
    verify_path: Option<String>,
    timeout: Option<Spanned<String>>,
    disable_propagation: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedule {
    name: Spanned<String>,
    issuer: Spanned<String>,
    environment: Option<String>,
    every: Spanned<String>,
    overlap: Option<Spanned<String>>,
    window: Option<Spanned<String>>,
    jitter: Option<Spanned<String>>,
    #[serde(default)]
    disable_old: bool,
    file: Option<RawFile>,
    handover: Option<RawHandover>,
    /// GitLab: whose token (`user:<id>`, `project:<id or path>`, `group:<id or path>`).
    owner: Option<String>,
    /// GitLab: the token's name.
    token: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHandover {
    /// Who collects it: a Slack member id (`U…`/`W…`), sent the link as a direct message.
    owner: String,
    /// How long the one-time link works (default 2 days).
    window: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    path: Spanned<String>,
    mode: Option<Spanned<String>>,
    /// `uid:gid`
    owner: Option<Spanned<String>>,
}

pub(super) fn validate_synoptic(
    checker: &mut Checker,
    raw: Option<RawSynoptic>,
) -> Option<SynopticSettings> {
    let raw = raw?;
    let timeout = optional_duration(
        checker,
        "synoptic.timeout",
        raw.timeout,
        DEFAULT_HTTP_TIMEOUT,
    )?;
    let disable_propagation = optional_duration(
        checker,
        "synoptic.disable_propagation",
        raw.disable_propagation,
        DEFAULT_DISABLE_PROPAGATION,
    )?;
    let credential_api = match raw.credential_api {
        None => CredentialApi::Current,
        Some(c) => match c.get_ref().as_str() {
            "current" => CredentialApi::Current,
            "legacy" => CredentialApi::Legacy,
            other => {
                checker.report_span(
                    c.span(),
                    format!("synoptic.credential_api {other:?} is not \"current\" or \"legacy\""),
                );
                return None;
            }
        },
    };
    let url = raw
        .url
        .unwrap_or_else(|| "https://api.synopticdata.com".into());
    Some(SynopticSettings {
        credential_api,
        verify_path: raw
            .verify_path
            .unwrap_or_else(|| DEFAULT_VERIFY_PATH.into()),
        timeout,
        disable_propagation,
        ..SynopticSettings::at(&url)
    })
}

pub(super) fn validate_schedules(
    checker: &mut Checker,
    raw: Vec<RawSchedule>,
    synoptic: bool,
    gitlab: bool,
) -> Vec<ScheduleSettings> {
    let mut names = BTreeSet::new();
    let mut out = Vec::new();
    for schedule in raw {
        let name_span = schedule.name.span();
        let name = schedule.name.into_inner();
        let label = format!("schedule {name:?}");
        if name.trim().is_empty() || !names.insert(name.clone()) {
            checker.report_span(
                name_span.clone(),
                format!("{label}: names must be unique and not empty"),
            );
            continue;
        }
        let (issuer, api_user, application) = match schedule.issuer.get_ref().as_str() {
            "synoptic" => {
                if !synoptic {
                    checker.report_span(
                        name_span.clone(),
                        format!("{label}: issuer \"synoptic\" needs a [synoptic] section"),
                    );
                }
                (
                    ScheduleIssuer::Synoptic,
                    name.clone(),
                    "synoptic".to_owned(),
                )
            }
            "gitlab" => {
                if !gitlab {
                    checker.report_span(
                        name_span.clone(),
                        format!("{label}: issuer \"gitlab\" needs a [gitlab] section"),
                    );
                }
                match (schedule.owner.clone(), schedule.token.clone()) {
                    (Some(owner), Some(token))
                        if !owner.trim().is_empty() && !token.trim().is_empty() =>
                    {
                        // A path with `..`, `?` or whitespace names no GitLab owner: say so now,
                        // not at the first rotation.
                        if let Err(why) = crate::adapters::gitlab::check_owner(owner.trim()) {
                            checker.report_span(name_span.clone(), format!("{label}: {why}"));
                            continue;
                        }
                        (ScheduleIssuer::GitLab, owner, token)
                    }
                    _ => {
                        checker.report_span(
                            name_span.clone(),
                            format!(
                                "{label}: issuer \"gitlab\" needs owner = \"project:<id>\" (or user:/group:) and token = \"<the token's name>\""
                            ),
                        );
                        continue;
                    }
                }
            }
            other => {
                checker.report_span(
                    schedule.issuer.span(),
                    format!(
                        "{label}: issuer {other:?} is not one a schedule can use (\"synoptic\" or \"gitlab\")"
                    ),
                );
                continue;
            }
        };
        let every_span = schedule.every.span();
        let every = optional_duration(
            checker,
            &format!("{label}: every"),
            Some(schedule.every),
            Duration::ZERO,
        );
        let overlap = optional_duration(
            checker,
            &format!("{label}: overlap"),
            schedule.overlap,
            Duration::ZERO,
        );
        let jitter = optional_duration(
            checker,
            &format!("{label}: jitter"),
            schedule.jitter,
            Duration::ZERO,
        );
        let window = schedule
            .window
            .and_then(|w| match Window::parse(w.get_ref()) {
                Ok(window) => Some(window),
                Err(e) => {
                    checker.report_span(w.span(), format!("{label}: {e}"));
                    None
                }
            });
        let (Some(every), Some(overlap), Some(jitter)) = (every, overlap, jitter) else {
            continue;
        };
        if every < Duration::from_secs(60) {
            checker.report_span(
                every_span.clone(),
                format!("{label}: every must be at least a minute"),
            );
            continue;
        }
        let overlap = if overlap.is_zero() { every } else { overlap };
        if overlap > every {
            checker.report_span(
                every_span,
                format!(
                    "{label}: overlap is more than one period: three tokens would be alive at once"
                ),
            );
            continue;
        }
        let (distribution, handover) = match (schedule.file, schedule.handover) {
            (Some(file), None) => match validate_file(checker, &label, file) {
                Some(d) => (d, None),
                None => continue,
            },
            (None, Some(h)) => {
                let window = optional_duration(
                    checker,
                    &format!("{label}: handover.window"),
                    h.window,
                    Duration::from_secs(2 * 86400),
                );
                let Some(window) = window else { continue };
                if !crate::adapters::slack::is_member_id(&h.owner) {
                    checker.report_span(
                        name_span.clone(),
                        format!(
                            "{label}: handover.owner {:?} must be a Slack member id (U… or W…, from the person's profile): the link is a credential and goes to that person alone, as a direct message",
                            h.owner
                        ),
                    );
                    continue;
                }
                let handover = Handover {
                    owner: h.owner,
                    window,
                };
                (ScheduleDistribution::Handover, Some(handover))
            }
            _ => {
                checker.report_span(
                    name_span,
                    format!(
                        "{label}: say where the token goes: either file = {{ path = … }} or handover = {{ owner = … }}"
                    ),
                );
                continue;
            }
        };
        out.push(ScheduleSettings {
            schedule: Schedule {
                api_user,
                name,
                environment: schedule.environment.unwrap_or_else(|| "scheduled".into()),
                application,
                every,
                overlap,
                window,
                jitter,
                disable_old: schedule.disable_old,
                handover,
            },
            distribution,
            issuer,
        });
    }
    out
}

fn validate_file(
    checker: &mut Checker,
    label: &str,
    file: RawFile,
) -> Option<ScheduleDistribution> {
    let path_span = file.path.span();
    let path = file.path.into_inner();
    if !path.starts_with('/') {
        checker.report_span(
            path_span,
            format!("{label}: file path {path:?} must be absolute"),
        );
        return None;
    }
    let mode = match file.mode {
        None => 0o600,
        Some(m) => match u32::from_str_radix(m.get_ref().trim_start_matches("0o"), 8) {
            Ok(mode) if mode <= 0o777 => mode,
            _ => {
                checker.report_span(
                    m.span(),
                    format!("{label}: mode {:?} is not octal like \"0600\"", m.get_ref()),
                );
                return None;
            }
        },
    };
    let owner = match file.owner {
        None => None,
        Some(o) => {
            let parsed = o
                .get_ref()
                .split_once(':')
                .and_then(|(u, g)| Some((u.parse().ok()?, g.parse().ok()?)));
            if parsed.is_none() {
                checker.report_span(
                    o.span(),
                    format!("{label}: owner {:?} is not uid:gid", o.get_ref()),
                );
                return None;
            }
            parsed
        }
    };
    Some(ScheduleDistribution::File { path, mode, owner })
}
