//! Slack, two ways: an incoming webhook (one URL, one message per outcome) or the Web API with a
//! bot token (threads, live edits, Approve/Reject buttons). Requests *from* Slack are verified
//! with [`signature`].

mod api;
pub mod signature;
mod webhook;

pub use api::{Posted, SlackApi, SlackError};
pub use webhook::SlackWebhook;

/// A Slack member id: `U` or `W` then upper-case letters and digits (`U012AB3CD`,
/// `W0123ABCDEF`). Only a member can be sent a direct message; a `@handle`, a channel or a
/// user group cannot.
pub fn is_member_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some('U' | 'W'))
        && id.len() >= 3
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}
