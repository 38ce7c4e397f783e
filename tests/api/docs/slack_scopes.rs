//! The Slack app manifest (`deploy/slack/manifest.yaml`) grants exactly the bot scopes the
//! Web API methods token-rotator calls need: a method called without its scope would fail in
//! a real workspace with `missing_scope`, and a scope nothing needs is a grant too many.
//!
//! The methods are read from the code (every `.call("method"` in `src/adapters/slack/`), so a
//! new call with no row in `SCOPES` fails here until its scope is looked up and added.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{read, root, walk};

/// The bot-token scope each method needs, for the conversation types token-rotator uses
/// (public channels and 1:1 direct messages). Source: Slack's method reference,
/// `https://docs.slack.dev/reference/methods/<method>` ("Scopes: Bot token"); the methods and
/// their scope families also in slackapi/slack-api-specs `web-api/slack_web_openapi_v2.json`
/// (`paths./<method>.*.security`, which predates granular bot scopes: it spells
/// `chat:write:bot` for `chat:write` and `channels:write` where bots now need `channels:join`).
const SCOPES: &[(&str, &str)] = &[
    ("chat.postMessage", "chat:write"),
    ("chat.update", "chat:write"),
    // An answer only the clicker sees, when the click's `response_url` cannot carry it.
    ("chat.postEphemeral", "chat:write"),
    ("usergroups.users.list", "usergroups:read"),
    // Public channels only (`join_channels`); private ones need an invitation.
    ("conversations.join", "channels:join"),
    // One user: a 1:1 direct message (`im`), not a group DM (`mpim:write`).
    ("conversations.open", "im:write"),
    // Reading a public channel's name or membership.
    ("conversations.info", "channels:read"),
    ("conversations.list", "channels:read"),
];

/// Every Web API method the Slack adapter calls: the string literal after each `.call(`.
fn called_methods() -> BTreeSet<String> {
    let mut files = Vec::new();
    walk(&root().join("src/adapters/slack"), &mut files, &|p| {
        p.extension().is_some_and(|e| e == "rs")
    });
    let mut out = BTreeSet::new();
    for file in files {
        let text = read(&file.to_string_lossy());
        for (at, _) in text.match_indices(".call(") {
            let after = text[at + 6..].trim_start();
            let method = after
                .strip_prefix('"')
                .and_then(|rest| rest.split_once('"'))
                .map(|(method, _)| method)
                .unwrap_or_else(|| {
                    panic!(
                        "{}: a `.call(` whose method is not a string literal: the scope check \
                         cannot see which method it is",
                        file.display()
                    )
                });
            out.insert(method.to_owned());
        }
    }
    out
}

fn manifest() -> Value {
    serde_saphyr::from_str(&read("deploy/slack/manifest.yaml")).expect("the manifest is YAML")
}

fn granted(manifest: &Value) -> BTreeSet<String> {
    manifest["oauth_config"]["scopes"]["bot"]
        .as_array()
        .expect("oauth_config.scopes.bot")
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_slack_manifest_grants_the_scope_of_every_method_called_and_no_other() {
    let called = called_methods();
    for expected in ["chat.postMessage", "chat.update", "usergroups.users.list"] {
        assert!(
            called.contains(expected),
            "{expected} not found in {called:?}"
        );
    }
    let granted = granted(&manifest());
    let mut needed = BTreeSet::new();
    for method in &called {
        let scope = SCOPES
            .iter()
            .find(|(m, _)| m == method)
            .map(|(_, scope)| *scope)
            .unwrap_or_else(|| {
                panic!(
                    "the code calls `{method}`, which has no row in SCOPES: look up its bot scope \
                     on docs.slack.dev/reference/methods/{method}, add the row, and add the scope \
                     to deploy/slack/manifest.yaml"
                )
            });
        assert!(
            granted.contains(scope),
            "the code calls `{method}`, which needs `{scope}`: deploy/slack/manifest.yaml does \
             not grant it (it grants {granted:?})"
        );
        needed.insert(scope.to_owned());
    }
    let unneeded: Vec<_> = granted.difference(&needed).collect();
    assert!(
        unneeded.is_empty(),
        "deploy/slack/manifest.yaml grants {unneeded:?}, which no method the code calls needs"
    );
}

#[test]
fn the_slack_manifest_sends_clicks_to_the_interactions_endpoint_over_https() {
    let manifest = manifest();
    assert_eq!(manifest["display_information"]["name"], "token-rotator");
    assert_eq!(
        manifest["features"]["bot_user"]["display_name"],
        "token-rotator"
    );
    let interactivity = &manifest["settings"]["interactivity"];
    assert_eq!(interactivity["is_enabled"], true);
    let url = interactivity["request_url"].as_str().unwrap();
    assert!(
        url.starts_with("https://") && url.ends_with("/v1/slack/interactions"),
        "{url}"
    );
    // Clicks come over HTTP to the public edge, not through a socket the service would hold.
    assert_eq!(manifest["settings"]["socket_mode_enabled"], false);
}
