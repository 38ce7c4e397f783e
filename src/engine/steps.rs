//! One function per phase. Each reads what it needs from the journal row and the world, makes
//! at most one kind of external change (idempotent by the rotation id), and says where to go.

use jiff::Timestamp;
use secrecy::SecretString;

use super::{Engine, Phase, Step};
use crate::adapters::parameterize::secret_name;
use crate::adapters::{AdapterError, Permit, Placement};
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

fn placement(row: &RotationRow) -> Result<Placement, AdapterError> {
    row.secret_name
        .clone()
        .map(|name| Placement { name })
        .ok_or_else(|| AdapterError::permanent("journal", "no Secret name recorded"))
}

/// The gate: a mutation only for a rotation created active. An unreadable mode counts as shadow.
pub(super) fn permit(row: &RotationRow) -> Result<Permit, AdapterError> {
    Permit::for_mode(Mode::parse(&row.mode).unwrap_or(Mode::Shadow))
}

fn millis(t: Timestamp) -> Option<i64> {
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
            Phase::Distributed => Step::Advance(self.transition(
                row,
                phase,
                Phase::RolledOut,
                "no rollout check yet: passing straight to verification".into(),
                ENGINE,
            )),
            Phase::RolledOut => self.verify(row).await,
            Phase::Verified => self.start_grace(row),
            Phase::Grace => self.revoke_old(row).await,
            Phase::Revoked => {
                let why = match &row.old_token_id {
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
            // Terminal phases are never due; nothing to do.
            _ => Step::Error(AdapterError::permanent(
                "journal",
                format!("{phase} is not a step"),
            )),
        }
    }

    /// planned → issued. Gathers the old token and the Secret's current value (read-only),
    /// then mints with the rotation id as idempotency key: a resumed step gets the same token.
    async fn mint(&self, row: &RotationRow) -> Step {
        let target = attempt!(target(row));
        let up = attempt!(self.adapters.upstreams(&row.environment));
        let issuer = &up.issuer;
        let listing = attempt!(issuer.list(&target).await);
        let placement = Placement {
            name: secret_name(&listing.api_user_name, &listing.application_name),
        };
        let current = attempt!(up.distributor.read(&placement).await);
        // The live token that expires last: the one the alert is about. Journaled before the
        // mint, so the mint's retries already know their deadline.
        let old = listing.tokens.iter().max_by_key(|t| t.expires_at);
        let deadline = old.map(|t| t.expires_at - self.settings.safety_margin);
        let mut gathered = vec![
            Field::Text("api_user_name", Some(listing.api_user_name.clone())),
            Field::Text("application_uid", Some(listing.application_uid.clone())),
            Field::Text("secret_name", Some(placement.name.clone())),
            Field::Text("old_token_id", old.map(|t| t.id.clone())),
            Field::Int(
                "old_token_expires_at_ms",
                old.and_then(|t| millis(t.expires_at)),
            ),
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
        // `secret_name` marks a step that got this far before: keep what it journaled then.
        let gathered_before = row.secret_name.is_some();
        if !gathered_before {
            // First try only: a resumed step must not take our own new token for the old one.
            let pool = self.journal.pool();
            if let Err(e) =
                rotations::record(pool, &row.id, &row.phase, &gathered, self.clock.now()).await
            {
                return Step::Error(AdapterError::Transient {
                    upstream: "journal",
                    detail: e.to_string(),
                });
            }
        }
        let minted = attempt!(
            issuer
                .mint(
                    &attempt!(permit(row)),
                    &target,
                    self.settings.token_life,
                    &row.id
                )
                .await
        );
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
        let new_fp = self.keys.fingerprint(&minted.value);
        let fields = vec![
            Field::Text("new_token_id", Some(minted.id.clone())),
            Field::Int("new_token_expires_at_ms", millis(minted.expires_at)),
            Field::Text("new_token_fingerprint", Some(new_fp.hmac.clone())),
            Field::Text("new_token_last4", Some(new_fp.last4.clone())),
            // Kept sealed until it is in the Secret, so a crash before then loses nothing.
            Field::Blob(
                "new_token_sealed",
                Some(self.keys.seal(&minted.value, &context(row, "new"))),
            ),
        ];
        let old_text = match (gathered_before, &row.old_token_id, old) {
            (true, Some(id), _) => {
                format!("{id} (…{})", row.old_token_last8.as_deref().unwrap_or("?"))
            }
            (false, _, Some(t)) => format!("{} (…{}) expiring {}", t.id, t.last8, t.expires_at),
            _ => "none".to_owned(),
        };
        let reason = format!(
            "minted token {} (…{}) expiring {}; old token {}; Secret {}",
            minted.id, new_fp.last4, minted.expires_at, old_text, placement.name,
        );
        let mut transition = self.transition(row, Phase::Planned, Phase::Issued, reason, ENGINE);
        transition.fields.extend(fields);
        Step::Advance(transition)
    }

    /// issued → distributed. Writes the new token to the Secret, reads it back, compares.
    async fn distribute(&self, row: &RotationRow) -> Step {
        let permit = attempt!(permit(row));
        let placement = attempt!(placement(row));
        let Some(sealed) = &row.new_token_sealed else {
            return Step::Error(AdapterError::permanent(
                "journal",
                "the new token was not kept",
            ));
        };
        let value = attempt!(
            self.keys
                .open(sealed, &context(row, "new"))
                .map_err(|e| AdapterError::permanent("journal", e.to_string()))
        );
        let up = attempt!(self.adapters.upstreams(&row.environment));
        attempt!(
            up.distributor
                .write(&permit, &placement, &value, &row.id)
                .await
        );
        attempt!(self.expect_in_secret(row, &placement).await);
        let mut transition = self.transition(
            row,
            Phase::Issued,
            Phase::Distributed,
            format!(
                "Secret {} holds the new token (read back and compared)",
                placement.name
            ),
            ENGINE,
        );
        transition
            .fields
            .push(Field::Blob("new_token_sealed", None));
        Step::Advance(transition)
    }

    /// Reads the Secret and checks it holds our new token; returns the value.
    async fn expect_in_secret(
        &self,
        row: &RotationRow,
        placement: &Placement,
    ) -> Result<SecretString, AdapterError> {
        let read = self
            .adapters
            .upstreams(&row.environment)?
            .distributor
            .read(placement)
            .await?;
        let value = read.ok_or_else(|| {
            AdapterError::permanent(
                "kubernetes",
                format!("Secret {} is missing after the write", placement.name),
            )
        })?;
        let found = self.keys.fingerprint(&value);
        if Some(&found.hmac) != row.new_token_fingerprint.as_ref() {
            return Err(AdapterError::permanent(
                "kubernetes",
                format!(
                    "Secret {} holds token …{}, not the new token",
                    placement.name, found.last4
                ),
            ));
        }
        Ok(value)
    }

    /// rolled_out → verified. Signon must accept what the Secret holds, as gds-sso would.
    async fn verify(&self, row: &RotationRow) -> Step {
        let placement = attempt!(placement(row));
        let value = attempt!(self.expect_in_secret(row, &placement).await);
        let uid = row.application_uid.clone().unwrap_or_default();
        let up = attempt!(self.adapters.upstreams(&row.environment));
        attempt!(up.signon.verify(&uid, &row.api_user, &value).await);
        let mut transition = self.transition(
            row,
            Phase::RolledOut,
            Phase::Verified,
            "Signon accepts the new token for this API user and application (GET /user.json)"
                .into(),
            ENGINE,
        );
        transition
            .fields
            .push(Field::Int("verified_at_ms", millis(self.clock.now())));
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
        if let Some(old) = &row.old_token_id {
            let target = attempt!(target(row));
            let up = attempt!(self.adapters.upstreams(&row.environment));
            attempt!(up.issuer.revoke(&permit, &target, old).await);
        }
        let why = match &row.old_token_id {
            Some(id) => format!("revoked old token {id}"),
            None => "no old token to revoke".into(),
        };
        Step::Advance(self.transition(row, Phase::Grace, Phase::Revoked, why, ENGINE))
    }

    /// rolling_back → rolled_back: the old token back in the Secret, the new one revoked.
    async fn roll_back(&self, row: &RotationRow) -> Step {
        let permit = attempt!(permit(row));
        let target = attempt!(target(row));
        let up = attempt!(self.adapters.upstreams(&row.environment));
        let mut done = Vec::new();
        if let (Some(sealed), Ok(placement)) = (&row.old_secret_sealed, placement(row)) {
            let old = attempt!(
                self.keys
                    .open(sealed, &context(row, "old"))
                    .map_err(|e| AdapterError::permanent("journal", e.to_string()))
            );
            attempt!(
                up.distributor
                    .write(&permit, &placement, &old, &row.id)
                    .await
            );
            done.push(format!(
                "Secret {} holds the old token again",
                placement.name
            ));
        }
        if let Some(new) = &row.new_token_id {
            attempt!(up.issuer.revoke(&permit, &target, new).await);
            done.push(format!("new token {new} revoked"));
        }
        let cause = row
            .outcome
            .clone()
            .or(row.last_error.clone())
            .unwrap_or_default();
        let reason = format!("{cause}; {}", done.join("; "));
        Step::Advance(self.transition(row, Phase::RollingBack, Phase::RolledBack, reason, ENGINE))
    }
}

/// Binds a sealed value to its rotation and role, so it cannot be swapped for another.
fn context(row: &RotationRow, role: &str) -> String {
    format!("{}/{role}", row.id)
}
