//! Who is told and who decides: Slack channels by rule and environment, approvals, handovers
//! and the owners an ask rule asks.

use super::tests::MINIMAL;
use super::*;
use crate::policy::Action;

#[test]
fn slack_channels_route_by_rule_then_environment_then_default() {
    let text = r##"
[slack]
channel = "#rotations"
approval_timeout = "4h"
[environments.production]
slack_channel = "C0PROD"
mode = "shadow"

[[rules]]
name = "asks"
action = "manual"
owner = "#team"
runbook_url = "https://runbook"
approval = true
approvers = ["U0ALICE", "S0TEAM"]
slack_channel = "C0APPROVALS"
match = { application = "Publishing API" }

[[rules]]
name = "all"
action = "rotate"
"##;
    let config = Config::from_toml(text).unwrap();
    let routing = &config.engine.slack;
    assert_eq!(
        routing.channel(Some("C0APPROVALS"), "production"),
        "C0APPROVALS"
    );
    assert_eq!(routing.channel(None, "production"), "C0PROD");
    assert_eq!(routing.channel(None, "integration"), "#rotations");
    assert_eq!(
        config.engine.approval_timeout,
        Duration::from_secs(4 * 3600)
    );
    assert_eq!(config.slack.api_url, "https://slack.com/api");
    let rule = &config.policy.rules()[0];
    assert_eq!(rule.slack_channel.as_deref(), Some("C0APPROVALS"));
    assert!(matches!(
        &rule.action,
        Action::Manual { approval: true, approvers, .. } if approvers == &["U0ALICE", "S0TEAM"]
    ));
}

#[test]
fn approval_mistakes_are_reported_with_their_place() {
    let rule = |extra: &str| {
        format!(
            "[[rules]]\nname = \"r\"\naction = \"manual\"\nowner = \"o\"\nrunbook_url = \"u\"\n{extra}\n"
        )
    };
    let problems = |text: &str| {
        Config::from_toml(text)
            .unwrap_err()
            .problems
            .into_iter()
            .map(|p| p.message)
            .collect::<Vec<_>>()
    };
    assert!(
        problems(&rule("approval = true"))[0]
            .contains("`approval = true` and `ask = true` need `approvers`")
    );
    assert!(problems(&rule("approvers = [\"U0A\"]"))[0].contains("needs `approval = true`"));
    assert!(
        problems(&rule("approval = true\napprovers = [\"alice\"]"))[0]
            .contains("are not Slack user ids")
    );
    let rotate = "[[rules]]\nname = \"r\"\naction = \"rotate\"\napproval = true\n";
    assert!(problems(rotate)[0].contains("`approval` does not apply to action \"rotate\""));
    let spaced =
        "[slack]\nchannel = \"my channel\"\n[[rules]]\nname = \"r\"\naction = \"rotate\"\n";
    assert!(problems(spaced)[0].contains("is not a Slack channel"));
}

#[test]
fn handover_links_need_an_https_public_url() {
    let schedule = "[synoptic]\n[[schedules]]\nname = \"partner\"\nissuer = \"synoptic\"\nevery = \"30d\"\n\
                    handover = { owner = \"U0PARTNER1\" }\n";
    let plain = format!("public_url = \"http://rotator.example\"\n{schedule}{MINIMAL}");
    let problems = Config::from_toml(&plain).unwrap_err().problems;
    assert!(
        problems[0]
            .message
            .contains("must be https:// (handover links carry a credential)"),
        "{problems:?}"
    );
    for ok in [
        "https://rotator.example",
        "http://127.0.0.1:8080",
        "http://localhost:8080",
    ] {
        let text = format!("public_url = \"{ok}\"\n{schedule}{MINIMAL}");
        assert!(Config::from_toml(&text).is_ok(), "{ok}");
    }
}

#[test]
fn a_handover_goes_to_one_slack_member() {
    // A handle, a channel or a group cannot receive a direct message: the link would have to
    // be posted where others read it.
    for owner in ["@partner-team", "#partners", "S0GROUP1", "u0lower", "U"] {
        let text = format!(
            "public_url = \"https://rotator.example\"\n[synoptic]\n[[schedules]]\nname = \"partner\"\n\
             issuer = \"synoptic\"\nevery = \"30d\"\nhandover = {{ owner = \"{owner}\" }}\n{MINIMAL}"
        );
        let problems = Config::from_toml(&text).unwrap_err().problems;
        assert!(
            problems[0]
                .message
                .contains("must be a Slack member id (U… or W…"),
            "{owner}: {problems:?}"
        );
    }
}

#[test]
fn an_ask_rule_asks_the_owners_named_for_the_api_user_or_its_domain() {
    let text = r##"
[environments.production]

[owners]
"partner.example" = ["S0PARTNER"]
"bot@partner.example" = ["U0BOB"]

[[rules]]
name = "external-is-asked"
action = "manual"
owner = "#team"
runbook_url = "https://runbook"
ask = true
approvers = ["U0ALICE"]
old_token = "expire"
api_user_domain = "external"

[[rules]]
name = "all"
action = "rotate"
"##;
    let config = Config::from_toml(text).unwrap();
    let asked = |api_user: &str| {
        let labels = crate::domain::Labels::from([
            (
                "alertname".to_owned(),
                "SignonApiUserTokenExpirySoon".to_owned(),
            ),
            ("environment".to_owned(), "production".to_owned()),
            ("api_user".to_owned(), api_user.to_owned()),
            ("application".to_owned(), "Content Store".to_owned()),
        ]);
        match config.policy.decide(&labels).action {
            Action::Manual {
                approvers,
                ask: Some(ask),
                ..
            } => {
                assert_eq!(ask.old_token, crate::policy::OldToken::Expire);
                assert_eq!(ask.handover_window, Duration::from_secs(2 * 86400));
                approvers
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(asked("Bot@Partner.example"), ["U0BOB"], "by email first");
    assert_eq!(
        asked("other@partner.example"),
        ["S0PARTNER"],
        "then by domain"
    );
    assert_eq!(
        asked("someone@elsewhere.example"),
        ["U0ALICE"],
        "else the rule's"
    );
}

#[test]
fn ask_mistakes_are_reported() {
    let problems = |text: &str| {
        Config::from_toml(text)
            .unwrap_err()
            .problems
            .into_iter()
            .map(|p| p.message)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let rule = |extra: &str| {
        format!(
            "[[rules]]\nname = \"r\"\naction = \"manual\"\nowner = \"o\"\nrunbook_url = \"u\"\n{extra}\n"
        )
    };
    assert!(problems(&rule("ask = true")).contains("need `approvers`"));
    assert!(
        problems(&rule("ask = true\napproval = true\napprovers = [\"U0A\"]"))
            .contains("choose one")
    );
    assert!(problems(&rule("old_token = \"expire\"")).contains("`old_token` does not apply"));
    assert!(
        problems("[environments.p]\n[owners]\n\"x.example\" = [\"#team\"]\n[[rules]]\nname = \"a\"\naction = \"rotate\"\n")
            .contains("are not Slack user ids")
    );
}
