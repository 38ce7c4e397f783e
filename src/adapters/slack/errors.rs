//! What each Slack error code means, per Web API method, from Slack's own lists: the codes
//! github.com/slackapi/slack-api-specs `web-api/slack_web_openapi_v2.json` lists for the method
//! (`responses.default` … `error.enum`), the codes its page on docs.slack.dev lists, and the
//! common errors every method can return. A copy of those lists is checked in at
//! `fixtures/slack/web_api_errors.json` (with the commit of each source); a test fails when a
//! table below misses a listed code or classes one its method does not list.
//!
//! A code a method does not list is not guessed at: it is [`Class`]-less, held and retried a
//! bounded number of times by the notifier.

/// What a code means for what happens next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    /// Wait as `Retry-After` says, then try again.
    RateLimited,
    /// The workspace refuses this app or its token (revoked token, missing scope, an admin's
    /// block, a migration, a method Slack retired): every call fails alike until a person acts.
    Workspace,
    /// This channel refuses (archived, frozen, read-only, the bot not in it, no such channel).
    Channel,
    /// The message or thread the call was about is gone or closed to us; a new one is not.
    Gone,
    /// Slack's own trouble: the same call may well work later.
    Transient,
    /// This request is refused as written (its blocks, its size, its arguments): the same
    /// request will be refused again.
    Message,
    /// No such recipient for a direct message.
    Recipient,
    /// No such user group, or the workspace's plan has none.
    Group,
}

/// The table for `method`, or `None` for a method this code does not call.
pub(super) fn table(method: &str) -> Option<&'static [(&'static str, Class)]> {
    Some(match method {
        "chat.postMessage" => CHAT_POSTMESSAGE,
        "chat.update" => CHAT_UPDATE,
        "conversations.join" => CONVERSATIONS_JOIN,
        "conversations.list" => CONVERSATIONS_LIST,
        "conversations.open" => CONVERSATIONS_OPEN,
        "usergroups.users.list" => USERGROUPS_USERS_LIST,
        _ => return None,
    })
}

/// The class of `code` as `method` documents it (its own list first, then the common one).
pub(super) fn class(method: &str, code: &str) -> Option<Class> {
    let find = |list: &[(&str, Class)]| list.iter().find(|(c, _)| *c == code).map(|(_, k)| *k);
    table(method).and_then(find).or_else(|| find(COMMON))
}

/// Every method: the common errors (`common` in the fixture).
pub(super) const COMMON: &[(&str, Class)] = &[
    ("access_denied", Class::Workspace),
    ("accesslimited", Class::Workspace),
    ("account_inactive", Class::Workspace),
    ("deprecated_endpoint", Class::Workspace),
    ("ekm_access_denied", Class::Workspace),
    ("enterprise_is_restricted", Class::Workspace),
    ("fatal_error", Class::Transient),
    ("internal_error", Class::Transient),
    ("invalid_arg_name", Class::Message),
    ("invalid_arguments", Class::Message),
    ("invalid_array_arg", Class::Message),
    ("invalid_charset", Class::Message),
    ("invalid_form_data", Class::Message),
    ("invalid_post_type", Class::Message),
    ("is_bot", Class::Workspace),
    ("method_deprecated", Class::Workspace),
    ("missing_post_type", Class::Message),
    ("missing_scope", Class::Workspace),
    ("no_permission", Class::Workspace),
    ("not_allowed_token_type", Class::Workspace),
    ("not_authed", Class::Workspace),
    ("org_login_required", Class::Workspace),
    ("ratelimited", Class::RateLimited),
    ("request_timeout", Class::Transient),
    ("service_unavailable", Class::Transient),
    ("team_added_to_org", Class::Workspace),
    ("token_expired", Class::Workspace),
    ("token_revoked", Class::Workspace),
    ("two_factor_setup_required", Class::Workspace),
    ("unknown_method", Class::Workspace),
];

/// `chat.postMessage`: the specification and the method page.
pub(super) const CHAT_POSTMESSAGE: &[(&str, Class)] = &[
    ("account_inactive", Class::Workspace),
    ("app_access_restricted", Class::Workspace),
    ("as_user_not_supported", Class::Message),
    ("attachment_payload_limit_exceeded", Class::Message),
    ("cannot_reply_to_message", Class::Gone),
    ("channel_not_found", Class::Channel),
    ("draft_already_deleted", Class::Message),
    ("draft_already_sent", Class::Message),
    ("draft_has_conflict", Class::Message),
    ("draft_not_found", Class::Message),
    ("duplicate_channel_not_found", Class::Message),
    ("duplicate_message_not_found", Class::Message),
    ("ekm_access_denied", Class::Workspace),
    ("invalid_arg_name", Class::Message),
    ("invalid_array_arg", Class::Message),
    ("invalid_auth", Class::Workspace),
    ("invalid_blocks", Class::Message),
    ("invalid_blocks_format", Class::Message),
    ("invalid_charset", Class::Message),
    ("invalid_form_data", Class::Message),
    ("invalid_metadata_format", Class::Message),
    ("invalid_metadata_schema", Class::Message),
    ("invalid_post_type", Class::Message),
    ("is_archived", Class::Channel),
    ("markdown_text_conflict", Class::Message),
    ("message_limit_exceeded", Class::Workspace),
    ("messages_tab_disabled", Class::Channel),
    ("metadata_must_be_sent_from_app", Class::Message),
    ("metadata_too_large", Class::Message),
    ("missing_file_data", Class::Message),
    ("missing_post_type", Class::Message),
    ("msg_blocks_too_long", Class::Message),
    ("msg_too_long", Class::Message),
    ("no_text", Class::Message),
    ("not_authed", Class::Workspace),
    ("not_in_channel", Class::Channel),
    ("rate_limited", Class::RateLimited),
    ("restricted_action", Class::Channel),
    ("restricted_action_non_threadable_channel", Class::Channel),
    ("restricted_action_read_only_channel", Class::Channel),
    ("restricted_action_thread_locked", Class::Gone),
    ("restricted_action_thread_only_channel", Class::Channel),
    ("send_on_behalf_not_allowed", Class::Message),
    ("slack_connect_canvas_sharing_blocked", Class::Message),
    ("slack_connect_file_link_sharing_blocked", Class::Message),
    ("slack_connect_lists_sharing_blocked", Class::Message),
    ("team_not_found", Class::Channel),
    ("too_many_attachments", Class::Message),
    ("too_many_contact_cards", Class::Message),
];

/// `chat.update`: the specification and the method page.
pub(super) const CHAT_UPDATE: &[(&str, Class)] = &[
    ("account_inactive", Class::Workspace),
    ("as_user_not_supported", Class::Message),
    ("block_mismatch", Class::Message),
    ("blocked_file_type", Class::Message),
    ("cant_broadcast_message", Class::Message),
    ("cant_update_message", Class::Gone),
    ("channel_not_found", Class::Channel),
    ("edit_window_closed", Class::Gone),
    ("external_channel_migrating", Class::Transient),
    ("fatal_error", Class::Transient),
    ("file_deleted", Class::Message),
    ("file_is_deleted", Class::Message),
    ("file_not_found", Class::Message),
    ("file_share_limit_reached", Class::Message),
    ("invalid_arg_name", Class::Message),
    ("invalid_array_arg", Class::Message),
    ("invalid_attachments", Class::Message),
    ("invalid_auth", Class::Workspace),
    ("invalid_blocks", Class::Message),
    ("invalid_blocks_format", Class::Message),
    ("invalid_charset", Class::Message),
    ("invalid_form_data", Class::Message),
    ("invalid_json", Class::Message),
    ("invalid_metadata_format", Class::Message),
    ("invalid_metadata_schema", Class::Message),
    ("invalid_post_type", Class::Message),
    ("is_inactive", Class::Channel),
    ("json_not_object", Class::Message),
    ("markdown_text_conflict", Class::Message),
    ("max_file_sharing_exceeded", Class::Message),
    ("message_limit_exceeded", Class::Workspace),
    ("message_not_found", Class::Gone),
    ("metadata_must_be_sent_from_app", Class::Message),
    ("metadata_too_large", Class::Message),
    ("missing_post_type", Class::Message),
    ("msg_too_long", Class::Message),
    ("no_dual_broadcast_content_update", Class::Message),
    ("no_permission", Class::Workspace),
    ("no_text", Class::Message),
    ("not_authed", Class::Workspace),
    ("posting_to_channel_denied", Class::Channel),
    ("rate_limited", Class::RateLimited),
    ("request_timeout", Class::Transient),
    ("slack_connect_blocked_file_type", Class::Message),
    ("slack_connect_canvas_sharing_blocked", Class::Message),
    ("slack_connect_clip_sharing_blocked", Class::Message),
    ("slack_connect_file_link_sharing_blocked", Class::Message),
    ("slack_connect_file_upload_sharing_blocked", Class::Message),
    ("streaming_state_conflict", Class::Message),
    ("team_not_found", Class::Channel),
    ("token_revoked", Class::Workspace),
    ("too_many_attachments", Class::Message),
    ("unable_to_share_files", Class::Message),
    ("update_failed", Class::Transient),
    ("upgrade_required", Class::Workspace),
];

/// `conversations.join`: the specification and the method page.
pub(super) const CONVERSATIONS_JOIN: &[(&str, Class)] = &[
    ("account_inactive", Class::Workspace),
    ("channel_is_limited_access", Class::Channel),
    ("channel_not_found", Class::Channel),
    ("invalid_arg_name", Class::Message),
    ("invalid_array_arg", Class::Message),
    ("invalid_auth", Class::Workspace),
    ("invalid_charset", Class::Message),
    ("invalid_form_data", Class::Message),
    ("invalid_json", Class::Message),
    ("invalid_post_type", Class::Message),
    ("is_archived", Class::Channel),
    ("json_not_object", Class::Message),
    ("method_not_supported_for_channel_type", Class::Channel),
    ("missing_charset", Class::Message),
    ("missing_post_type", Class::Message),
    ("missing_scope", Class::Workspace),
    ("not_authed", Class::Workspace),
    ("request_timeout", Class::Transient),
    ("superfluous_charset", Class::Message),
    ("team_added_to_org", Class::Workspace),
    ("too_many_members", Class::Channel),
    ("upgrade_required", Class::Workspace),
    ("user_is_bot", Class::Channel),
    ("user_is_restricted", Class::Channel),
    ("user_is_ultra_restricted", Class::Channel),
];

/// `conversations.list`: the specification and the method page.
pub(super) const CONVERSATIONS_LIST: &[(&str, Class)] = &[
    ("account_inactive", Class::Workspace),
    ("invalid_arg_name", Class::Message),
    ("invalid_array_arg", Class::Message),
    ("invalid_auth", Class::Workspace),
    ("invalid_charset", Class::Message),
    ("invalid_cursor", Class::Message),
    ("invalid_form_data", Class::Message),
    ("invalid_json", Class::Message),
    ("invalid_limit", Class::Message),
    ("invalid_post_type", Class::Message),
    ("invalid_types", Class::Message),
    ("json_not_object", Class::Message),
    ("method_not_supported_for_channel_type", Class::Channel),
    ("missing_argument", Class::Message),
    ("missing_post_type", Class::Message),
    ("missing_scope", Class::Workspace),
    ("not_authed", Class::Workspace),
    ("request_timeout", Class::Transient),
    ("upgrade_required", Class::Workspace),
];

/// `conversations.open`: the specification and the method page.
pub(super) const CONVERSATIONS_OPEN: &[(&str, Class)] = &[
    ("account_inactive", Class::Workspace),
    ("channel_not_found", Class::Channel),
    ("invalid_arg_name", Class::Message),
    ("invalid_array_arg", Class::Message),
    ("invalid_auth", Class::Workspace),
    ("invalid_charset", Class::Message),
    ("invalid_form_data", Class::Message),
    ("invalid_json", Class::Message),
    ("invalid_post_type", Class::Message),
    ("invalid_user_combination", Class::Recipient),
    ("json_not_object", Class::Message),
    ("method_not_supported_for_channel_type", Class::Channel),
    ("missing_post_type", Class::Message),
    ("missing_scope", Class::Workspace),
    ("not_authed", Class::Workspace),
    ("not_enough_users", Class::Recipient),
    ("request_timeout", Class::Transient),
    ("team_added_to_org", Class::Workspace),
    ("too_many_users", Class::Recipient),
    ("upgrade_required", Class::Workspace),
    ("user_disabled", Class::Recipient),
    ("user_not_found", Class::Recipient),
    ("user_not_visible", Class::Recipient),
    ("users_list_not_supplied", Class::Recipient),
];

/// `usergroups.users.list`: the specification and the method page.
pub(super) const USERGROUPS_USERS_LIST: &[(&str, Class)] = &[
    ("account_inactive", Class::Workspace),
    ("fatal_error", Class::Transient),
    ("invalid_arg_name", Class::Message),
    ("invalid_array_arg", Class::Message),
    ("invalid_auth", Class::Workspace),
    ("invalid_charset", Class::Message),
    ("invalid_cursor", Class::Message),
    ("invalid_form_data", Class::Message),
    ("invalid_json", Class::Message),
    ("invalid_post_type", Class::Message),
    ("json_not_object", Class::Message),
    ("missing_charset", Class::Message),
    ("missing_post_type", Class::Message),
    ("no_permission", Class::Workspace),
    ("no_such_subteam", Class::Group),
    ("not_authed", Class::Workspace),
    ("org_login_required", Class::Workspace),
    ("plan_upgrade_required", Class::Group),
    ("request_timeout", Class::Transient),
    ("superfluous_charset", Class::Message),
    ("team_added_to_org", Class::Workspace),
    ("token_revoked", Class::Workspace),
    ("upgrade_require", Class::Workspace),
    ("user_is_bot", Class::Channel),
    ("user_is_restricted", Class::Channel),
];
