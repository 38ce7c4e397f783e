//! The alerts GOV.UK's Signon actually raises, beside the captured ones: external API users
//! (Signon renews only internal ones), whose owners are asked and choose, and a dead pair (its only
//! token expired, never revoked), found in the inventory and asked about. Each question is
//! answered with a signed click, as Slack sends it; the hand-over's link is collected and
//! confirmed as its holder would.

use anyhow::{Context, ensure};

use super::{Engine, NAMESPACE, Simulated};
use crate::adapters::kubernetes::TOKEN_KEY;
use crate::domain::parameterize::secret_name;
use crate::engine::Phase;
use crate::engine::message::{HAND_OVER, LET_EXPIRE, REVOKE_DEAD, REVOKE_UNUSED};
use crate::sim::kubernetes::{Rollout, SecretUse};
use crate::sim::slack::{SIGNING_SECRET, SlackSim};
use crate::store::rotations::{self, RotationRow};

/// Who chooses: the demo's approvers group's member.
use super::slack::APPROVER;

/// External API users in production, each answered with a different choice, and what each
/// rotation then ends as.
pub(super) const ASKED: [(&str, &str, &str, Phase); 3] = [
    (
        "partner-feed@hmrc.gov.uk",
        "Content Store",
        HAND_OVER,
        Phase::Done,
    ),
    (
        "old-partner@hmrc.gov.uk",
        "Whitehall",
        REVOKE_UNUSED,
        Phase::Retired,
    ),
    (
        "leaving-partner@hmrc.gov.uk",
        "Publishing API",
        LET_EXPIRE,
        Phase::Silenced,
    ),
];
/// An internal pair whose only token expired three days ago and was never revoked.
pub(super) const DEAD: (&str, &str) = ("old-importer@publishing.service.gov.uk", "Email Alert API");

/// The rule that asks (in front of the shipped ones; for these users only, so that the captures'
/// external users still meet the shipped rules) and who owns the dead pair's domain.
pub(super) const ASK_RULE: &str = r##"
[owners]
"publishing.service.gov.uk" = ["S0PLATFORM"]

[[rules]]
name = "demo-external-api-user-is-asked"
action = "manual"
owner = "#govuk-platform-engineering-team"
runbook_url = "https://docs.publishing.service.gov.uk/manual/alerts/signon-api-user-token-expires-soon.html"
ask = true
approvers = ["S0PLATFORM"]
handover_window = "1h"
match = { api_user = ["partner-feed@hmrc.gov.uk", "old-partner@hmrc.gov.uk", "leaving-partner@hmrc.gov.uk"] }
"##;

/// What the demo's choices make of an alert, by its target; `None`: the rule decides alone.
pub(super) fn chosen_end(api_user: &str) -> Option<Phase> {
    if api_user == DEAD.0 {
        return Some(Phase::Retired);
    }
    ASKED
        .iter()
        .find(|(user, ..)| *user == api_user)
        .map(|(.., end)| *end)
}

/// Production's Signon as it looks: the external users' live tokens in their Secrets, and the
/// dead pair's expired one.
pub(super) fn seed(world: &Simulated) {
    for (user, app, ..) in ASKED {
        let value = world
            .signon
            .add_token(user, app, std::time::Duration::from_secs(10 * 86400));
        let name = secret_name(&world.signon.user_name(user), app);
        world.kubernetes.put(NAMESPACE, &name, TOKEN_KEY, &value);
        world.kubernetes.add_deployment(
            NAMESPACE,
            name.trim_start_matches("signon-token-"),
            &name,
            SecretUse::Env,
            true,
            Rollout::Finishes,
        );
    }
    let expired = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(72);
    world.signon.add_token_expiring_at(DEAD.0, DEAD.1, expired);
}

/// The alerts for them, as Prometheus labels Signon's metric (parameterized application).
pub(super) fn alerts() -> Vec<u8> {
    let mut targets: Vec<(&str, &str)> = ASKED.iter().map(|(u, a, ..)| (*u, *a)).collect();
    targets.push(DEAD);
    let alerts: Vec<serde_json::Value> = targets
        .iter()
        .enumerate()
        .map(|(i, (user, app))| {
            serde_json::json!({
                "status": "firing",
                "labels": {"alertname": "SignonApiUserTokenExpirySoon", "environment": "production",
                           "api_user": user,
                           "application": crate::domain::parameterize::parameterize(app)},
                "annotations": {}, "startsAt": "2026-11-24T10:04:07.964Z",
                "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
                "fingerprint": format!("a5ced0000000000{i}"),
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "receiver": "token-rotator", "status": "firing", "alerts": alerts,
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093", "version": "4",
        "groupKey": "{}:{alertname=\"SignonApiUserTokenExpirySoon\"}", "truncatedAlerts": 0,
    }))
    .expect("JSON")
}

async fn click(slack: &SlackSim, url: &str, rotation_id: &str, action: &str) -> anyhow::Result<()> {
    let body = slack.press(rotation_id, action, APPROVER.0, APPROVER.1);
    let mut request = reqwest::Client::new().post(url).body(body.clone()).header(
        reqwest::header::CONTENT_TYPE,
        "application/x-www-form-urlencoded",
    );
    for (header, value) in
        crate::sim::slack::signed_headers(SIGNING_SECRET, &body, jiff::Timestamp::now().as_second())
    {
        request = request.header(header, value);
    }
    let status = request.send().await?.status();
    ensure!(status.is_success(), "Slack click {action}: HTTP {status}");
    Ok(())
}

/// Answers each question about these targets with the demo's choice, as each is asked (the
/// dead pair's only once its rotation has listed the pair and found no live token).
pub(super) async fn choose(engine: &Engine, slack: &SlackSim, url: &str) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut answered = std::collections::BTreeSet::new();
    while answered.len() < ASKED.len() + 1 {
        ensure!(
            std::time::Instant::now() < deadline,
            "asked only about {answered:?} after 30 s"
        );
        engine.run_until_idle().await?;
        let rows = rotations::all_rotations(engine.journal().pool()).await?;
        for row in rows
            .iter()
            .filter(|r| r.phase == Phase::AwaitingApproval.as_str())
        {
            let action = if row.api_user == DEAD.0 {
                REVOKE_DEAD
            } else if let Some((.., action, _)) = ASKED.iter().find(|(u, ..)| *u == row.api_user) {
                action
            } else {
                continue;
            };
            if !answered.insert(row.id.clone()) {
                continue;
            }
            click(slack, url, &row.id, action).await?;
            let button = match action {
                HAND_OVER => "Rotate and hand over",
                REVOKE_UNUSED => "Revoke: no longer used",
                LET_EXPIRE => "Let it expire",
                _ => "Revoke the expired token",
            };
            println!(
                "  {} pressed \"{button}\" on the question about {} / {}",
                APPROVER.1, row.api_user, row.application
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(())
}

/// The hand-over as its holder lives it: the link from their direct message, revealed once,
/// then confirmed once the consumer uses the new token. Returns the revealed token's length.
pub(super) async fn collect_and_confirm(
    engine: &Engine,
    slack: &SlackSim,
    base: &str,
) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let path = loop {
        engine.run_until_idle().await?;
        let texts: String = slack
            .direct_messages(APPROVER.0)
            .iter()
            .map(|m| m.all_text())
            .collect();
        if let Some(start) = texts.find("/v1/handover/") {
            // The message writes links as Slack does, `<url>` or `<url|text>`.
            break texts[start..]
                .split(|c: char| c.is_whitespace() || c == '>' || c == '|')
                .next()
                .unwrap_or_default()
                .trim_end_matches(['.', ','])
                .to_owned();
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "the hand-over link never reached {}",
            APPROVER.1
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let client = reqwest::Client::new();
    let revealed = client.post(format!("{base}{path}")).send().await?;
    ensure!(
        revealed.status().is_success(),
        "revealing: HTTP {}",
        revealed.status()
    );
    let token = revealed.text().await?;
    println!(
        "  {} opened the one-time link and revealed the token ({} characters, shown once)",
        APPROVER.1,
        token.trim().len()
    );
    let confirmed = client
        .post(format!("{base}{path}/confirm"))
        .send()
        .await
        .context("confirming")?;
    ensure!(
        confirmed.status().is_success(),
        "confirming: HTTP {}",
        confirmed.status()
    );
    println!("  {} confirmed the consumer uses it", APPROVER.1);
    Ok(())
}

/// Each asked target ended as chosen, and Signon agrees: the hand-over's new token live and the
/// old one revoked, the unused pair's tokens revoked, the expired one revoked, nothing else.
pub(super) fn check(world: &Simulated, rows: &[RotationRow]) -> anyhow::Result<()> {
    for (user, app, _, end) in ASKED {
        let row = rows
            .iter()
            .find(|r| r.api_user == user)
            .with_context(|| format!("no rotation for {user}"))?;
        ensure!(
            row.phase == end.as_str(),
            "{user} / {app}: expected {end}, got {}",
            row.phase
        );
    }
    let tokens = world.signon.tokens();
    let of = |user: &str| {
        tokens
            .iter()
            .filter(|t| t.api_user == user)
            .collect::<Vec<_>>()
    };
    let handed = of(ASKED[0].0);
    ensure!(
        handed.len() == 2 && handed.iter().filter(|t| !t.revoked).count() == 1,
        "the hand-over left {handed:?}"
    );
    ensure!(
        of(ASKED[1].0).iter().all(|t| t.revoked),
        "the unused pair still has a live token"
    );
    ensure!(
        of(ASKED[2].0).iter().all(|t| !t.revoked),
        "letting it expire revoked something"
    );
    ensure!(
        of(DEAD.0).iter().all(|t| t.revoked),
        "the dead pair's expired token was not revoked"
    );
    println!(
        "Asked: the hand-over's holder has a new live token (the old one revoked on confirmation), the unused pair is revoked, the expiring one silenced, the dead pair's expired token revoked"
    );
    Ok(())
}
