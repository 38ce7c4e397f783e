//! What the demo must end with, predicted from the journaled alerts alone, the check, and the
//! table of outcomes it prints.

use std::collections::BTreeMap;

use anyhow::{bail, ensure};

use super::{Engine, NAMESPACE, Simulated};
use crate::adapters::kubernetes::TOKEN_KEY;
use crate::engine::Phase;
use crate::store::rotations::RotationRow;

/// The end each rotation should reach, from the journaled alerts alone: a rule's decision, and
/// for `rotate`, `cancelled` when the target's alert resolved before the rotation began.
pub(super) async fn expected_ends(engine: &Engine) -> anyhow::Result<Vec<(String, &'static str)>> {
    let alerts = engine.journal().alerts().await?;
    let mut open: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    let mut ends = Vec::new();
    for alert in alerts {
        let key = (
            alert.environment.clone().unwrap_or_default(),
            alert.api_user.clone().unwrap_or_default(),
            alert.application.clone().unwrap_or_default(),
        );
        let firing = alert.status == "firing";
        // A target the demo answers a question about ends as its answer says.
        if let (true, Some(end)) = (
            firing,
            super::asked::chosen_end(alert.api_user.as_deref().unwrap_or_default()),
        ) {
            ends.push((format!("{key:?}"), end.as_str()));
            continue;
        }
        let asks_first = alert
            .action_detail
            .as_deref()
            .is_some_and(|d| d.contains("\"approval\":true"));
        let decided = match alert.action.as_str() {
            // The demo approves every request it is asked.
            "manual" if asks_first => None,
            "manual" => Some(Phase::Manual),
            "ignore" => Some(Phase::Ignored),
            "silence" => Some(Phase::Silenced),
            "unroutable" => Some(Phase::Unroutable),
            _ => None,
        };
        match (decided, firing, open.get(&key)) {
            (Some(phase), true, _) => ends.push((format!("{key:?}"), phase.as_str())),
            (None, true, None) => {
                open.insert(key.clone(), ends.len());
                ends.push((format!("{key:?}"), Phase::Done.as_str()));
            }
            (None, false, Some(&index)) => {
                // The engine takes every alert in before its first step: still planned.
                ends[index].1 = Phase::Cancelled.as_str();
                open.remove(&key);
            }
            _ => {}
        }
    }
    Ok(ends)
}

pub(super) fn check(
    rows: &[RotationRow],
    expected: &[(String, &'static str)],
    worlds: &[Simulated],
) -> anyhow::Result<()> {
    let actual: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                format!("{:?}", (&r.environment, &r.api_user, &r.application)),
                r.phase.as_str(),
            )
        })
        .collect();
    ensure!(
        expected.len() == actual.len(),
        "expected {} rotations, found {}",
        expected.len(),
        actual.len()
    );
    let mut wrong = Vec::new();
    for ((target, want), (_, got)) in expected.iter().zip(&actual) {
        if want != got {
            wrong.push(format!("{target}: expected {want}, got {got}"));
        }
    }
    // GitLab's rotations are checked against GitLab's simulator by the caller.
    for row in rows
        .iter()
        .filter(|r| r.phase == "done" && r.environment != super::GITLAB_ENVIRONMENT)
    {
        let secret = row.secret_name.as_deref().unwrap_or_default();
        let Some(world) = worlds.iter().find(|w| w.environment == row.environment) else {
            wrong.push(format!(
                "{secret}: done in an environment with no simulator"
            ));
            continue;
        };
        let value = world
            .kubernetes
            .value(NAMESPACE, secret, TOKEN_KEY)
            .unwrap_or_default();
        if !world.signon.is_live(&value) {
            wrong.push(format!(
                "{secret}: the Secret's token is not live in Signon"
            ));
        }
    }
    if !wrong.is_empty() {
        bail!(
            "the demo did not end as predicted:\n  {}",
            wrong.join("\n  ")
        );
    }
    println!(
        "every target ended as its rule and alerts predict ({} rotations)",
        rows.len()
    );
    Ok(())
}

pub(super) fn print_outcomes(rows: &[RotationRow]) {
    println!("\nOutcomes:");
    println!(
        "  {:<12} {:<40} {:<22} {:<10} {:<12} {:>8}",
        "environment", "api_user", "application", "decision", "end", "took"
    );
    for row in rows {
        let took = row.finished_at_ms.unwrap_or(row.updated_at_ms) - row.created_at_ms;
        println!(
            "  {:<12} {:<40} {:<22} {:<10} {:<12} {:>6}ms",
            or_dash(&row.environment),
            or_dash(&row.api_user),
            or_dash(&row.application),
            row.action,
            row.phase,
            took
        );
    }
}

fn or_dash(value: &str) -> &str {
    if value.is_empty() { "-" } else { value }
}
