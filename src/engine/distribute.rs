//! From a new token to consumers running on it, and back when it does not work: issued →
//! distributed (the token placed, written or synced by the issuer, read back), distributed →
//! rolled_out (every Deployment that reads it rolled), rolled_out → verified (the verifier and
//! the application's own probe accept it), and rolling_back → rolled_back. Every sentence about
//! a placement or a check comes from the distributor or verifier that did it.

use secrecy::SecretString;

use super::row::{
    ENGINE, baseline, context, holds, journal, millis, permit, placement, target, unwritten,
};
use super::{Engine, Phase, Step};
use crate::adapters::{AdapterError, Distributor, Placement};
use crate::store::rotations::{Field, RotationRow};

impl Engine {
    /// Before a distributor that runs the issuer's sync makes its Job for `key`: journal that it is
    /// asked for (write-ahead), or, if the journal says so already, tell the distributor, so
    /// that a Job gone since (the CronJob's history limit) is a failure, not made again.
    async fn before_sync(
        &self,
        row: &RotationRow,
        distributor: &dyn Distributor,
        key: &str,
    ) -> Result<(), AdapterError> {
        if !distributor.syncs_from_issuer() {
            return Ok(());
        }
        if row.sync_requested.as_deref() == Some(key) {
            distributor.started_before(key);
            return Ok(());
        }
        let field = Field::Text("sync_requested", Some(key.to_owned()));
        crate::store::rotations::record(&self.db, &row.id, &row.phase, &[field], self.clock.now())
            .await
            .map_err(unwritten)
    }

    /// issued → distributed. Places the new token unless it is there already (a Job applied it,
    /// or the issuer's own sync did), then reads it back and compares.
    pub(super) async fn distribute(&self, row: &RotationRow) -> Step {
        if let Some(h) = self
            .adapters
            .schedule_of(row)
            .and_then(|s| s.handover.clone())
        {
            return self.hand_over(row, &h.owner, h.window).await;
        }
        // A person chose to have it handed to them: the value goes to them, not to a consumer.
        if let Some(h) = super::asked::hand_to(row) {
            let sealed = attempt!(self.value_to_hand_over(row).await);
            let mut step = self.hand_over(row, &h.owner, h.window).await;
            if let (Some(field), Step::Advance(transition)) = (sealed, &mut step) {
                transition.fields.push(field);
            }
            return step;
        }
        let permit = attempt!(permit(row));
        let placement = attempt!(placement(row));
        let print = attempt!(
            row.new_token_fingerprint
                .clone()
                .ok_or_else(|| journal("no fingerprint of the new token"))
        );
        let up = attempt!(self.adapters.for_row(row));
        let now = attempt!(up.distributor.read(&placement).await);
        let there = now.as_ref().is_some_and(|v| holds(&self.keys, v, &print));
        let how = if there {
            "was already there"
        } else {
            let value = match &row.new_token_sealed {
                Some(sealed) => Some(attempt!(
                    self.keys
                        .open(sealed, &context(row, "new"))
                        .map_err(|e| journal(&e.to_string()))
                )),
                None => None,
            };
            attempt!(
                self.before_sync(row, up.distributor.as_ref(), &row.id)
                    .await
            );
            // Forward, the issuer's sync writes the new token itself (it is the longest-lived).
            let value = value.filter(|_| !up.distributor.syncs_from_issuer());
            attempt!(
                up.distributor
                    .place(&permit, &placement, value.as_ref(), &row.id)
                    .await
            );
            up.distributor.placed_how()
        };
        let found = attempt!(
            self.expect_placed(row, up.distributor.as_ref(), &placement)
                .await
        );
        // Where Reloader does not roll a consumer (not installed, or the Deployment lacks its
        // annotation), restart it as `kubectl rollout restart` does; the stamp is the
        // rotation's, so a retried step changes nothing twice.
        if let (Some(deployments), Some(baseline)) = (&up.deployments, baseline(row))
            && baseline.changed
            && !deployments.to_restart(&baseline).is_empty()
        {
            attempt!(deployments.restart(&permit, &baseline, &row.id).await);
        }
        let mut transition = self.transition(
            row,
            Phase::Issued,
            Phase::Distributed,
            format!(
                "{} holds the new token (it {how}; read back and compared)",
                up.distributor.describe(&placement)
            ),
            ENGINE,
        );
        transition.fields.extend([
            Field::Blob("new_token_sealed", None),
            Field::Text(
                "new_token_fingerprint",
                Some(self.keys.fingerprint(&found).hmac),
            ),
            Field::Int("distributed_at_ms", millis(self.clock.now())),
        ]);
        Step::Advance(transition)
    }

    /// distributed → rolled_out, once every Deployment that reads the placement has rolled onto
    /// it as `kubectl rollout status` judges; rolls back when the Deployment controller says
    /// `ProgressDeadlineExceeded` (or a consumer is paused), and otherwise only past
    /// `max_wait_seconds`, the longest a rollout that keeps progressing can take (a slow
    /// rollout that progresses is healthy, and its new pods already use the new token).
    pub(super) async fn await_rollout(&self, row: &RotationRow) -> Step {
        let up = attempt!(self.adapters.for_row(row));
        let (Some(deployments), Some(baseline)) = (&up.deployments, baseline(row)) else {
            return Step::Advance(self.transition(
                row,
                Phase::Distributed,
                Phase::RolledOut,
                "no rollout check configured: on to verification".into(),
                ENGINE,
            ));
        };
        let state = attempt!(deployments.check(&baseline, baseline.changed).await);
        let names: Vec<&String> = baseline.generations.keys().collect();
        if state.waiting.is_empty() {
            let why = match (names.is_empty(), baseline.changed) {
                (true, _) => "no Deployment reads it".to_owned(),
                (false, true) => format!("rolled onto the new token: {names:?}"),
                (false, false) => format!("already running the new token: {names:?}"),
            };
            return Step::Advance(self.transition(
                row,
                Phase::Distributed,
                Phase::RolledOut,
                why,
                ENGINE,
            ));
        }
        if !state.exceeded.is_empty() {
            return Step::Error(AdapterError::permanent(
                "kubernetes",
                format!("rollout stuck: {}", state.exceeded.join("; ")),
            ));
        }
        let since = row.distributed_at_ms.unwrap_or(row.updated_at_ms);
        let elapsed = (self.clock.now().as_millisecond() - since) / 1000;
        // A deadline of our own, past the longest a rollout can take without the controller
        // giving its verdict: no verdict by then means none is coming (its controller is not
        // running, or it was paused after the restart), and waiting on would keep the old
        // token alive with no one told.
        if elapsed > state.max_wait_seconds {
            return Step::Error(AdapterError::permanent(
                "kubernetes",
                format!(
                    "rollout of {:?} did not finish within {} s ({elapsed} s since the Secret changed; progressDeadlineSeconds {} per step of the rollout) and the Deployment controller gave no verdict: not waiting longer",
                    state.waiting, state.max_wait_seconds, state.deadline_seconds
                ),
            ));
        }
        let mut waiting = format!("waiting for {:?} to roll out", state.waiting);
        if elapsed > state.deadline_seconds {
            waiting.push_str(&format!(
                " ({elapsed} s, past progressDeadlineSeconds {}; giving up at {} s)",
                state.deadline_seconds, state.max_wait_seconds
            ));
        }
        Step::Error(AdapterError::pending("kubernetes", waiting))
    }

    /// Reads the placement back and checks it holds our new token; returns the value.
    async fn expect_placed(
        &self,
        row: &RotationRow,
        distributor: &dyn Distributor,
        placement: &Placement,
    ) -> Result<SecretString, AdapterError> {
        let what = distributor.describe(placement);
        let value = distributor.read(placement).await?.ok_or_else(|| {
            AdapterError::permanent(distributor.upstream(), format!("{what} is missing"))
        })?;
        let print = row.new_token_fingerprint.as_deref().unwrap_or_default();
        if !holds(&self.keys, &value, print) {
            return Err(AdapterError::permanent(
                distributor.upstream(),
                format!(
                    "{what} holds token …{}, not the new token",
                    self.keys.fingerprint(&value).last4
                ),
            ));
        }
        Ok(value)
    }

    /// rolled_out → verified. The verifier must accept what is placed (as the consumer will use
    /// it), and so must the application's probe URL when one is configured.
    pub(super) async fn verify(&self, row: &RotationRow) -> Step {
        let placement = attempt!(placement(row));
        let up = attempt!(self.adapters.for_row(row));
        let handed = self
            .adapters
            .schedule_of(row)
            .is_some_and(|s| s.handover.is_some())
            || super::asked::hand_to(row).is_some();
        let value = if handed {
            // Handed over, not placed: the journal's sealed copy is the token.
            let sealed = attempt!(
                row.new_token_sealed
                    .as_ref()
                    .ok_or_else(|| journal("the handed-over token was not kept"))
            );
            attempt!(
                self.keys
                    .open(sealed, &context(row, "new"))
                    .map_err(|e| journal(&e.to_string()))
            )
        } else {
            attempt!(
                self.expect_placed(row, up.distributor.as_ref(), &placement)
                    .await
            )
        };
        let target = attempt!(target(row));
        let uid = row.application_uid.clone().unwrap_or_default();
        let mut why = attempt!(up.verifier.verify(&target, &uid, &value).await);
        if let Some(url) = self.settings.probe(&row.application) {
            attempt!(up.verifier.probe(url, &value).await);
            why.push_str(&format!("; the application's probe {url} answers 2xx"));
        }
        let mut transition = self.transition(row, Phase::RolledOut, Phase::Verified, why, ENGINE);
        transition.fields.extend([
            Field::Int("verified_at_ms", millis(self.clock.now())),
            Field::Blob("new_token_sealed", None),
        ]);
        Step::Advance(transition)
    }

    /// rolling_back → rolled_back: the old token back in place (written back, or the issuer's
    /// sync re-run once the new token is revoked), the new one revoked (unless the issuer made
    /// it by itself),
    /// and the consumers rolled back onto the old one. The old token stays alive.
    pub(super) async fn roll_back(&self, row: &RotationRow) -> Step {
        let permit = attempt!(permit(row));
        let target = attempt!(target(row));
        let up = attempt!(self.adapters.for_row(row));
        let mut done = Vec::new();
        let revoke_new = |done: &mut Vec<String>| {
            if row.adopted == 0
                && let Some(new) = &row.new_token_id
            {
                done.push(format!("new token {new} revoked"));
                return Some(new.clone());
            }
            None
        };
        let placement = placement(row).ok();
        let old_print = row.old_secret_fingerprint.clone();
        let restored = match (&placement, &old_print) {
            (Some(p), Some(print)) => {
                attempt!(up.distributor.read(p).await).is_some_and(|v| holds(&self.keys, &v, print))
            }
            _ => true,
        };
        // Before the old token goes back: the consumers as they are, to await their rollout.
        let mut rollback_baseline = baseline(row).filter(|b| b.rollback);
        if let (false, Some(p), Some(deployments)) = (restored, &placement, &up.deployments) {
            let mut taken = attempt!(deployments.baseline(&p.name).await);
            taken.rollback = true;
            let field = Field::Text("rollout_baseline", serde_json::to_string(&taken).ok());
            let pool = &self.db;
            let now = self.clock.now();
            if let Err(e) =
                crate::store::rotations::record(pool, &row.id, &row.phase, &[field], now).await
            {
                return Step::Error(AdapterError::Transient {
                    upstream: "journal",
                    detail: e.to_string(),
                });
            }
            rollback_baseline = Some(taken);
        }
        // The old token goes back first; the new one is revoked only once the consumers are
        // back on the old one, so no pod loses the token it runs on in between.
        let mut revoke_first = false;
        if let (true, Some(p), Some(_)) = (restored, &placement, &old_print) {
            // Written back by an earlier pass of this step (which then waited on the consumers).
            done.push(format!(
                "{} holds the old token again",
                up.distributor.describe(p)
            ));
        }
        if let (false, Some(p)) = (restored, &placement) {
            match &row.old_secret_sealed {
                Some(sealed) => {
                    let old = attempt!(
                        self.keys
                            .open(sealed, &context(row, "old"))
                            .map_err(|e| journal(&e.to_string()))
                    );
                    attempt!(up.distributor.place(&permit, p, Some(&old), &row.id).await);
                    done.push(format!(
                        "{} holds the old token again",
                        up.distributor.describe(p)
                    ));
                }
                // Nothing kept to write back (it was empty before): only the issuer's sync
                // can put a token there, the longest-lived live one, so the new one dies first.
                None if up.distributor.syncs_from_issuer() => {
                    revoke_first = true;
                    if let Some(new) = revoke_new(&mut done) {
                        attempt!(up.issuer.revoke(&permit, &target, &new, &row.id).await);
                    }
                    let key = format!("{}/rollback", row.id);
                    attempt!(self.before_sync(row, up.distributor.as_ref(), &key).await);
                    attempt!(up.distributor.place(&permit, p, None, &key).await);
                    done.push(format!(
                        "{}'s sync put the old token back in {}",
                        up.issuer.name(),
                        up.distributor.describe(p)
                    ));
                }
                None => {}
            }
        }
        if row.adopted != 0 {
            done.push(format!(
                "the adopted token was left to {} (not ours to revoke)",
                up.issuer.name()
            ));
        }
        // Wait for the consumers to roll back onto the old token (restarted where Reloader does
        // not roll them), within their deadline; past it, or stuck, end anyway (the old token
        // stays alive either way) and say so.
        if let (Some(deployments), Some(b)) = (&up.deployments, &rollback_baseline) {
            if !deployments.to_restart(b).is_empty() {
                let stamp = format!("{}/rollback", row.id);
                attempt!(deployments.restart(&permit, b, &stamp).await);
            }
            let state = attempt!(deployments.check(b, true).await);
            if state.waiting.is_empty() {
                if !b.generations.is_empty() {
                    done.push(format!(
                        "{:?} rolled back onto the old token",
                        b.generations.keys()
                    ));
                }
            } else {
                let since = self.clock.now().as_millisecond() - row.updated_at_ms;
                if since / 1000 <= state.deadline_seconds && state.exceeded.is_empty() {
                    return Step::Error(AdapterError::pending(
                        "kubernetes",
                        format!(
                            "waiting for {:?} to roll back onto the old token",
                            state.waiting
                        ),
                    ));
                }
                let why = if state.exceeded.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", state.exceeded.join("; "))
                };
                done.push(format!(
                    "{:?} did not finish rolling back within {} s{why}; look at them",
                    state.waiting, state.deadline_seconds
                ));
            }
        }
        if !revoke_first && let Some(new) = revoke_new(&mut done) {
            attempt!(up.issuer.revoke(&permit, &target, &new, &row.id).await);
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
