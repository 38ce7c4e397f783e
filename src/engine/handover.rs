//! Handing a token to a person: for consumers token-rotator cannot write to (outside the
//! cluster, another organisation). The token is not stored anywhere but sealed in the journal;
//! a direct message in Slack tells the owner (alone) where to collect it — a one-time link
//! served by token-rotator
//! (`GET /v1/handover/<id>` shows a page, `POST` reveals the token once) for the handover
//! window — and the rotation waits in
//! `awaiting_handover` until the owner confirms (`POST /v1/handover/<id>/confirm`) or the
//! window ends, then goes on to verify.

use base64::Engine as _;
use secrecy::SecretString;

use super::row::{ENGINE, millis};
use super::{Engine, Phase, Step, message};
use crate::adapters::AdapterError;
use crate::store::handovers;
use crate::store::outbox::{DirectBody, Notice, NoticeKind};
use crate::store::rotations::RotationRow;

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS provides randomness");
    hex::encode(bytes)
}

fn journal(e: crate::store::StoreError) -> AdapterError {
    AdapterError::Transient {
        upstream: "journal",
        detail: e.to_string(),
    }
}

/// What becomes of the old token, for the holder of the new one.
fn old_token_after(row: &RotationRow) -> &'static str {
    let revoke_on_confirm = super::row::ask_of(row)
        .is_some_and(|a| a.old_token == crate::policy::OldToken::Revoke)
        && super::asked::hand_to(row).is_some();
    if revoke_on_confirm {
        "Confirm once the consumer uses the new token: the old one is then revoked. Unconfirmed, it stays valid until its own expiry."
    } else {
        "The old token stays valid until its own expiry."
    }
}

impl Engine {
    /// issued → awaiting_handover: a one-time link, and a message to the owner.
    pub(super) async fn hand_over(
        &self,
        row: &RotationRow,
        owner: &str,
        window: std::time::Duration,
    ) -> Step {
        let pool = &self.db;
        let now = self.clock.now();
        // The id is the credential: the journal keeps only its hash, and the link exists in
        // this step's message alone.
        let id = random_id();
        let handover = attempt!(
            handovers::open(pool, &row.id, &id, now, now + window)
                .await
                .map_err(journal)
        );
        let until = jiff::Timestamp::from_millisecond(handover.expires_at_ms).unwrap_or(now);
        let link = format!(
            "{}/v1/handover/{id}",
            self.settings.public_url.trim_end_matches('/'),
        );
        // The link goes to the owner alone, sealed until the notifier sends it; the thread
        // hears that it was sent, never the link itself.
        let direct = format!(
            ":package: A new token for `{}` / *{}* is ready for you. Open {} before {} and press *Reveal* (it shows the token once; opening the link spends nothing), then confirm with `curl -X POST {link}/confirm`. {}",
            message::escape(&row.api_user),
            message::escape(&row.application),
            super::mrkdwn::link(&link),
            until.strftime("%Y-%m-%d %H:%M UTC"),
            old_token_after(row),
        );
        let sealed = self.keys.seal(
            &SecretString::from(message::note(&direct).to_string()),
            &DirectBody::context(&row.id),
        );
        let direct = DirectBody {
            to: owner.to_owned(),
            sealed: base64::engine::general_purpose::STANDARD.encode(sealed),
        };
        let told = format!(
            ":package: A new token for `{}` / *{}* is ready to hand over: <@{owner}> has the one-time link in a direct message, valid until {}.",
            message::escape(&row.api_user),
            message::escape(&row.application),
            until.strftime("%Y-%m-%d %H:%M UTC"),
        );
        let mut transition = self.transition(
            row,
            Phase::Issued,
            Phase::AwaitingHandover,
            format!("handed over to {owner}: link valid until {until}"),
            ENGINE,
        );
        transition.next_attempt_at = Some(now + self.settings.poll);
        transition
            .notify
            .push(Notice::new(NoticeKind::Broadcast, message::note(&told)));
        transition.notify.push(Notice::new(
            NoticeKind::Direct,
            serde_json::to_value(&direct).expect("two strings serialize"),
        ));
        Step::Advance(transition)
    }

    /// awaiting_handover → distributed once the owner confirms, or the window ends.
    pub(super) async fn await_handover(&self, row: &RotationRow) -> Step {
        let pool = &self.db;
        let now = self.clock.now();
        let Some(handover) = attempt!(handovers::of_rotation(pool, &row.id).await.map_err(journal))
        else {
            return Step::Error(AdapterError::permanent("journal", "the handover is gone"));
        };
        let collected = handover.collected_at_ms.is_some();
        // A confirmation counts only for a collected token (the store refuses any other; a row
        // journaled before it did is read the same way): never end on a token nobody has.
        let confirmed = handover.confirmed_at_ms.filter(|_| collected);
        let why = if let Some(at) = confirmed {
            format!("the owner confirmed at {}", crate::clock::when(Some(at)))
        } else if now.as_millisecond() >= handover.expires_at_ms {
            format!(
                "the handover window ended ({}); verifying anyway",
                if collected {
                    "collected, not confirmed"
                } else {
                    "never collected"
                }
            )
        } else {
            return Step::Error(AdapterError::pending(
                "handover",
                if collected {
                    "collected; waiting for the owner to confirm"
                } else {
                    "waiting for the owner to collect the token"
                },
            ));
        };
        let mut transition = self.transition(
            row,
            Phase::AwaitingHandover,
            Phase::Distributed,
            why,
            ENGINE,
        );
        if confirmed.is_none() && super::asked::hand_to(row).is_some() {
            // Nobody said the consumer switched: the old token must not be revoked under it.
            transition.fields.push(super::asked::unconfirmed(row));
        }
        transition.fields.push(crate::store::rotations::Field::Int(
            "distributed_at_ms",
            millis(now),
        ));
        Step::Advance(transition)
    }
}
