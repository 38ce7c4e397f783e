//! Slack, two ways: an incoming webhook (one URL, one message per outcome) or the Web API with a
//! bot token (threads, live edits, Approve/Reject buttons). Requests *from* Slack are verified
//! with [`signature`].

mod api;
mod channels;
#[cfg(test)]
mod classify_tests;
mod errors;
pub mod origin;
pub mod signature;
mod webhook;

pub use api::{Posted, SlackApi, SlackError};
pub use channels::is_channel_id;
pub use webhook::SlackWebhook;

/// Marks every `mrkdwn` text object in `message` `verbatim`, as it goes to Slack: Slack then
/// turns no bare URL, `#channel` or `@name` into a link or a mention, so text that came from
/// an alert (already escaped, `engine::mrkdwn`) stays text. Our own links and mentions are
/// written out (`<https://…>`, `<@U…>`), which `verbatim` leaves working. Source:
/// https://docs.slack.dev/reference/block-kit/composition-objects/text-object (`verbatim`:
/// "it won't modify any plain-text content"; only usable when `type` is `mrkdwn`).
pub fn verbatim(message: &mut serde_json::Value) {
    match message {
        serde_json::Value::Object(map) => {
            if map.get("type").and_then(|t| t.as_str()) == Some("mrkdwn")
                && map.contains_key("text")
            {
                map.insert("verbatim".into(), serde_json::Value::Bool(true));
            }
            map.values_mut().for_each(verbatim);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(verbatim),
        _ => {}
    }
}

/// A Slack member id: `U` or `W` then upper-case letters and digits (`U012AB3CD`,
/// `W0123ABCDEF`). Only a member can be sent a direct message; a `@handle`, a channel or a
/// user group cannot.
pub fn is_member_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some('U' | 'W'))
        && id.len() >= 3
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}
