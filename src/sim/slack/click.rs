//! Slack's side of a button click: the `block_actions` form body and its signature.

use secrecy::SecretString;
use serde_json::json;

use crate::adapters::slack::signature;

/// The form body Slack sends when `user_id` presses the button `action_id` whose value is
/// `rotation_id` (a `block_actions` payload, trimmed to what matters).
pub fn interaction(rotation_id: &str, action_id: &str, user_id: &str, user_name: &str) -> String {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": "T0SIMULATE"},
        "api_app_id": "A0SIMULATE",
        "team": {"id": "T0SIMULATE", "domain": "simulated"},
        "container": {"type": "message", "message_ts": "1700000000.000100"},
        "trigger_id": "1.2.3",
        "response_url": "https://hooks.slack.com/actions/T0SIMULATE/1/simulated",
        "actions": [{
            "type": "button",
            "action_id": action_id,
            "block_id": "decision",
            "value": rotation_id,
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
