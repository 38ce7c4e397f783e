//! What the rotations journal holds and takes: rows as read, a new rotation, a phase change.

use jiff::Timestamp;

use crate::store::outbox::Notice;
use crate::store::thread_key;

/// One rotation as journaled. Times are Unix milliseconds.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RotationRow {
    pub id: String,
    pub environment: String,
    pub api_user: String,
    pub application: String,
    pub action: String,
    pub rule_name: Option<String>,
    pub action_detail: Option<String>,
    pub phase: String,
    pub trigger: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub next_attempt_at_ms: Option<i64>,
    pub attempts: i64,
    pub deadline_at_ms: Option<i64>,
    pub last_error: Option<String>,
    pub outcome: Option<String>,
    pub api_user_name: Option<String>,
    pub application_uid: Option<String>,
    pub secret_name: Option<String>,
    pub old_token_id: Option<String>,
    pub old_token_expires_at_ms: Option<i64>,
    pub old_token_last8: Option<String>,
    pub old_secret_fingerprint: Option<String>,
    pub old_secret_sealed: Option<Vec<u8>>,
    pub new_token_id: Option<String>,
    pub new_token_expires_at_ms: Option<i64>,
    pub new_token_fingerprint: Option<String>,
    pub new_token_last4: Option<String>,
    pub new_token_sealed: Option<Vec<u8>>,
    pub verified_at_ms: Option<i64>,
    pub grace_until_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub alertname: Option<String>,
    pub silence_id: Option<String>,
    /// `active` or `shadow`, fixed when the rotation was created.
    pub mode: String,
    /// What a shadow rotation would have done (JSON).
    pub plan: Option<String>,
    /// The Slack thread it is told in.
    pub thread_id: Option<i64>,
    /// Slack's id of the Approve/Reject request, once posted.
    pub approval_ts: Option<String>,
    /// Who pressed Approve or Reject (Slack user id and name, or `cli:NAME`).
    pub decided_by: Option<String>,
    /// 1 when the new token is one Signon made by itself (adopted, not minted by us).
    pub adopted: i64,
    /// The consumers' Deployments before the Secret changed (JSON).
    pub rollout_baseline: Option<String>,
    pub distributed_at_ms: Option<i64>,
    /// The tokens listed before the mint (JSON), for an issuer that cannot mint idempotently.
    pub known_tokens: Option<String>,
    /// The key of the sync Job asked for last, written before it is made.
    pub sync_requested: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub rotation_id: String,
    pub at_ms: i64,
    pub from_phase: Option<String>,
    pub to_phase: String,
    pub reason: String,
    pub trigger: String,
}

/// An alert the engine has not taken in yet.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingAlert {
    pub id: i64,
    pub fingerprint: String,
    pub status: String,
    pub environment: Option<String>,
    pub api_user: Option<String>,
    pub application: Option<String>,
    pub labels: String,
    pub action: String,
    pub rule_name: Option<String>,
    pub action_detail: Option<String>,
    pub reason: Option<String>,
    /// Of the delivery that brought it: Alertmanager's receiver name, or reconcile's.
    pub receiver: String,
    /// The deciding rule's own mode, if it sets one.
    pub mode: Option<String>,
    pub delivery_id: i64,
    /// The deciding rule's own Slack channel, if it sets one.
    pub slack_channel: Option<String>,
}

/// A column a transition sets. Names are constants of this crate, never input.
#[derive(Debug, Clone)]
pub enum Field {
    Text(&'static str, Option<String>),
    Int(&'static str, Option<i64>),
    Blob(&'static str, Option<Vec<u8>>),
}

/// A new rotation row with its first audit entry.
#[derive(Debug, Clone)]
pub struct NewRotation {
    pub id: String,
    pub environment: String,
    pub api_user: String,
    pub application: String,
    pub action: String,
    pub rule_name: Option<String>,
    pub action_detail: Option<String>,
    pub phase: &'static str,
    pub trigger: String,
    pub alertname: Option<String>,
    pub mode: &'static str,
    pub next_attempt_at: Option<Timestamp>,
    pub outcome: Option<String>,
    pub reason: String,
    /// The Slack thread it is told in: the one of its delivery and channel.
    pub thread: Option<thread_key::ThreadKey>,
}

impl NewRotation {
    /// The row as it will be journaled, for composing its message before it is written.
    pub fn preview(&self, now: Timestamp) -> RotationRow {
        let now_ms = now.as_millisecond();
        RotationRow {
            id: self.id.clone(),
            environment: self.environment.clone(),
            api_user: self.api_user.clone(),
            application: self.application.clone(),
            action: self.action.clone(),
            rule_name: self.rule_name.clone(),
            action_detail: self.action_detail.clone(),
            phase: self.phase.to_owned(),
            trigger: self.trigger.clone(),
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            next_attempt_at_ms: None,
            attempts: 0,
            deadline_at_ms: None,
            last_error: None,
            outcome: self.outcome.clone(),
            api_user_name: None,
            application_uid: None,
            secret_name: None,
            old_token_id: None,
            old_token_expires_at_ms: None,
            old_token_last8: None,
            old_secret_fingerprint: None,
            old_secret_sealed: None,
            new_token_id: None,
            new_token_expires_at_ms: None,
            new_token_fingerprint: None,
            new_token_last4: None,
            new_token_sealed: None,
            verified_at_ms: None,
            grace_until_ms: None,
            finished_at_ms: None,
            alertname: self.alertname.clone(),
            silence_id: None,
            mode: self.mode.to_owned(),
            plan: None,
            thread_id: None,
            approval_ts: None,
            decided_by: None,
            adopted: 0,
            rollout_baseline: None,
            distributed_at_ms: None,
            known_tokens: None,
            sync_requested: None,
        }
    }

    /// Tells it in the thread of `key`.
    pub fn told_in(mut self, key: thread_key::ThreadKey) -> Self {
        self.thread = Some(key);
        self
    }
}

/// A phase change. Applied only if the rotation is still in `from`.
#[derive(Debug, Clone)]
pub struct Transition {
    pub from: &'static str,
    pub to: &'static str,
    pub reason: String,
    pub trigger: String,
    pub next_attempt_at: Option<Timestamp>,
    pub fields: Vec<Field>,
    /// Slack messages to queue with this change.
    pub notify: Vec<Notice>,
}

pub(crate) const ROTATION_COLUMNS: &str = "id, environment, api_user, application, action, rule_name, \
    action_detail, phase, trigger, created_at_ms, updated_at_ms, next_attempt_at_ms, attempts, \
    deadline_at_ms, last_error, outcome, api_user_name, application_uid, secret_name, old_token_id, \
    old_token_expires_at_ms, old_token_last8, old_secret_fingerprint, old_secret_sealed, \
    new_token_id, new_token_expires_at_ms, new_token_fingerprint, new_token_last4, \
    new_token_sealed, verified_at_ms, grace_until_ms, finished_at_ms, alertname, silence_id, mode, plan, \
    thread_id, approval_ts, decided_by, adopted, rollout_baseline, distributed_at_ms, known_tokens, \
    sync_requested";

/// Raised when a rotation is no longer in the phase a step started from.
pub const MOVED_ON: &str = "rotation is no longer in the phase this step started from";
