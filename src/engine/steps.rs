//! One function per phase. Each reads what it needs from the journal row and the world, makes
//! at most one kind of external change (idempotent by the rotation id), and says where to go.

use jiff::Timestamp;
use secrecy::ExposeSecret;

use super::resolved::{list_exactly, mismatch};
use super::row::{
    ENGINE, LAST8, SHA256, context, expiring, millis, permit, placement, target, token, unwritten,
    when,
};
use super::{Engine, Phase, Step};
use crate::adapters::{AdapterError, Issuer, MintedValue, TokenInfo};
use crate::policy::Mode;
use crate::store::rotations::{self, Field, RotationRow};

impl Engine {
    pub(super) async fn run_step(&self, row: &RotationRow, phase: Phase) -> Step {
        let shadow = row.mode == Mode::Shadow.as_str();
        match phase {
            Phase::Planned if shadow => self.plan(row).await,
            Phase::Silencing if shadow => self.plan_silence(row).await,
            Phase::Planned => {
                if let Err(wait) = self.my_turn(row).await {
                    return Step::Error(wait);
                }
                self.mint(row).await
            }
            Phase::Issued => self.distribute(row).await,
            Phase::Distributed => self.await_rollout(row).await,
            Phase::RolledOut => self.verify(row).await,
            Phase::Verified => self.start_grace(row),
            Phase::Grace => self.revoke_old(row).await,
            Phase::Revoked => {
                let why = self.old_token_fate(row);
                Step::Advance(self.transition(row, phase, Phase::Done, why, ENGINE))
            }
            Phase::RollingBack => self.roll_back(row).await,
            Phase::Silencing => self.silence(row).await,
            Phase::AwaitingApproval => self.expire_approval(row),
            Phase::AwaitingHandover => self.await_handover(row).await,
            Phase::Retiring => self.retire(row).await,
            // Terminal phases are never due; nothing to do.
            _ => Step::Error(AdapterError::permanent(
                "journal",
                format!("{phase} is not a step"),
            )),
        }
    }

    /// planned → issued. Gathers the old token, the value in place now and the consumers'
    /// Deployments (read-only, journaled first); then adopts a fresh token the issuer made by
    /// itself, or mints one with the rotation id as idempotency key (a resumed step gets the same
    /// token).
    async fn mint(&self, row: &RotationRow) -> Step {
        let target = attempt!(target(row));
        let up = attempt!(self.adapters.for_row(row));
        let issuer = &up.issuer;
        let listing = attempt!(list_exactly(issuer.as_ref(), &target, &row.id).await);
        let placement = up.distributor.placement(&listing);
        let current = attempt!(up.distributor.read(&placement).await);
        let schedule = self.adapters.schedule_of(row);
        let asked = schedule.map_or(self.settings.token_life, |s| s.token_life());
        let life = issuer.longest_life().map_or(asked, |most| asked.min(most));
        // An issuer that renews tokens by itself made the fresh ones (far from expiry); the
        // alert is about the latest of the others. Without others, the latest token is the old.
        let fresh_after = self.clock.now() + self.settings.adopt_fresher_than;
        let (fresh, stale): (Vec<_>, Vec<_>) = listing
            .tokens
            .iter()
            .partition(|t| t.expires_at > fresh_after && issuer.self_renews());
        let mut old: Option<TokenInfo> = stale
            .iter()
            .copied()
            .max_by_key(|t| t.expires_at)
            .or_else(|| listing.tokens.iter().max_by_key(|t| t.expires_at))
            .cloned();
        let mut adopt = (!stale.is_empty())
            .then(|| fresh.iter().copied().max_by_key(|t| t.expires_at))
            .flatten();
        let mut deadline = old
            .as_ref()
            .map(|t| t.expires_at - self.settings.safety_margin);
        let mut old_expiry = old.as_ref().and_then(|t| millis(t.expires_at));
        if schedule.is_some() {
            // A scheduled target's issuer may not say when tokens expire: the old token is the
            // one the last rotation made, expiring when it asked for; else (a first rotation)
            // the one in place now, as the issuer recognises it.
            let last = attempt!(
                rotations::last_done(&self.db, &row.environment, &row.api_user, &row.application)
                    .await
                    .map_err(unwritten)
            );
            let last_id = last.as_ref().and_then(|r| r.new_token_id.clone());
            old = listing
                .tokens
                .iter()
                .find(|t| Some(&t.id) == last_id.as_ref())
                .cloned();
            let placed = current.as_ref().filter(|v| !v.expose_secret().is_empty());
            if old.is_none()
                && let Some(value) = placed
            {
                old = attempt!(issuer.identify(&listing, value).await);
            }
            old_expiry = last.and_then(|r| r.new_token_expires_at_ms);
            adopt = None;
            deadline = None;
            if old.is_none() && placed.is_some() && row.old_token_id.is_none() {
                return Step::Error(AdapterError::permanent(
                    ENGINE,
                    format!(
                        "the token in place is not one {} lists for this target, so it can be neither replaced nor revoked from here; replace it once by hand",
                        issuer.name()
                    ),
                ));
            }
        }
        // An alert names any owner and token: where its distributor asks, only the token its
        // placement holds is rotated (see `in_place`).
        if schedule.is_none()
            && row.secret_name.is_none()
            && let Some(in_place) = attempt!(
                super::in_place::required(up, &listing, &placement, current.as_ref(), row).await
            )
        {
            deadline = Some(in_place.expires_at - self.settings.safety_margin);
            old_expiry = millis(in_place.expires_at);
            adopt = None;
            old = Some(in_place);
        }
        // Rotation replaces a token; it never creates access. A pair with no live token (an
        // alert naming any API user and application, or one whose token was revoked) is not
        // minted for, in any issuer.
        if listing.tokens.is_empty()
            && row.secret_name.is_none()
            && !super::asked::may_create_access(row)
        {
            // A dead pair: its only tokens expired unrevoked, so its alert fires for ever.
            let dead = attempt!(self.dead_tokens_of(row, &listing.application_name).await);
            if !dead.is_empty() && super::asked::dead_tokens(row).is_none() {
                return self.ask_about_dead(row, dead);
            }
            return Step::Error(AdapterError::permanent(
                ENGINE,
                format!(
                    "nothing to rotate: {} lists no live token for {:?} / {:?}; token-rotator replaces tokens and never creates access",
                    issuer.name(),
                    row.api_user,
                    listing.application_name
                ),
            ));
        }
        let known: Vec<&String> = listing.tokens.iter().map(|t| &t.id).collect();
        let mut gathered = vec![
            Field::Text("known_tokens", serde_json::to_string(&known).ok()),
            Field::Text("api_user_name", Some(listing.api_user_name.clone())),
            Field::Text("application_uid", Some(listing.application_uid.clone())),
            Field::Text("secret_name", Some(placement.name.clone())),
            Field::Text("old_token_id", old.as_ref().map(|t| t.id.clone())),
            Field::Int("old_token_expires_at_ms", old_expiry),
            Field::Text("old_token_last8", old.as_ref().map(|t| t.last8.clone())),
            Field::Int("deadline_at_ms", deadline.and_then(millis)),
        ];
        if let Some(value) = &current {
            // What to put back if the new token fails verification.
            gathered.push(Field::Text(
                "old_secret_fingerprint",
                Some(self.keys.fingerprint(value).hmac),
            ));
            gathered.push(Field::Blob(
                "old_secret_sealed",
                Some(self.keys.seal(value, &context(row, "old"))),
            ));
        }
        // The consumers as they are before anything changes, so their rollout can be awaited.
        let already_there = adopt.is_some_and(|t| {
            current
                .as_ref()
                .is_some_and(|v| v.expose_secret().ends_with(&t.last8))
        });
        if let Some(deployments) = &up.deployments {
            let mut baseline = attempt!(deployments.baseline(&placement.name).await);
            baseline.changed = !already_there;
            gathered.push(Field::Text(
                "rollout_baseline",
                serde_json::to_string(&baseline).ok(),
            ));
        }
        // `secret_name` marks a step that got this far before: keep what it journaled then.
        let gathered_before = row.secret_name.is_some();
        if !gathered_before {
            // First try only: a resumed step must not take our own new token for the old one.
            let pool = &self.db;
            if let Err(e) =
                rotations::record(pool, &row.id, &row.phase, &gathered, self.clock.now()).await
            {
                return Step::Error(unwritten(e));
            }
            if let Some(fresh) = adopt {
                let placed = up.distributor.describe(&placement);
                return self.adopt(row, issuer.as_ref(), fresh, old.as_ref(), &placed);
            }
        }
        // An issuer that cannot mint idempotently: a resumed step first looks for the token a
        // lost answer made (live, and not listed before the first try).
        let known_before: Vec<String> = row
            .known_tokens
            .as_deref()
            .and_then(|k| serde_json::from_str(k).ok())
            .unwrap_or_default();
        let recovered = if gathered_before {
            attempt!(
                issuer
                    .recover(
                        &attempt!(permit(row)),
                        &target,
                        &known_before,
                        life,
                        &row.id
                    )
                    .await
            )
        } else {
            None
        };
        let minted = match recovered {
            Some(minted) => minted,
            None => attempt!(
                issuer
                    .mint(
                        &attempt!(permit(row)),
                        &target,
                        life,
                        &row.id,
                        row.old_token_id
                            .as_deref()
                            .or(old.as_ref().map(|t| t.id.as_str())),
                    )
                    .await
            ),
        };
        // On a resumed step the journal already names the old token; never our new one.
        let old_id = if gathered_before {
            row.old_token_id.clone()
        } else {
            old.as_ref().map(|t| t.id.clone())
        };
        if old_id.as_deref() == Some(minted.id.as_str()) {
            return Step::Error(AdapterError::permanent(
                ENGINE,
                "the minted token is the one recorded as old; refusing to revoke our own token",
            ));
        }
        let (print, last4, sealed) = match &minted.value {
            MintedValue::Held(value) => {
                let fp = self.keys.fingerprint(value);
                // Kept sealed until it is placed, so a crash before then loses nothing.
                let sealed = self.keys.seal(value, &context(row, "new"));
                (fp.hmac, fp.last4, Some(sealed))
            }
            MintedValue::Withheld { sha256, last8 } => (
                format!("{SHA256}{sha256}"),
                last8.chars().skip(4).collect(),
                None,
            ),
        };
        let fields = vec![
            Field::Text("new_token_id", Some(minted.id.clone())),
            Field::Int("new_token_expires_at_ms", millis(minted.expires_at)),
            Field::Text("new_token_fingerprint", Some(print)),
            Field::Text("new_token_last4", Some(last4.clone())),
            Field::Blob("new_token_sealed", sealed),
        ];
        let old_text = match (gathered_before, &row.old_token_id, &old) {
            (true, Some(id), _) => token(id, row.old_token_last8.as_deref().unwrap_or_default()),
            (false, _, Some(t)) => format!("{}{}", token(&t.id, &t.last8), expiring(old_expiry)),
            _ => "none".to_owned(),
        };
        // An atomic rotation turns the old token into the new one; the others mint beside it.
        let made = if issuer.revokes_on_mint() && old_id.is_some() {
            "rotated the old token into"
        } else {
            "minted"
        };
        let mut reason = format!(
            "{} {made} token {} (…{last4}){}; old token {old_text}; it goes to {}",
            issuer.name(),
            minted.id,
            expiring(millis(minted.expires_at)),
            up.distributor.describe(&placement),
        );
        if issuer.revokes_on_mint() && old_id.is_some() {
            reason.push_str(&format!(
                "; {} revoked the old token as it rotated (its rotation is atomic: no overlap)",
                issuer.name()
            ));
        }
        if let Some(why) = mismatch(issuer.name(), &target, minted.resolved.as_ref()) {
            // Listed under the target's spelling, made under another (the record changed in
            // between): the token is journaled, and the rollback revokes it and puts back
            // whatever the issuer placed with it. Nobody is handed a token made for a pair no
            // rule chose.
            let why = format!(
                "{why}; {} made token {} (…{last4}) for that pair, so it is revoked",
                issuer.name(),
                minted.id
            );
            let mut transition =
                self.transition(row, Phase::Planned, Phase::RollingBack, why.clone(), ENGINE);
            transition.fields.extend(fields);
            transition.fields.push(Field::Text("outcome", Some(why)));
            return Step::Advance(transition);
        }
        let mut transition = self.transition(row, Phase::Planned, Phase::Issued, reason, ENGINE);
        transition.fields.extend(fields);
        Step::Advance(transition)
    }

    /// planned → issued without a mint: the issuer already made a fresh token by itself (see
    /// `Issuer::self_renews`); carry that one through distribution, verification and revoking the
    /// old one, the part nothing automates today.
    fn adopt(
        &self,
        row: &RotationRow,
        issuer: &dyn Issuer,
        fresh: &TokenInfo,
        old: Option<&TokenInfo>,
        placed: &str,
    ) -> Step {
        let last4: String = fresh.last8.chars().skip(4).collect();
        let reason = format!(
            "adopted token {} (…{}) that {} made by itself,{}; no mint; old token {}; it goes to {placed}",
            fresh.id,
            fresh.last8,
            issuer.name(),
            expiring(millis(fresh.expires_at)),
            old.map_or_else(|| "none".into(), |t| token(&t.id, &t.last8)),
        );
        let mut transition = self.transition(row, Phase::Planned, Phase::Issued, reason, ENGINE);
        transition.fields.extend([
            Field::Int("adopted", Some(1)),
            Field::Text("new_token_id", Some(fresh.id.clone())),
            Field::Int("new_token_expires_at_ms", millis(fresh.expires_at)),
            Field::Text(
                "new_token_fingerprint",
                Some(format!("{LAST8}{}", fresh.last8)),
            ),
            Field::Text("new_token_last4", Some(last4)),
        ]);
        Step::Advance(transition)
    }

    /// verified → grace. The old token stays valid while consumers pick up the new one.
    fn start_grace(&self, row: &RotationRow) -> Step {
        let until = self.clock.now() + self.settings.grace;
        let mut transition = self.transition(
            row,
            Phase::Verified,
            Phase::Grace,
            format!(
                "old token stays valid until {} ({} grace)",
                when(until),
                humantime::format_duration(self.settings.grace)
            ),
            ENGINE,
        );
        transition.next_attempt_at = Some(until);
        transition
            .fields
            .push(Field::Int("grace_until_ms", millis(until)));
        Step::Advance(transition)
    }

    /// grace → revoked, once the grace period is over.
    async fn revoke_old(&self, row: &RotationRow) -> Step {
        let permit = attempt!(permit(row));
        let up = attempt!(self.adapters.for_row(row));
        let why = match (&row.old_token_id, self.old_token_kept(row)) {
            (Some(id), Some(OldToken::Expires)) => format!(
                "old token {id} left to expire by itself at {} (it was asked for then; the rule does not disable it)",
                row.old_token_expires_at_ms
                    .and_then(|ms| Timestamp::from_millisecond(ms).ok())
                    .map_or_else(|| "its expiry".to_owned(), when)
            ),
            (Some(id), Some(OldToken::RevokedByRotation(issuer))) => {
                format!("old token {id} was revoked by {issuer} when it rotated; nothing to revoke")
            }
            (Some(id), None) => {
                let target = attempt!(target(row));
                attempt!(up.issuer.revoke(&permit, &target, id, &row.id).await);
                format!("revoked old token {id}")
            }
            (None, _) => "no old token to revoke".into(),
        };
        // What was kept for a rollback (a file's `.previous`) can go now.
        if let Ok(placement) = placement(row) {
            attempt!(up.distributor.settle(&placement).await);
        }
        Step::Advance(self.transition(row, Phase::Grace, Phase::Revoked, why, ENGINE))
    }

    /// Why the engine does not revoke the old token itself, if it does not.
    pub(super) fn old_token_kept(&self, row: &RotationRow) -> Option<OldToken> {
        // Handed to a person who did not confirm the switch, or a rule that keeps it.
        if super::asked::handed_old_token_expires(row) {
            return Some(OldToken::Expires);
        }
        // An issuer whose rotation revoked it leaves nothing to keep or revoke.
        if let Ok(up) = self.adapters.for_row(row)
            && up.issuer.revokes_on_mint()
        {
            return Some(OldToken::RevokedByRotation(up.issuer.name()));
        }
        // A schedule lets the old token expire by itself unless told to disable it (the
        // credential API's own advice: the overlap is the grace).
        self.adapters
            .schedule_of(row)
            .is_some_and(|s| !s.disable_old)
            .then_some(OldToken::Expires)
    }

    /// revoked → done: what became of the old token, in a few words.
    fn old_token_fate(&self, row: &RotationRow) -> String {
        let Some(id) = &row.old_token_id else {
            return "there was no old token to revoke".into();
        };
        let old = token(id, row.old_token_last8.as_deref().unwrap_or_default());
        match self.old_token_kept(row) {
            Some(OldToken::Expires) => format!("old token {old} expires by itself"),
            Some(OldToken::RevokedByRotation(issuer)) => {
                format!("old token {old} revoked by {issuer}'s rotation")
            }
            None => format!("old token {old} revoked"),
        }
    }
}

/// An old token the engine does not revoke after the grace period.
pub(super) enum OldToken {
    /// The schedule lets it die at its own expiry.
    Expires,
    /// The issuer's rotation revoked it already (the issuer's name).
    RevokedByRotation(&'static str),
}
