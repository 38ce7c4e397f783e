//! Slack's side of a button click: the `block_actions` form body and its signature.

use secrecy::SecretString;
use serde_json::json;

use crate::adapters::slack::signature;

/// Where a payload built without a simulator says to answer: Slack's own hooks host, which no
/// test may reach (and the service must not call unless Slack is its configured origin).
pub const ELSEWHERE: &str = "https://hooks.slack.com/actions/T0SIMULATE/1/simulated";

/// The form body Slack sends when `user_id` presses the button `action_id` whose value is
/// `rotation_id` (a `block_actions` payload, trimmed to what matters), answerable at
/// [`ELSEWHERE`]. [`super::SlackSim::press`] builds one the simulator answers.
pub fn interaction(rotation_id: &str, action_id: &str, user_id: &str, user_name: &str) -> String {
    let button = Button {
        rotation_id,
        action_id,
        user_id,
        user_name,
    };
    body(&button, ELSEWHERE, "C0SIMULATE", "1700000000.000100")
}

/// The same press, answerable at `response_url` (a test's choice, anywhere).
pub fn interaction_answering_at(
    rotation_id: &str,
    action_id: &str,
    user_id: &str,
    user_name: &str,
    response_url: &str,
) -> String {
    let button = Button {
        rotation_id,
        action_id,
        user_id,
        user_name,
    };
    body(&button, response_url, "C0ROTATIONS", "1700000000.000100")
}

/// Who pressed which button.
pub(super) struct Button<'a> {
    pub rotation_id: &'a str,
    pub action_id: &'a str,
    pub user_id: &'a str,
    pub user_name: &'a str,
}

/// The form body of `button`'s press on the message `message_ts` in `channel`.
pub(super) fn body(button: &Button, response_url: &str, channel: &str, message_ts: &str) -> String {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": button.user_id, "username": button.user_name, "name": button.user_name, "team_id": "T0SIMULATE"},
        "api_app_id": "A0SIMULATE",
        "team": {"id": "T0SIMULATE", "domain": "simulated"},
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
        "channel": {"id": channel},
        "trigger_id": "1.2.3",
        "response_url": response_url,
        "actions": [{
            "type": "button",
            "action_id": button.action_id,
            "block_id": "decision",
            "value": button.rotation_id,
            "action_ts": "1700000001.000200",
        }],
    });
    form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
}

/// `X-Slack-Request-Timestamp` and `X-Slack-Signature` for `body` sent at `unix_seconds`.
pub fn signed_headers(secret: &str, body: &str, unix_seconds: i64) -> [(&'static str, String); 2] {
    let timestamp = unix_seconds.to_string();
    let signature = signature::sign(&SecretString::from(secret), &timestamp, body.as_bytes());
    [
        ("x-slack-request-timestamp", timestamp),
        ("x-slack-signature", signature),
    ]
}
