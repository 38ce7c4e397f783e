//! Who is where: `usergroups.users.list` (a user group's members), and `conversations.join`,
//! `.open` (a direct message with one member) and `.list` (the public channels).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{SlackSim, channels, slack_error};

pub(super) async fn group_members(
    State(sim): State<Arc<SlackSim>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(refused) = sim
        .admit(
            &headers,
            "usergroups.users.list",
            Some(&sim.budgets.group_members),
        )
        .await
    {
        return refused;
    }
    let group = query.get("usergroup").cloned().unwrap_or_default();
    match sim.groups.lock().expect("lock never poisoned").get(&group) {
        Some(users) => Json(json!({"ok": true, "users": users})).into_response(),
        None => slack_error("no_such_subteam"),
    }
}

/// `conversations.join`: the bot joins a public channel (docs.slack.dev/reference/methods/conversations.join).
pub(super) async fn join(
    State(sim): State<Arc<SlackSim>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(refused) = sim.admit(&headers, "conversations.join", None).await {
        return refused;
    }
    // `channel`: "ID of conversation to join" (docs.slack.dev/reference/methods/
    // conversations.join); a name is no conversation's id: `channel_not_found`.
    let Some(channel) = body["channel"].as_str().filter(|c| channels::is_id(c)) else {
        return slack_error("channel_not_found");
    };
    let channel = channel.to_owned();
    // conversations.join lists `is_archived` (slack-api-specs, and the method page).
    if sim.channels.archived(&channel) {
        return slack_error("is_archived");
    }
    sim.outside
        .lock()
        .expect("lock never poisoned")
        .remove(&channel);
    Json(json!({"ok": true, "channel": {"id": channel}})).into_response()
}

/// The bot's 1:1 conversation with a member: one per member, so the same id every time.
pub(super) fn direct_channel(user: &str) -> String {
    format!("D{}", &user[1..])
}

/// `conversations.open` with `users` = one member id opens (or resumes) a 1:1 DM and answers
/// its id. Errors as slackapi/slack-api-specs `web-api/slack_web_openapi_v2.json` lists them for
/// this method: `users_list_not_supplied`, `user_not_found`, `user_disabled`.
pub(super) async fn open_conversation(
    State(sim): State<Arc<SlackSim>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(refused) = sim.admit(&headers, "conversations.open", None).await {
        return refused;
    }
    let Some(user) = body["users"].as_str().filter(|u| !u.is_empty()) else {
        return slack_error("users_list_not_supplied");
    };
    if !crate::adapters::slack::is_member_id(user) {
        return slack_error("user_not_found");
    }
    if sim
        .disabled
        .lock()
        .expect("lock never poisoned")
        .iter()
        .any(|d| d == user)
    {
        return slack_error("user_disabled");
    }
    Json(json!({"ok": true, "channel": {"id": direct_channel(user)}})).into_response()
}

/// `conversations.list` (scope `channels:read`, Tier 2): the public channels a page at a time
/// ([`channels`] holds the rules and their source).
pub(super) async fn list_channels(
    State(sim): State<Arc<SlackSim>>,
    headers: HeaderMap,
    Query(query): Query<std::collections::BTreeMap<String, String>>,
) -> Response {
    if let Err(refused) = sim
        .admit(&headers, "conversations.list", Some(&sim.budgets.list))
        .await
    {
        return refused;
    }
    match sim.channels.page(&query) {
        Ok(page) => Json(page).into_response(),
        Err(code) => slack_error(code),
    }
}
