//! What follows an `ask` rule's choice (`approval::decide` journals it): revoking a pair nobody
//! uses any more (retiring → retired), a silence that lasts until the token's own expiry, and a
//! new token handed to the person who chose it instead of placed for a consumer.

use std::time::Duration;

use jiff::Timestamp;
use secrecy::SecretString;

use super::resolved::list_exactly;
use super::row::{ENGINE, context, holds, journal, permit, placement, target, token};
use super::{Engine, Phase, Step};
use crate::adapters::AdapterError;
use crate::store::rotations::{Field, RotationRow};

/// Who collects a token handed over on a person's choice, and for how long the link is open.
pub(super) struct HandTo {
    pub owner: String,
    pub window: Duration,
}

fn detail(row: &RotationRow) -> serde_json::Value {
    row.action_detail
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default()
}

/// The hand-over a person chose for this rotation, if they did.
pub(super) fn hand_to(row: &RotationRow) -> Option<HandTo> {
    let owner = detail(row)["handover_to"].as_str()?.to_owned();
    let ask = super::row::ask_of(row)?;
    Some(HandTo {
        owner,
        window: ask.handover_window,
    })
}

/// Whether the old token is left to its own expiry after a hand-over: the rule says so, or the
/// holder never confirmed that the consumer switched (revoking it then could break it).
pub(super) fn handed_old_token_expires(row: &RotationRow) -> bool {
    hand_to(row).is_some()
        && (detail(row)["handover_unconfirmed"] == serde_json::Value::Bool(true)
            || super::row::ask_of(row)
                .is_some_and(|a| a.old_token == crate::policy::OldToken::Expire))
}

/// The journaled decision with `handover_unconfirmed` set: the window ended without a confirm.
pub(super) fn unconfirmed(row: &RotationRow) -> Field {
    let mut detail = detail(row);
    detail["handover_unconfirmed"] = serde_json::Value::Bool(true);
    Field::Text("action_detail", Some(detail.to_string()))
}

/// The token ids a sweep journaled to revoke (`revoke_only`), if this rotation is one of its.
pub(super) fn revoke_only(row: &RotationRow) -> Option<Vec<String>> {
    let ids = detail(row)["revoke_only"].as_array()?.clone();
    Some(
        ids.iter()
            .filter_map(|id| id.as_str().map(str::to_owned))
            .collect(),
    )
}

/// Whether the silence a person chose lasts until the token's expiry.
pub(super) fn silence_until_expiry(row: &RotationRow) -> bool {
    detail(row)["silence_until_expiry"] == serde_json::Value::Bool(true)
}

impl Engine {
    /// retiring → retired: every live token of the pair revoked (each revoke idempotent, so a
    /// step retried after a crash revokes nothing twice). Nothing is minted.
    pub(super) async fn retire(&self, row: &RotationRow) -> Step {
        let permit = attempt!(permit(row));
        let target = attempt!(target(row));
        let up = attempt!(self.adapters.for_row(row));
        if let (Some(ids), Some(_)) = (revoke_only(row), dead_tokens(row)) {
            // A dead pair's expired tokens, named when asked: no listing of live ones shows them.
            for id in &ids {
                attempt!(up.issuer.revoke(&permit, &target, id, &row.id).await);
            }
            let why = format!(
                "{} revoked expired token(s) {}; nothing was minted",
                up.issuer.name(),
                ids.join(", ")
            );
            return Step::Advance(self.transition(
                row,
                Phase::Retiring,
                Phase::Retired,
                why,
                ENGINE,
            ));
        }
        let listing = attempt!(list_exactly(up.issuer.as_ref(), &target, &row.id).await);
        if let Some(ids) = revoke_only(row) {
            return self
                .retire_only(row, &permit, &target, &listing, &ids)
                .await;
        }
        let mut revoked = Vec::new();
        for t in &listing.tokens {
            attempt!(up.issuer.revoke(&permit, &target, &t.id, &row.id).await);
            revoked.push(token(&t.id, &t.last8));
        }
        let why = if revoked.is_empty() {
            format!(
                "{} lists no live token for the pair: nothing to revoke",
                up.issuer.name()
            )
        } else {
            format!(
                "{} revoked {} (the pair's live tokens); nothing was minted",
                up.issuer.name(),
                revoked.join(", ")
            )
        };
        Step::Advance(self.transition(row, Phase::Retiring, Phase::Retired, why, ENGINE))
    }

    /// retiring → retired for a sweep: exactly the journaled ids are revoked, never the pair's
    /// newest token (the live one expiring last, as listed now: another may have been made since
    /// the sweep looked), and an id no longer listed is already gone. The sweep's digest tells
    /// the outcome, so a revoke that went as planned queues no message of its own.
    async fn retire_only(
        &self,
        row: &RotationRow,
        permit: &crate::adapters::Permit,
        target: &crate::domain::Target,
        listing: &crate::adapters::TokenListing,
        ids: &[String],
    ) -> Step {
        let up = attempt!(self.adapters.for_row(row));
        let newest = listing.tokens.iter().max_by_key(|t| t.expires_at);
        let mut revoked = Vec::new();
        let mut spared = Vec::new();
        let mut gone = Vec::new();
        for id in ids {
            match listing.tokens.iter().find(|t| &t.id == id) {
                Some(t) if newest.is_some_and(|n| n.id == t.id) => {
                    spared.push(token(&t.id, &t.last8));
                }
                Some(t) => {
                    attempt!(up.issuer.revoke(permit, target, &t.id, &row.id).await);
                    revoked.push(token(&t.id, &t.last8));
                }
                None => gone.push(id.clone()),
            }
        }
        let mut why = if revoked.is_empty() {
            format!("{} revoked nothing", up.issuer.name())
        } else {
            format!(
                "{} revoked superseded {}",
                up.issuer.name(),
                revoked.join(", ")
            )
        };
        if let Some(n) = newest {
            why.push_str(&format!(
                "; the newest, {}, stays live",
                token(&n.id, &n.last8)
            ));
        }
        if !spared.is_empty() {
            why.push_str(&format!(
                "; not revoked: {} (the newest now)",
                spared.join(", ")
            ));
        }
        if !gone.is_empty() {
            why.push_str(&format!("; already gone: {}", gone.join(", ")));
        }
        why.push_str("; only the tokens the sweep named were revoked");
        let mut transition = self.transition(row, Phase::Retiring, Phase::Retired, why, ENGINE);
        transition.notify.clear();
        Step::Advance(transition)
    }

    /// When a silence chosen as "let it expire" ends: the last expiry of the pair's live tokens,
    /// as the issuer lists them now.
    pub(super) async fn expiry_of_pair(
        &self,
        row: &RotationRow,
    ) -> Result<Timestamp, AdapterError> {
        let target = target(row)?;
        let up = self.adapters.for_row(row)?;
        let listing = list_exactly(up.issuer.as_ref(), &target, &row.id).await?;
        listing
            .tokens
            .iter()
            .map(|t| t.expires_at)
            .max()
            .ok_or_else(|| {
                AdapterError::permanent(
                    "issuer",
                    format!(
                        "{} lists no live token for the pair, so there is no expiry to silence until",
                        up.issuer.name()
                    ),
                )
            })
    }

    /// The value a person is handed: the journal's sealed copy when the issuer gave it, else
    /// what the distributor holds (an issuer that never lets the value out writes it there
    /// itself), recognised by the new token's fingerprint and sealed into the journal for the
    /// link. `Ok(None)`: the journal has it already.
    pub(super) async fn value_to_hand_over(
        &self,
        row: &RotationRow,
    ) -> Result<Option<Field>, AdapterError> {
        if row.new_token_sealed.is_some() {
            return Ok(None);
        }
        let print = row
            .new_token_fingerprint
            .clone()
            .ok_or_else(|| journal("no fingerprint of the new token"))?;
        let up = self.adapters.for_row(row)?;
        let placement = placement(row)?;
        let found: Option<SecretString> = up.distributor.read(&placement).await?;
        match found {
            Some(value) if holds(&self.keys, &value, &print) => {
                let sealed = self.keys.seal(&value, &context(row, "new"));
                Ok(Some(Field::Blob("new_token_sealed", Some(sealed))))
            }
            _ => Err(AdapterError::pending(
                "handover",
                format!(
                    "waiting for the new token to appear in {} before handing it over",
                    up.distributor.describe(&placement)
                ),
            )),
        }
    }
}

/// An expired, never revoked token of a pair with no live one, as the last inventory saw it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct DeadToken {
    pub id: String,
    pub last8: String,
    pub expired_at_ms: Option<i64>,
}

/// The expired tokens a dead-token question is about, once it was asked.
pub(super) fn dead_tokens(row: &RotationRow) -> Option<Vec<DeadToken>> {
    serde_json::from_value(detail(row)["dead"].clone()).ok()
}

/// Whether a person approved issuing a token to a pair that has none live (creating access).
pub(super) fn may_create_access(row: &RotationRow) -> bool {
    detail(row)["create_access"] == serde_json::Value::Bool(true)
}

impl Engine {
    /// The expired tokens the last inventory of this environment holds for the pair (by the
    /// issuer's own application name, as its listing gives it).
    pub(super) async fn dead_tokens_of(
        &self,
        row: &RotationRow,
        application_name: &str,
    ) -> Result<Vec<DeadToken>, AdapterError> {
        let rows = crate::store::inventory::last(&self.db)
            .await
            .map_err(super::row::unwritten)?;
        Ok(rows
            .into_iter()
            .filter(|t| {
                t.environment == row.environment
                    && t.expired
                    && t.api_user.eq_ignore_ascii_case(&row.api_user)
                    && (t.application == application_name || t.application == row.application)
            })
            .map(|t| DeadToken {
                id: t.token_id,
                last8: t.last8,
                expired_at_ms: t.expires_at_ms,
            })
            .collect())
    }

    /// planned → awaiting_approval: the pair's only tokens expired and were never revoked (its
    /// alert fires until one is). Ask whoever may decide whether to revoke them or to issue a
    /// new one (creating access again); with nobody to ask, it is a person's job.
    pub(super) fn ask_about_dead(&self, row: &RotationRow, dead: Vec<DeadToken>) -> Step {
        let named: Vec<String> = dead.iter().map(|t| token(&t.id, &t.last8)).collect();
        let mut approvers = super::approval::approvers(row);
        if approvers.is_empty()
            && let Some(owners) = crate::policy::owners_of(&self.settings.owners, &row.api_user)
        {
            approvers.clone_from(owners);
        }
        if approvers.is_empty() {
            return Step::Error(AdapterError::permanent(
                ENGINE,
                format!(
                    "dead token: the pair has no live token, only expired {} that was never revoked (its alert fires until it is); revoke it, or issue a new one, by hand (no rule names who may decide here)",
                    named.join(", ")
                ),
            ));
        }
        let now = self.clock.now();
        let until = now + self.settings.approval_timeout;
        let mut detail = detail(row);
        detail["dead"] = serde_json::to_value(&dead).unwrap_or_default();
        detail["approvers"] = serde_json::json!(approvers);
        let mut asked = row.clone();
        asked.action_detail = Some(detail.to_string());
        let mut transition = self.transition(
            row,
            Phase::Planned,
            Phase::AwaitingApproval,
            format!(
                "dead token: no live token, only expired {}; asking whether to revoke it or issue a new one",
                named.join(", ")
            ),
            ENGINE,
        );
        transition.next_attempt_at = Some(until);
        transition
            .fields
            .push(Field::Text("action_detail", asked.action_detail.clone()));
        transition.notify.push(crate::store::outbox::Notice::new(
            crate::store::outbox::NoticeKind::Approval,
            super::message::approval_request(&asked, until.as_millisecond()),
        ));
        Step::Advance(transition)
    }
}
