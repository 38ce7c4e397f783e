//! `token-rotator plan`: what the service would do for the alerts firing now (read from
//! Alertmanager) or for labels given on the command line. Starts no service, writes no journal,
//! changes nothing: only read-only calls, and no `Permit` exists here to make any other. An
//! issuer that lists through a Job is not asked at all: its tokens come from the journal's last
//! inventory.

use std::collections::BTreeMap;

use std::fmt::Write;

use serde_json::json;

use crate::adapters::Upstreams;
use crate::adapters::alertmanager::{AlertmanagerClient, Matcher};
use crate::config::Config;
use crate::domain::Labels;
use crate::engine::shadow::{Inventoried, Plan, plan_rotation};
use crate::intake::target_of;
use crate::policy::Action;
use crate::store::Journal;

/// One target's plan.
pub struct Report {
    pub labels: Labels,
    pub decision: String,
    pub plan: Plan,
}

/// `plan` as the command line runs it: for `alerts` when given, else for those Alertmanager
/// reports firing; builds read-only clients from `config` and opens the journal only when an
/// issuer's listing would write (never creating it).
pub async fn for_cli(config: &Config, alerts: Option<Vec<Labels>>) -> anyhow::Result<Vec<Report>> {
    let observer = crate::adapters::Observer::default();
    let upstreams = crate::commands::serve::upstreams(config, &observer).await?;
    let alertmanager = crate::commands::serve::alertmanager(config, observer);
    let alerts = match alerts {
        Some(alerts) => alerts,
        None => {
            let am = alertmanager.as_ref().ok_or_else(|| {
                anyhow::anyhow!(
                    "no [alertmanager] configured: give --environment, --api-user and --application"
                )
            })?;
            am.active_alerts(crate::reconcile::ALERTNAME)
                .await?
                .into_iter()
                .map(|a| a.labels)
                .collect()
        }
    };
    // Read only when an issuer's listing would write; never created here.
    let lists_with_job = upstreams
        .as_ref()
        .is_some_and(|all| all.values().any(|up| up.issuer.list_writes()));
    let journal = if lists_with_job {
        Journal::open_existing(&config.database_url, config.journal_busy_timeout)
            .await
            .map_err(|e| e.to_string())
    } else {
        Err("no issuer needs it".to_owned())
    };
    let reports = plan_all(
        config,
        alerts,
        upstreams.as_ref(),
        alertmanager.as_ref(),
        journal.as_ref().map_err(String::as_str),
    )
    .await;
    if let Ok(journal) = journal {
        journal.close().await;
    }
    Ok(reports)
}

/// A rotation's plan. An issuer whose listing would write (a Job per target) is not asked:
/// its tokens are read from the service's last inventory in `journal`, and without one the plan
/// says so. Another issuer is listed, waiting up to two minutes for a pending answer.
async fn plan_waiting(
    up: &Upstreams,
    target: &crate::domain::Target,
    config: &Config,
    journal: Result<&Journal, &str>,
) -> Plan {
    let inventory = if up.issuer.list_writes() {
        let journal = match journal {
            Ok(journal) => journal,
            Err(why) => return infeasible(format!("cannot read the last inventory: {why}")),
        };
        match Inventoried::read(journal.pool(), target).await {
            Ok(Some(inventory)) => Some(inventory),
            Ok(None) => {
                return infeasible(format!(
                    "no inventory of {} in the journal yet: `plan` reads the service's last inventory (taken when it starts leading, then daily) rather than start a list Job",
                    target.environment
                ));
            }
            Err(e) => return infeasible(e.to_string()),
        }
    } else {
        None
    };
    let key = format!("plan-{}", uuid::Uuid::new_v4());
    for _ in 0..120 {
        match plan_rotation(up, target, &config.engine, None, &key, inventory.as_ref()).await {
            Ok(plan) => return plan,
            Err(e) if e.is_pending() => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
            Err(e) => return infeasible(e.to_string()),
        }
    }
    infeasible("the issuer's answer did not come within two minutes".into())
}

/// Plans every alert in `alerts` (label sets), as the engine would decide them.
pub async fn plan_all(
    config: &Config,
    alerts: Vec<Labels>,
    upstreams: Option<&BTreeMap<String, Upstreams>>,
    alertmanager: Option<&AlertmanagerClient>,
    journal: Result<&Journal, &str>,
) -> Vec<Report> {
    let mut reports = Vec::new();
    for labels in alerts {
        let target = match target_of(&labels, config.default_environment.as_ref()) {
            Ok(target) => target,
            Err(reason) => {
                reports.push(Report {
                    labels,
                    decision: "unroutable".into(),
                    plan: infeasible(reason),
                });
                continue;
            }
        };
        let mut routed = labels.clone();
        routed.insert("environment".into(), target.environment.to_string());
        let decision = config.policy.decide(&routed);
        let rule = decision
            .rule
            .as_ref()
            .map_or("no rule".to_owned(), |r| format!("rule {:?}", r.name));
        let plan = match &decision.action {
            Action::Rotate => {
                let up = upstreams.and_then(|all| {
                    all.get(target.environment.as_str())
                        .or_else(|| all.get("*"))
                });
                match up {
                    None => infeasible("no [signon] is configured".into()),
                    Some(up) => plan_waiting(up, &target, config, journal).await,
                }
            }
            Action::Silence { duration } => {
                let matchers = [
                    Matcher::equal(
                        "alertname",
                        labels
                            .get("alertname")
                            .map_or("SignonApiUserTokenExpirySoon", String::as_str),
                    ),
                    Matcher::equal("environment", target.environment.as_str()),
                    Matcher::equal("api_user", target.api_user.as_str()),
                    Matcher::equal("application", target.application.as_str()),
                ];
                match alertmanager {
                    None => infeasible("no [alertmanager] is configured".into()),
                    Some(am) => match am.find_silence(&matchers).await {
                        Ok(Some(s)) => steps(vec![format!(
                            "extend silence {} by {}",
                            s.id,
                            humantime::format_duration(*duration)
                        )]),
                        Ok(None) => steps(vec![format!(
                            "create a silence for {}",
                            humantime::format_duration(*duration)
                        )]),
                        Err(e) => infeasible(e.to_string()),
                    },
                }
            }
            Action::Manual {
                approvers,
                ask: Some(_),
                ..
            } => steps(vec![
                format!(
                    "ask {} in Slack: rotate and hand over, revoke as no longer used, or let it expire",
                    approvers.join(", ")
                ),
                "nothing is minted or revoked before one of them chooses".into(),
            ]),
            Action::Manual {
                approval: true,
                approvers,
                ..
            } => steps(vec![format!(
                "ask {} to approve in Slack, then rotate",
                approvers.join(", ")
            )]),
            Action::Manual { owner, .. } => steps(vec![format!("ask {owner} to act (manual)")]),
            Action::Ignore { .. } => steps(vec!["nothing: it rotates by itself".into()]),
        };
        reports.push(Report {
            labels,
            decision: format!("{} ({rule})", decision.action.kind()),
            plan,
        });
    }
    reports
}

fn steps(steps: Vec<String>) -> Plan {
    Plan {
        steps,
        findings: Vec::new(),
        feasible: true,
    }
}

fn infeasible(why: String) -> Plan {
    Plan {
        steps: Vec::new(),
        findings: vec![why],
        feasible: false,
    }
}

pub fn render(reports: &[Report]) -> String {
    let mut out = String::new();
    for report in reports {
        let label = |k: &str| report.labels.get(k).map_or("-", String::as_str);
        let _ = writeln!(
            out,
            "{} / {} / {}: {}{}",
            label("environment"),
            label("api_user"),
            label("application"),
            report.decision,
            if report.plan.feasible {
                ""
            } else {
                " — WOULD FAIL"
            }
        );
        for (i, step) in report.plan.steps.iter().enumerate() {
            let _ = writeln!(out, "    {}. {step}", i + 1);
        }
        for finding in &report.plan.findings {
            let _ = writeln!(out, "    found: {finding}");
        }
    }
    if reports.is_empty() {
        out.push_str("no alerts: nothing to plan\n");
    }
    out
}

pub fn json(reports: &[Report]) -> serde_json::Value {
    reports
        .iter()
        .map(|r| json!({"labels": r.labels, "decision": r.decision, "plan": r.plan}))
        .collect()
}
