//! The demo's Slack: a channel per environment, a rule that asks before rotating, and the
//! clicks on its buttons, signed as Slack signs them.

use anyhow::{Context, ensure};

use super::Engine;
use crate::config::Config;
use crate::engine::Phase;
use crate::engine::message::APPROVE;
use crate::sim::slack::{SIGNING_SECRET, SlackSim};
use crate::store::rotations;

/// The demo's Slack: a channel per environment, and one rule that asks before rotating.
pub(super) const APPROVERS_GROUP: &str = "S0PLATFORM";
pub(super) const APPROVER: (&str, &str) = ("U0ALICE", "alice");
const NOT_AN_APPROVER: (&str, &str) = ("U0MALLORY", "mallory");
/// The demo's default channel, given by name as most configs give it.
pub(super) const DEMO_CHANNEL: &str = "token-rotator";
const DEMO_SLACK: &str = r##"
[slack]
channel = "#token-rotator"

[[rules]]
name = "demo-ha-fast-asks-first"
action = "manual"
owner = "#govuk-platform-engineering-team"
runbook_url = "https://docs.publishing.service.gov.uk/manual/alerts/signon-api-user-token-expires-soon.html"
approval = true
approvers = ["S0PLATFORM"]
match = { api_user = "ha-fast@alphagov.co.uk" }
"##;

/// The shipped rules with the demo's Slack settings and approval rule in front.
/// Alerts about GitLab tokens are rotated (the shipped rules would call `group:…` external).
const GITLAB_RULE: &str = r#"[[rules]]
name = "gitlab-tokens"
action = "rotate"
match = { environment = "tools" }
"#;

pub(super) fn demo_config() -> anyhow::Result<Config> {
    let shipped = crate::config::DEFAULT_CONFIG;
    let first_rule = shipped
        .find("[[rules]]")
        .context("the shipped config has rules")?;
    // The shipped environments stay served (their shadow mode is switched off below), each
    // with a Slack channel of its own.
    let mut head = shipped[..first_rule].to_owned();
    for (table, channel) in [
        ("[environments.integration]\n", "C0INTEGRATION"),
        ("[environments.production]\n", "C0PRODUCTION"),
    ] {
        ensure!(head.contains(table), "the shipped config has {table:?}");
        head = head.replacen(table, &format!("{table}slack_channel = \"{channel}\"\n"), 1);
    }
    // GitLab's tokens: alerts from the `tools` environment name a group's token.
    head.push_str("\n[environments.tools]\nmode = \"active\"\nslack_channel = \"C0TOOLS\"\n");
    let text = format!(
        "{head}{}\n{DEMO_SLACK}\n{GITLAB_RULE}\n{}",
        super::asked::ASK_RULE,
        &shipped[first_rule..]
    );
    Config::from_toml(&text).map_err(|e| anyhow::anyhow!("demo config: {}", e.render(&text)))
}

/// Presses the buttons of every approval request: first someone not allowed (refused), then an
/// approver (through the user group), as signed Slack requests.
pub(super) async fn click_approvals(
    engine: &Engine,
    slack: &SlackSim,
    url: &str,
) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let rows = rotations::all_rotations(engine.journal().pool()).await?;
    // Approve/Reject requests only: an `ask` rule's questions are answered by `asked::choose`.
    for row in rows.iter().filter(|r| {
        r.phase == Phase::AwaitingApproval.as_str()
            && r.action_detail
                .as_deref()
                .is_some_and(|d| d.contains("\"approval\":true"))
    }) {
        for (user, name) in [NOT_AN_APPROVER, APPROVER] {
            // Pressed on the posted message, answerable at a response URL on Slack's host.
            let body = slack.press(&row.id, APPROVE, user, name);
            let mut request = client.post(url).body(body.clone()).header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            );
            for (header, value) in crate::sim::slack::signed_headers(
                SIGNING_SECRET,
                &body,
                jiff::Timestamp::now().as_second(),
            ) {
                request = request.header(header, value);
            }
            let status = request.send().await?.status();
            ensure!(status.is_success(), "Slack click by {name}: HTTP {status}");
            println!(
                "  {name} pressed Approve on the request for {} / {}",
                row.api_user, row.application
            );
        }
    }
    Ok(())
}
