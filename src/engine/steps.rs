//! One function per phase. Each reads what it needs from the journal row and the world, makes
//! at most one kind of external change (idempotent by the rotation id), and says where to go.

use jiff::Timestamp;
use secrecy::ExposeSecret;

use super::distribute::{LAST8, SHA256};
use super::{Engine, Phase, Step};
use crate::adapters::{AdapterError, MintedValue, Permit, Placement, TokenInfo};
use crate::domain::{ApiUser, Application, Environment, Target};
use crate::policy::Mode;
use crate::store::rotations::{self, Field, RotationRow};

pub(super) const ENGINE: &str = "engine";

pub(super) fn target(row: &RotationRow) -> Result<Target, AdapterError> {
    let bad = |e: crate::domain::EmptyValue| AdapterError::permanent("journal", e.to_string());
    Ok(Target {
        environment: Environment::parse(&row.environment).map_err(bad)?,
        api_user: ApiUser::parse(&row.api_user).map_err(bad)?,
        application: Application::parse(&row.application).map_err(bad)?,
    })
}

pub(super) fn placement(row: &RotationRow) -> Result<Placement, AdapterError> {
    row.secret_name
        .clone()
        .map(|name| Placement { name })
        .ok_or_else(|| AdapterError::permanent("journal", "no Secret name recorded"))
}

/// The gate: a mutation only for a rotation created active. An unreadable mode counts as shadow.
pub(super) fn permit(row: &RotationRow) -> Result<Permit, AdapterError> {
    Permit::for_mode(Mode::parse(&row.mode).unwrap_or(Mode::Shadow))
}

pub(super) fn millis(t: Timestamp) -> Option<i64> {
    Some(t.as_millisecond())
}

impl Engine {
    pub(super) async fn run_step(&self, row: &RotationRow, phase: Phase) -> Step {
        let shadow = row.mode == Mode::Shadow.as_str();
        match phase {
            Phase::Planned if shadow => self.plan(row).await,
            Phase::Silencing if shadow => {
                self.plan_silence(row, &super::silence::silence_matchers(row))
                    .await
            }
            Phase::Planned => self.mint(row).await,
            Phase::Issued => self.distribute(row).await,
            Phase::Distributed => self.await_rollout(row).await,
            Phase::RolledOut => self.verify(row).await,
            Phase::Verified => self.start_grace(row),
            Phase::Grace => self.revoke_old(row).await,
            Phase::Revoked => {
                let kept = self
                    .adapters
                    .schedule_of(row)
                    .is_some_and(|s| !s.disable_old);
                let why = match &row.old_token_id {
                    Some(id) if kept => format!(
                        "old token {id} (…{}) expires by itself",
                        row.old_token_last8.as_deref().unwrap_or("?")
                    ),
                    Some(id) => format!(
                        "old token {id} (…{}) revoked",
                        row.old_token_last8.as_deref().unwrap_or("?")
                    ),
                    None => "there was no old token to revoke".into(),
                };
                Step::Advance(self.transition(row, phase, Phase::Done, why, ENGINE))
            }
            Phase::RollingBack => self.roll_back(row).await,
            Phase::Silencing => self.silence(row).await,
            Phase::AwaitingApproval => self.expire_approval(row),
            Phase::AwaitingHandover => self.await_handover(row).await,
            // Terminal phases are never due; nothing to do.
            _ => Step::Error(AdapterError::permanent(
                "journal",
                format!("{phase} is not a step"),
            )),
        }
    }

    /// planned → issued. Gathers the old token, the Secret's current value and the consumers'
    /// Deployments (read-only, journaled first); then adopts a fresh token Signon made by itself,
    /// or mints one with the rotation id as idempotency key (a resumed step gets the same token).
    async fn mint(&self, row: &RotationRow) -> Step {
        let target = attempt!(target(row));
        let up = attempt!(self.adapters.for_row(row));
        let issuer = &up.issuer;
        let listing = attempt!(issuer.list(&target, &row.id).await);
        let placement = up.distributor.placement(&listing);
        let current = attempt!(up.distributor.read(&placement).await);
        let schedule = self.adapters.schedule_of(row);
        let life = schedule.map_or(self.settings.token_life, |s| s.token_life());
        // Fresh tokens (far from expiry) were made by Signon's nightly renewal; the alert is
        // about the latest of the others. Without others, the latest token is the old one.
        let fresh_after = self.clock.now() + self.settings.adopt_fresher_than;
        let (fresh, stale): (Vec<_>, Vec<_>) = listing
            .tokens
            .iter()
            .partition(|t| t.expires_at > fresh_after);
        let mut old = stale
            .iter()
            .copied()
            .max_by_key(|t| t.expires_at)
            .or_else(|| listing.tokens.iter().max_by_key(|t| t.expires_at));
        let mut adopt = (!stale.is_empty())
            .then(|| fresh.iter().copied().max_by_key(|t| t.expires_at))
            .flatten();
        let mut deadline = old.map(|t| t.expires_at - self.settings.safety_margin);
        let mut old_expiry = old.and_then(|t| millis(t.expires_at));
        if schedule.is_some() {
            // A scheduled target's issuer may not say when tokens expire (Synoptic cannot): the
            // old token is the one the last rotation made, expiring when it asked for.
            let last = attempt!(
                rotations::last_done(&self.db, &row.environment, &row.api_user, &row.application)
                    .await
                    .map_err(|e| AdapterError::Transient {
                        upstream: "journal",
                        detail: e.to_string()
                    })
            );
            let last_id = last.as_ref().and_then(|r| r.new_token_id.clone());
            // Else (a first rotation) the token in place now.
            let placed = current
                .as_ref()
                .map(|v| v.expose_secret().to_owned())
                .unwrap_or_default();
            old = listing
                .tokens
                .iter()
                .find(|t| Some(&t.id) == last_id.as_ref())
                .or_else(|| {
                    listing
                        .tokens
                        .iter()
                        .find(|t| !placed.is_empty() && placed.ends_with(&t.last8))
                });
            old_expiry = last.and_then(|r| r.new_token_expires_at_ms);
            adopt = None;
            deadline = None;
            if old.is_none() && !placed.is_empty() && row.old_token_id.is_none() {
                // Synoptic lists only the tokens its API key made: the token in use was made in
                // the console or with another key, so it can be neither cloned nor disabled here.
                return Step::Error(AdapterError::permanent(
                    "engine",
                    "the token in place is not among the tokens the issuer lists for this API key: it was made in the Synoptic console or with another API key (or has expired), so its settings cannot be copied and it cannot be disabled from here; replace it once by hand with a token made with this key",
                ));
            }
        }
        // Rotation replaces a token; it never creates access. A pair with no live token (an
        // alert naming any API user and application, or one whose token was revoked) is not
        // minted for, in any issuer.
        if listing.tokens.is_empty() && row.secret_name.is_none() {
            return Step::Error(AdapterError::permanent(
                "engine",
                format!(
                    "nothing to rotate: the issuer lists no live token for {:?} / {:?}; token-rotator replaces tokens and never creates access",
                    row.api_user, listing.application_name
                ),
            ));
        }
        let known: Vec<&String> = listing.tokens.iter().map(|t| &t.id).collect();
        let mut gathered = vec![
            Field::Text("known_tokens", serde_json::to_string(&known).ok()),
            Field::Text("api_user_name", Some(listing.api_user_name.clone())),
            Field::Text("application_uid", Some(listing.application_uid.clone())),
            Field::Text("secret_name", Some(placement.name.clone())),
            Field::Text("old_token_id", old.map(|t| t.id.clone())),
            Field::Int("old_token_expires_at_ms", old_expiry),
            Field::Text("old_token_last8", old.map(|t| t.last8.clone())),
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
                return Step::Error(AdapterError::Transient {
                    upstream: "journal",
                    detail: e.to_string(),
                });
            }
            if let Some(fresh) = adopt {
                return self.adopt(row, fresh, old, &placement);
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
            attempt!(issuer.recover(&target, &known_before, life, &row.id).await)
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
                        row.old_token_id.as_deref().or(old.map(|t| t.id.as_str())),
                    )
                    .await
            ),
        };
        // On a resumed step the journal already names the old token; never our new one.
        let old_id = if gathered_before {
            row.old_token_id.clone()
        } else {
            old.map(|t| t.id.clone())
        };
        if old_id.as_deref() == Some(minted.id.as_str()) {
            return Step::Error(AdapterError::permanent(
                "signon",
                "the minted token is the one recorded as old; refusing to revoke our own token",
            ));
        }
        let (print, last4, sealed) = match &minted.value {
            MintedValue::Held(value) => {
                let fp = self.keys.fingerprint(value);
                // Kept sealed until it is in the Secret, so a crash before then loses nothing.
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
        let old_text = match (gathered_before, &row.old_token_id, old) {
            (true, Some(id), _) => {
                format!("{id} (…{})", row.old_token_last8.as_deref().unwrap_or("?"))
            }
            (false, _, Some(t)) => format!("{} (…{}) expiring {}", t.id, t.last8, t.expires_at),
            _ => "none".to_owned(),
        };
        let reason = format!(
            "minted token {} (…{last4}) expiring {}; old token {old_text}; Secret {}",
            minted.id, minted.expires_at, placement.name,
        );
        let mut transition = self.transition(row, Phase::Planned, Phase::Issued, reason, ENGINE);
        transition.fields.extend(fields);
        Step::Advance(transition)
    }

    /// planned → issued without a mint: Signon already made a fresh token (its nightly renewal
    /// of internal tokens); carry that one through distribution, verification and revoking the
    /// old one, the part nothing automates today.
    fn adopt(
        &self,
        row: &RotationRow,
        fresh: &TokenInfo,
        old: Option<&TokenInfo>,
        placement: &Placement,
    ) -> Step {
        let last4: String = fresh.last8.chars().skip(4).collect();
        let reason = format!(
            "adopted token {} (…{}) that Signon made by itself, expiring {}; no mint; old token {}; Secret {}",
            fresh.id,
            fresh.last8,
            fresh.expires_at,
            old.map_or_else(|| "none".into(), |t| format!("{} (…{})", t.id, t.last8)),
            placement.name
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
                "old token stays valid until {until} ({} grace)",
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
        // Synoptic's advice: let the old token expire by itself unless told to disable it.
        let keep = self
            .adapters
            .schedule_of(row)
            .is_some_and(|s| !s.disable_old);
        let why = match (&row.old_token_id, keep) {
            (Some(id), true) => format!(
                "old token {id} left to expire by itself at {} (it was asked for then; the rule does not disable it)",
                row.old_token_expires_at_ms
                    .and_then(|ms| Timestamp::from_millisecond(ms).ok())
                    .map_or_else(|| "its expiry".to_owned(), |t| t.to_string())
            ),
            (Some(id), false) => {
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
}

/// Binds a sealed value to its rotation and role, so it cannot be swapped for another.
pub(super) fn context(row: &RotationRow, role: &str) -> String {
    format!("{}/{role}", row.id)
}
