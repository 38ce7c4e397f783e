//! `token-rotator explain`: which rule decides for these labels, why, and why not the earlier ones.

use std::fmt::Write;

use crate::config::Config;
use crate::domain::Labels;
use crate::policy::{Action, Explanation};

pub struct ExplainArgs {
    pub environment: String,
    pub api_user: String,
    pub application: String,
    /// Further labels, `name=value`.
    pub labels: Vec<(String, String)>,
}

/// Parses `name=value` for `--label`.
pub fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected name=value, got {text:?}")),
    }
}

/// What `explain` found: the environment is not served (no rule is tried), or the rules' verdicts.
pub enum Explained {
    NotServed {
        environment: String,
        served: Vec<String>,
    },
    Rules(Explanation),
}

pub fn run(config: &Config, args: ExplainArgs) -> Explained {
    // The allow-list comes before the rules, as at intake.
    if !config.engine.modes.contains_key(&args.environment) {
        return Explained::NotServed {
            environment: args.environment,
            served: config.engine.modes.keys().cloned().collect(),
        };
    }
    let mut labels: Labels = args.labels.into_iter().collect();
    labels.insert("environment".into(), args.environment);
    labels.insert("api_user".into(), args.api_user);
    labels.insert("application".into(), args.application);
    Explained::Rules(config.policy.explain(&labels))
}

impl Explained {
    pub fn text(&self) -> String {
        match self {
            Explained::NotServed {
                environment,
                served,
            } => format!(
                "environment {environment:?} is not served by this config (served: {}): the alert is recorded as unroutable and no rule is tried\n",
                served.join(", ")
            ),
            Explained::Rules(explanation) => render(explanation),
        }
    }

    /// `-o json`: `{"served": false, ...}`, or every rule's verdict and the decision.
    pub fn json(&self) -> serde_json::Value {
        match self {
            Explained::NotServed {
                environment,
                served,
            } => serde_json::json!({
                "environment": environment,
                "served": false,
                "served_environments": served,
                "decision": {"action": "unroutable"},
            }),
            Explained::Rules(explanation) => serde_json::json!({
                "served": true,
                "rules": explanation.evaluations,
                "decision": explanation.decision,
            }),
        }
    }
}

pub fn render(explanation: &Explanation) -> String {
    let mut out = String::new();
    for evaluation in &explanation.evaluations {
        let verdict = if evaluation.matched {
            "MATCH"
        } else {
            "no match"
        };
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "rule {} {:?}: {verdict}",
            evaluation.index, evaluation.name
        );
        if evaluation.matched && evaluation.reasons.is_empty() {
            let _ = writeln!(out, "    - no conditions: matches every alert");
        }
        for reason in &evaluation.reasons {
            let _ = writeln!(out, "    - {reason}");
        }
    }
    let decision = &explanation.decision;
    let by = decision.rule.as_ref().map_or_else(
        || "no rule matched; the fallback applies".to_owned(),
        |r| format!("rule {} {:?}", r.index, r.name),
    );
    let _ = writeln!(out, "decision: {} (by {by})", decision.action.kind());
    if let Some(channel) = &decision.slack_channel {
        let _ = writeln!(out, "    Slack channel: {channel}");
    }
    match &decision.action {
        Action::Manual {
            owner,
            runbook_url,
            note,
            approval,
            approvers,
            ask,
        } => {
            let _ = writeln!(out, "    owner: {owner}");
            if !runbook_url.is_empty() {
                let _ = writeln!(out, "    runbook: {runbook_url}");
            }
            if let Some(note) = note {
                let _ = writeln!(out, "    note: {note}");
            }
            if *approval {
                let _ = writeln!(
                    out,
                    "    asks in Slack first; may approve: {}",
                    approvers.join(", ")
                );
            }
            if let Some(ask) = ask {
                let _ = writeln!(
                    out,
                    "    asks its owners in Slack, nothing minted before a choice: rotate and hand over (link open {}, old token {} once the holder confirms), revoke as no longer used, or let it expire; may choose: {}",
                    humantime::format_duration(ask.handover_window),
                    match ask.old_token {
                        crate::policy::OldToken::Revoke => "revoked",
                        crate::policy::OldToken::Expire => "left to expire",
                    },
                    approvers.join(", ")
                );
            }
        }
        Action::Ignore { escalate_after } => {
            let _ = writeln!(
                out,
                "    escalate if still firing after {}",
                humantime::format_duration(*escalate_after)
            );
        }
        Action::Silence { duration } => {
            let _ = writeln!(
                out,
                "    silence for {}",
                humantime::format_duration(*duration)
            );
        }
        Action::Rotate => {}
    }
    out
}
