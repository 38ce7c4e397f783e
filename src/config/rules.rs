//! The `[[rules]]` table as written, and its validation into the policy's rules.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::raw::{Checker, Origin, Sourced, parse_duration};
use crate::policy::{Action, Ask, Condition, DomainClass, Mode, OldToken, PatternSet, Rule};

const DEFAULT_SILENCE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Two days: the holder has a working day to collect and switch, whatever day it was asked.
const DEFAULT_HANDOVER_WINDOW: Duration = Duration::from_secs(2 * 24 * 3600);
const DEFAULT_ESCALATE_AFTER: Duration = Duration::from_secs(14 * 24 * 3600);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    name: Option<Spanned<String>>,
    action: Spanned<String>,
    #[serde(default, rename = "match")]
    matchers: BTreeMap<String, Spanned<OneOrMany>>,
    api_user_domain: Option<Spanned<DomainClass>>,
    owner: Option<Spanned<String>>,
    runbook_url: Option<Spanned<String>>,
    note: Option<String>,
    escalate_after: Option<Spanned<String>>,
    duration: Option<Spanned<String>>,
    approval: Option<Spanned<bool>>,
    approvers: Option<Spanned<Vec<String>>>,
    /// Ask the owners (`approvers`) what to do: hand over, revoke as unused, or let expire.
    ask: Option<Spanned<bool>>,
    handover_window: Option<Spanned<String>>,
    old_token: Option<Spanned<OldToken>>,
    mode: Option<Mode>,
    /// Slack channel for what this rule decides (overrides the environment's and `[slack]`'s).
    slack_channel: Option<Spanned<String>>,
    /// Whether the nightly sweep revokes this rule's pairs' superseded tokens (default: only
    /// for `rotate`).
    sweep: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "a string or a list of strings")]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

pub(super) fn validate_rules(checker: &mut Checker, raw: Vec<Spanned<RawRule>>) -> Vec<Rule> {
    if raw.is_empty() {
        checker.report_span(
            0..0,
            "no [[rules]]: at least one rule is required (the last is usually a catch-all)".into(),
        );
    }
    let mut names = BTreeMap::new();
    let mut rules = Vec::new();
    for (index, spanned) in raw.into_iter().enumerate() {
        let span = spanned.span();
        let rule = validate_rule(checker, index, span.clone(), spanned.into_inner());
        if let Some(rule) = rule {
            if let Some(first) = names.insert(rule.name.clone(), index) {
                checker.report_span(
                    span,
                    format!("rule name {:?} is used by rule {first} too", rule.name),
                );
            }
            rules.push(rule);
        }
    }
    rules
}

fn validate_rule(
    checker: &mut Checker,
    index: usize,
    span: Range<usize>,
    raw: RawRule,
) -> Option<Rule> {
    let name = match raw.name {
        Some(name) if !name.get_ref().trim().is_empty() => name.into_inner(),
        Some(name) => {
            checker.report_span(name.span(), "rule name is empty".into());
            return None;
        }
        None => {
            checker.report_span(span, format!("rule {index} has no name"));
            return None;
        }
    };
    let mut conditions = Vec::new();
    for (label, patterns) in raw.matchers {
        let sources = match patterns.get_ref() {
            OneOrMany::One(one) => vec![one.clone()],
            OneOrMany::Many(many) => many.clone(),
        };
        match PatternSet::for_label(&label, &sources) {
            Ok(patterns) => conditions.push(Condition::Label {
                name: label,
                patterns,
            }),
            Err(e) => checker.report_span(patterns.span(), format!("rule {name:?}: {e}")),
        }
    }
    if let Some(class) = raw.api_user_domain {
        conditions.push(Condition::ApiUserDomain(class.into_inner()));
    }
    let action = validate_action(
        checker,
        &name,
        raw.action,
        ActionFields {
            owner: raw.owner,
            runbook_url: raw.runbook_url,
            note: raw.note,
            escalate_after: raw.escalate_after,
            duration: raw.duration,
            approval: raw.approval,
            approvers: raw.approvers,
            ask: raw.ask,
            handover_window: raw.handover_window,
            old_token: raw.old_token,
        },
    )?;
    let slack_channel = raw.slack_channel.and_then(|c| {
        let span = c.span();
        let channel = c.into_inner();
        match super::sections::check_channel(&channel) {
            Ok(()) => Some(channel),
            Err(e) => {
                checker.report_span(span, format!("rule {name:?}: slack_channel {e}"));
                None
            }
        }
    });
    // A rotated pair's tokens are token-rotator's to manage; any other action means someone
    // else looks after the pair, so its tokens are left alone unless the rule says otherwise.
    let sweep = raw.sweep.unwrap_or(action == Action::Rotate);
    Some(Rule {
        name,
        conditions,
        action,
        mode: raw.mode,
        slack_channel,
        sweep,
    })
}

struct ActionFields {
    owner: Option<Spanned<String>>,
    runbook_url: Option<Spanned<String>>,
    note: Option<String>,
    escalate_after: Option<Spanned<String>>,
    duration: Option<Spanned<String>>,
    approval: Option<Spanned<bool>>,
    approvers: Option<Spanned<Vec<String>>>,
    ask: Option<Spanned<bool>>,
    handover_window: Option<Spanned<String>>,
    old_token: Option<Spanned<OldToken>>,
}

fn validate_action(
    checker: &mut Checker,
    rule: &str,
    action: Spanned<String>,
    fields: ActionFields,
) -> Option<Action> {
    let span = action.span();
    // Fields that belong to another action are mistakes, not harmless extras.
    let misplaced = |checker: &mut Checker, present: &[(&str, Option<Range<usize>>)]| {
        for (key, field_span) in present {
            if let Some(field_span) = field_span {
                checker.report_span(
                    field_span.clone(),
                    format!(
                        "rule {rule:?}: `{key}` does not apply to action {:?}",
                        action.get_ref()
                    ),
                );
            }
        }
    };
    let owner_span = fields.owner.as_ref().map(Spanned::span);
    let runbook_span = fields.runbook_url.as_ref().map(Spanned::span);
    let escalate_span = fields.escalate_after.as_ref().map(Spanned::span);
    let duration_span = fields.duration.as_ref().map(Spanned::span);
    let approval_span = fields.approval.as_ref().map(Spanned::span);
    let approvers_span = fields.approvers.as_ref().map(Spanned::span);
    let ask_span = fields.ask.as_ref().map(Spanned::span);
    let window_span = fields.handover_window.as_ref().map(Spanned::span);
    let old_token_span = fields.old_token.as_ref().map(Spanned::span);
    let asks = [
        ("ask", ask_span.clone()),
        ("handover_window", window_span.clone()),
        ("old_token", old_token_span.clone()),
    ];
    let duration_of = |checker: &mut Checker, key: &str, value: Option<Spanned<String>>| {
        value.and_then(|v| {
            let sourced = Sourced {
                from: Origin::File(v.span()),
                value: v.into_inner(),
            };
            parse_duration(checker, key, &sourced)
        })
    };
    match action.get_ref().as_str() {
        "rotate" => {
            misplaced(
                checker,
                &[
                    ("owner", owner_span),
                    ("runbook_url", runbook_span),
                    ("escalate_after", escalate_span),
                    ("duration", duration_span),
                    ("approval", approval_span.clone()),
                    ("approvers", approvers_span.clone()),
                    asks[0].clone(),
                    asks[1].clone(),
                    asks[2].clone(),
                ],
            );
            Some(Action::Rotate)
        }
        "manual" => {
            misplaced(
                checker,
                &[
                    ("escalate_after", escalate_span),
                    ("duration", duration_span),
                ],
            );
            let owner = required(checker, rule, span.clone(), "owner", fields.owner);
            let runbook_url = required(
                checker,
                rule,
                span.clone(),
                "runbook_url",
                fields.runbook_url,
            );
            let approval = fields.approval.is_some_and(|a| *a.get_ref());
            let ask = fields.ask.as_ref().is_some_and(|a| *a.get_ref());
            if approval && ask {
                checker.report_span(
                    ask_span.unwrap_or(span.clone()),
                    format!(
                        "rule {rule:?}: `ask` and `approval` are two ways of asking; choose one"
                    ),
                );
                return None;
            }
            if !ask {
                misplaced(checker, &[asks[1].clone(), asks[2].clone()]);
            }
            let window = match fields.handover_window {
                Some(v) => duration_of(checker, "handover_window", Some(v))?,
                None => DEFAULT_HANDOVER_WINDOW,
            };
            let ask = ask.then(|| Ask {
                handover_window: window,
                old_token: fields
                    .old_token
                    .map_or(OldToken::Revoke, Spanned::into_inner),
            });
            let approvers = validate_approvers(
                checker,
                rule,
                span,
                approval || ask.is_some(),
                fields.approvers,
            )?;
            Some(Action::Manual {
                owner: owner?,
                runbook_url: runbook_url?,
                note: fields.note,
                approval,
                approvers,
                ask,
            })
        }
        "ignore" => {
            misplaced(
                checker,
                &[
                    ("owner", owner_span),
                    ("runbook_url", runbook_span),
                    ("duration", duration_span),
                    ("approval", approval_span.clone()),
                    ("approvers", approvers_span.clone()),
                    asks[0].clone(),
                    asks[1].clone(),
                    asks[2].clone(),
                ],
            );
            let escalate_after = match fields.escalate_after {
                Some(v) => duration_of(checker, "escalate_after", Some(v))?,
                None => DEFAULT_ESCALATE_AFTER,
            };
            Some(Action::Ignore { escalate_after })
        }
        "silence" => {
            misplaced(
                checker,
                &[
                    ("owner", owner_span),
                    ("runbook_url", runbook_span),
                    ("escalate_after", escalate_span),
                    ("approval", approval_span.clone()),
                    ("approvers", approvers_span.clone()),
                    asks[0].clone(),
                    asks[1].clone(),
                    asks[2].clone(),
                ],
            );
            let duration = match fields.duration {
                Some(v) => duration_of(checker, "duration", Some(v))?,
                None => DEFAULT_SILENCE,
            };
            Some(Action::Silence { duration })
        }
        other => {
            checker.report_span(
                span,
                format!(
                    "rule {rule:?}: unknown action {other:?}, expected one of \"rotate\", \"manual\", \"ignore\", \"silence\""
                ),
            );
            None
        }
    }
}

fn required(
    checker: &mut Checker,
    rule: &str,
    action_span: Range<usize>,
    key: &str,
    value: Option<Spanned<String>>,
) -> Option<String> {
    match value {
        Some(v) if !v.get_ref().trim().is_empty() => Some(v.into_inner()),
        Some(v) => {
            checker.report_span(v.span(), format!("rule {rule:?}: `{key}` is empty"));
            None
        }
        None => {
            checker.report_span(
                action_span,
                format!("rule {rule:?}: action \"manual\" needs `{key}`"),
            );
            None
        }
    }
}

/// Who may press Approve or Reject: Slack user ids (`U…`, `W…`) or user group ids (`S…`).
fn validate_approvers(
    checker: &mut Checker,
    rule: &str,
    action_span: Range<usize>,
    approval: bool,
    approvers: Option<Spanned<Vec<String>>>,
) -> Option<Vec<String>> {
    let (span, ids) = match approvers {
        Some(a) => (a.span(), a.into_inner()),
        None => (action_span, Vec::new()),
    };
    if !approval {
        if !ids.is_empty() {
            checker.report_span(
                span,
                format!("rule {rule:?}: `approvers` needs `approval = true` or `ask = true`"),
            );
            return None;
        }
        return Some(ids);
    }
    if ids.is_empty() {
        checker.report_span(
            span,
            format!(
                "rule {rule:?}: `approval = true` and `ask = true` need `approvers`, the Slack user or group ids who may decide"
            ),
        );
        return None;
    }
    let bad: Vec<&String> = ids.iter().filter(|id| !is_slack_principal(id)).collect();
    if !bad.is_empty() {
        checker.report_span(
            span,
            format!(
                "rule {rule:?}: approvers {bad:?} are not Slack user ids (U…, W…) or user group ids (S…)"
            ),
        );
        return None;
    }
    Some(ids)
}

fn is_slack_principal(id: &str) -> bool {
    id.len() >= 3
        && id.starts_with(['U', 'W', 'S'])
        && id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// `[owners]`: an API user's email or an email domain → the Slack ids asked about its tokens.
pub(super) fn validate_owners(
    checker: &mut Checker,
    raw: BTreeMap<String, Spanned<Vec<String>>>,
) -> BTreeMap<String, Vec<String>> {
    let mut owners = BTreeMap::new();
    for (key, ids) in raw {
        let span = ids.span();
        let ids = ids.into_inner();
        let bad: Vec<&String> = ids.iter().filter(|id| !is_slack_principal(id)).collect();
        if ids.is_empty() || !bad.is_empty() {
            checker.report_span(
                span,
                format!(
                    "owners.{key:?}: {} Slack user ids (U…, W…) or user group ids (S…)",
                    if ids.is_empty() {
                        "needs".to_owned()
                    } else {
                        format!("{bad:?} are not")
                    }
                ),
            );
            continue;
        }
        owners.insert(key.trim().trim_start_matches('@').to_ascii_lowercase(), ids);
    }
    owners
}
