//! The rule table: an ordered list of rules, first match wins, every decision names its rule.
//!
//! Deciding is a pure function of the alert's labels; `explain` walks the same code and keeps the
//! reasons, so what `token-rotator explain` prints is what the service does.

mod pattern;

use std::fmt;
use std::time::Duration;

use serde::Serialize;

pub use pattern::{PatternError, PatternSet};

use crate::domain::Labels;

/// What should happen to the token an alert is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Rotate it automatically.
    Rotate,
    /// A person must act; `owner` is told and the runbook linked.
    Manual {
        owner: String,
        runbook_url: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        /// Ask in Slack first: Approve rotates as `rotate` would, Reject records the refusal.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        approval: bool,
        /// Slack user (`U…`) or user group (`S…`) ids allowed to press the buttons.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        approvers: Vec<String>,
        /// Ask the owners what to do instead of Approve/Reject: rotate and hand the token over,
        /// revoke it as no longer used, or let it expire. Nothing is minted before a choice.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ask: Option<Ask>,
    },
    /// Known to rotate by itself; if the alert is still firing after `escalate_after`, tell someone.
    Ignore {
        #[serde(with = "duration_text")]
        escalate_after: Duration,
    },
    /// Noise (staging is restored from production nightly): silence it in Alertmanager.
    Silence {
        #[serde(with = "duration_text")]
        duration: Duration,
    },
}

/// What an `ask` rule offers, and how its hand-over ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ask {
    /// How long the one-time link of "Rotate and hand over" stays open.
    #[serde(with = "duration_text")]
    pub handover_window: Duration,
    /// What happens to the old token once the holder confirms the consumer switched: revoked,
    /// or left to its own expiry. A window that ends unconfirmed always leaves it to expire.
    pub old_token: OldToken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OldToken {
    Revoke,
    Expire,
}

impl Action {
    /// Whether a person decides in Slack before anything happens (Approve/Reject, or a choice).
    pub fn asks_in_slack(&self) -> bool {
        matches!(
            self,
            Action::Manual { approval: true, .. } | Action::Manual { ask: Some(_), .. }
        )
    }

    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Rotate => ActionKind::Rotate,
            Action::Manual { .. } => ActionKind::Manual,
            Action::Ignore { .. } => ActionKind::Ignore,
            Action::Silence { .. } => ActionKind::Silence,
        }
    }
}

/// The decision's kind, also the journal's and the metrics' label. `Unroutable` is decided by
/// intake (the alert lacks what a rule needs), never by a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActionKind {
    Rotate,
    Manual,
    Ignore,
    Silence,
    Unroutable,
}

impl ActionKind {
    pub const ALL: [ActionKind; 5] = [
        ActionKind::Rotate,
        ActionKind::Manual,
        ActionKind::Ignore,
        ActionKind::Silence,
        ActionKind::Unroutable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Rotate => "rotate",
            ActionKind::Manual => "manual",
            ActionKind::Ignore => "ignore",
            ActionKind::Silence => "silence",
            ActionKind::Unroutable => "unroutable",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == value)
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether token-rotator acts (`active`) or only plans and says what it would do (`shadow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Active,
    Shadow,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Active => "active",
            Mode::Shadow => "shadow",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "active" => Some(Mode::Active),
            "shadow" => Some(Mode::Shadow),
            _ => None,
        }
    }
}

/// Whether an API user's email domain is one of the configured internal domains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DomainClass {
    Internal,
    External,
}

#[derive(Debug, Clone)]
pub enum Condition {
    Label { name: String, patterns: PatternSet },
    ApiUserDomain(DomainClass),
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub conditions: Vec<Condition>,
    pub action: Action,
    /// Overrides the environment's mode for what this rule decides.
    pub mode: Option<Mode>,
    /// Overrides the environment's Slack channel for what this rule decides.
    pub slack_channel: Option<String>,
    /// Whether the nightly sweep revokes the superseded tokens of the pairs this rule matches
    /// (`sweep`; by default only `rotate` rules' pairs are swept).
    pub sweep: bool,
}

/// What the rule table says of sweeping one pair's superseded tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepDecision {
    pub sweep: bool,
    /// The first matching rule; `None`: no rule matched, and nothing is swept.
    pub rule: Option<String>,
    /// The rule's own mode, if it sets one.
    pub mode: Option<Mode>,
    /// The rule's action.
    pub action: Option<ActionKind>,
}

/// Which rule made a decision: its 0-based position in the table and its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    pub index: usize,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// `None` when no rule matched and the fallback applied.
    pub rule: Option<RuleRef>,
    pub action: Action,
    /// The rule's own mode, if it sets one.
    pub mode: Option<Mode>,
    /// The rule's own Slack channel, if it sets one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slack_channel: Option<String>,
}

/// The fallback when no rule matches: a person looks, because guessing with credentials is worse.
pub const NO_RULE_MATCHED: &str = "no-rule-matched";

#[derive(Debug, Clone)]
pub struct Policy {
    rules: Vec<Rule>,
    internal_domains: Vec<String>,
    /// `[owners]`: by API user email or email domain (lower case), who is asked.
    owners: std::collections::BTreeMap<String, Vec<String>>,
}

/// The outcome of trying one rule, for `explain`.
#[derive(Debug, Clone, Serialize)]
pub struct RuleEvaluation {
    pub index: usize,
    pub name: String,
    pub matched: bool,
    /// Why it matched (one line per condition), or the first condition that failed.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub evaluations: Vec<RuleEvaluation>,
    pub decision: Decision,
}

impl Policy {
    pub fn new(rules: Vec<Rule>, internal_domains: Vec<String>) -> Self {
        let internal_domains = internal_domains
            .into_iter()
            .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
            .collect();
        Self {
            rules,
            internal_domains,
            owners: Default::default(),
        }
    }

    /// Who owns which API users' tokens: a rule that asks asks them instead of its `approvers`.
    pub fn with_owners(mut self, owners: std::collections::BTreeMap<String, Vec<String>>) -> Self {
        self.owners = owners;
        self
    }

    /// The owners of `api_user`: by its email first, then by its domain.
    fn owners_of(&self, api_user: &str) -> Option<&Vec<String>> {
        owners_of(&self.owners, api_user)
    }

    /// `[owners]` as configured: who is asked about which API users' tokens.
    pub fn owners(&self) -> &std::collections::BTreeMap<String, Vec<String>> {
        &self.owners
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Decides for one alert. `labels` must already carry the resolved `environment`.
    pub fn decide(&self, labels: &Labels) -> Decision {
        self.rules
            .iter()
            .enumerate()
            .find(|(_, rule)| rule.conditions.iter().all(|c| self.holds(c, labels)))
            .map(|(index, rule)| Decision {
                rule: Some(RuleRef {
                    index,
                    name: rule.name.clone(),
                }),
                action: self.with_owners_of(rule.action.clone(), label(labels, "api_user")),
                mode: rule.mode,
                slack_channel: rule.slack_channel.clone(),
            })
            .unwrap_or_else(fallback)
    }

    /// Whether the nightly sweep may revoke superseded tokens of the pair `labels` name: the
    /// first matching rule's `sweep`, as an alert with these labels would be decided; no match
    /// sweeps nothing (an unknown pair gets a person, not a revoke).
    pub fn sweeps(&self, labels: &Labels) -> SweepDecision {
        self.rules
            .iter()
            .find(|rule| rule.conditions.iter().all(|c| self.holds(c, labels)))
            .map_or(
                SweepDecision {
                    sweep: false,
                    rule: None,
                    mode: None,
                    action: None,
                },
                |rule| SweepDecision {
                    sweep: rule.sweep,
                    rule: Some(rule.name.clone()),
                    mode: rule.mode,
                    action: Some(rule.action.kind()),
                },
            )
    }

    /// A rule that asks asks the API user's owners, when `[owners]` names them.
    fn with_owners_of(&self, mut action: Action, api_user: &str) -> Action {
        if let (true, Some(owners), Action::Manual { approvers, .. }) = (
            action.asks_in_slack(),
            self.owners_of(api_user),
            &mut action,
        ) {
            approvers.clone_from(owners);
        }
        action
    }

    /// Tries the rules in order up to the first match, keeping every reason.
    pub fn explain(&self, labels: &Labels) -> Explanation {
        let mut evaluations = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            let outcome = self.check_rule(rule, labels);
            let matched = outcome.is_ok();
            let reasons = match outcome {
                Ok(()) => rule
                    .conditions
                    .iter()
                    .map(|c| self.describe_match(c, labels))
                    .collect(),
                Err(why) => vec![why],
            };
            evaluations.push(RuleEvaluation {
                index,
                name: rule.name.clone(),
                matched,
                reasons,
            });
            if matched {
                break;
            }
        }
        Explanation {
            evaluations,
            decision: self.decide(labels),
        }
    }

    /// `Ok` when every condition holds; otherwise the first that does not, in words.
    fn check_rule(&self, rule: &Rule, labels: &Labels) -> Result<(), String> {
        for condition in &rule.conditions {
            if !self.holds(condition, labels) {
                return Err(self.describe_mismatch(condition, labels));
            }
        }
        Ok(())
    }

    fn holds(&self, condition: &Condition, labels: &Labels) -> bool {
        match condition {
            Condition::Label { name, patterns } => patterns.is_match(label(labels, name)),
            Condition::ApiUserDomain(class) => self.domain_class(labels) == *class,
        }
    }

    fn domain_class(&self, labels: &Labels) -> DomainClass {
        let user = label(labels, "api_user");
        let domain = user
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default();
        if self.internal_domains.contains(&domain) {
            DomainClass::Internal
        } else {
            DomainClass::External
        }
    }

    fn describe_match(&self, condition: &Condition, labels: &Labels) -> String {
        match condition {
            Condition::Label { name, patterns } => {
                format!("{name} {:?} matches {patterns}", label(labels, name))
            }
            Condition::ApiUserDomain(class) => format!(
                "api_user {:?} is {} (internal domains: {})",
                label(labels, "api_user"),
                class_name(*class),
                self.internal_domains.join(", ")
            ),
        }
    }

    fn describe_mismatch(&self, condition: &Condition, labels: &Labels) -> String {
        match condition {
            Condition::Label { name, patterns } => match labels.get(name) {
                Some(value) => format!("{name} {value:?} does not match {patterns}"),
                None => format!("label {name} is absent, which does not match {patterns}"),
            },
            Condition::ApiUserDomain(class) => format!(
                "api_user {:?} is {}, not {} (internal domains: {})",
                label(labels, "api_user"),
                class_name(self.domain_class(labels)),
                class_name(*class),
                self.internal_domains.join(", ")
            ),
        }
    }
}

/// The owners of `api_user` in `owners` (keys lower case): by its email, then by its domain.
pub fn owners_of<'a>(
    owners: &'a std::collections::BTreeMap<String, Vec<String>>,
    api_user: &str,
) -> Option<&'a Vec<String>> {
    let email = api_user.trim().to_ascii_lowercase();
    owners.get(&email).or_else(|| {
        email
            .rsplit_once('@')
            .and_then(|(_, domain)| owners.get(domain))
    })
}

fn fallback() -> Decision {
    Decision {
        rule: None,
        mode: None,
        slack_channel: None,
        action: Action::Manual {
            owner: "whoever runs token-rotator".into(),
            runbook_url: String::new(),
            note: Some(format!(
                "{NO_RULE_MATCHED}: no rule in the table matched this alert; add one"
            )),
            approval: false,
            approvers: Vec::new(),
            ask: None,
        },
    }
}

fn label<'a>(labels: &'a Labels, name: &str) -> &'a str {
    labels.get(name).map(String::as_str).unwrap_or("")
}

fn class_name(class: DomainClass) -> &'static str {
    match class {
        DomainClass::Internal => "internal",
        DomainClass::External => "external",
    }
}

/// Durations as humans write them in the config (`7d`, `1h 30m`).
mod duration_text {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }
}
