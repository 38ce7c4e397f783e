//! Slack, two ways: an incoming webhook (one URL, one message per outcome) or the Web API with a
//! bot token (threads, live edits, Approve/Reject buttons). Requests *from* Slack are verified
//! with [`signature`].

mod api;
pub mod signature;
mod webhook;

pub use api::{Posted, SlackApi, SlackError};
pub use webhook::SlackWebhook;
