//! One ingest pass's alerts that start nothing: they join a rotation under way, or need
//! nothing. Held and written together, before any other write; the alerts that joined one
//! rotation the same way in one pass are told in one audit line, so a flood of new alerts for a
//! target makes a line a pass in its thread, not a line an alert (each alert row still records
//! the rotation it joined).

use std::collections::HashMap;

use jiff::Timestamp;

use crate::engine::EngineError;
use crate::store::Db;
use crate::store::rotations::{self, PendingAlert, RotationRow};

/// How an alert joined a rotation under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Joined {
    /// Firing again (a new fingerprint or start) while its target rotates.
    Rotation,
    /// Firing again while its target's silence is being requested.
    SilenceRequest,
    /// Resolved after the rotation began: it carries on.
    ResolvedDuring,
}

/// Fingerprints named in one joined line; the rest are counted.
const NAMED: usize = 3;

impl Joined {
    /// The audit line for `fingerprints` (at least one), in the order they joined.
    fn note(self, fingerprints: &[String]) -> String {
        let alerts = match fingerprints {
            [one] => format!("alert {one}"),
            many if many.len() <= NAMED => format!("alerts {}", many.join(", ")),
            many => format!(
                "alerts {} and {} more",
                many[..NAMED].join(", "),
                many.len() - NAMED
            ),
        };
        match self {
            Self::Rotation => format!("{alerts} joined this rotation; no second rotation"),
            Self::SilenceRequest => format!("{alerts} joined this silence request"),
            Self::ResolvedDuring if fingerprints.len() == 1 => {
                "the alert resolved during the rotation; carrying on (the new token is live)"
                    .to_owned()
            }
            Self::ResolvedDuring => format!(
                "{alerts} resolved during the rotation; carrying on (the new token is live)"
            ),
        }
    }
}

/// The alerts that joined one rotation the same way in this pass.
struct Joins {
    rotation_id: String,
    phase: String,
    how: Joined,
    /// `alert` or `reconcile`.
    source: &'static str,
    fingerprints: Vec<String>,
    /// Where the last of them is in `Batch::handled`: the line goes with it, after the others.
    last: usize,
}

impl Joins {
    fn trigger(&self) -> String {
        let first = &self.fingerprints[0];
        match self.fingerprints.len() {
            1 => format!("{}:{first}", self.source),
            n => format!("{}:{first} (+{} more)", self.source, n - 1),
        }
    }
}

/// One ingest pass's alerts that start nothing, and the targets' active rotations as read in
/// this pass, forgotten whenever anything else is written.
#[derive(Default)]
pub(super) struct Batch {
    handled: Vec<rotations::Handled>,
    joins: Vec<Joins>,
    active: HashMap<[String; 3], Option<RotationRow>>,
}

impl Batch {
    pub(super) async fn active(
        &mut self,
        db: &Db,
        environment: &str,
        api_user: &str,
        application: &str,
    ) -> Result<Option<RotationRow>, EngineError> {
        let key = [environment, api_user, application].map(str::to_owned);
        if let Some(known) = self.active.get(&key) {
            return Ok(known.clone());
        }
        let found = rotations::active_rotation(db, environment, api_user, application).await?;
        self.active.insert(key, found.clone());
        Ok(found)
    }

    /// `alert` joins `active`, as `how`.
    pub(super) fn join(
        &mut self,
        alert: &PendingAlert,
        active: &RotationRow,
        how: Joined,
        source: &'static str,
    ) {
        let at = self.handled.len();
        self.handled.push(rotations::Handled {
            alert_id: alert.id,
            rotation_id: Some(active.id.clone()),
            note: None,
        });
        let fingerprint = alert.fingerprint.clone();
        match self.joins.iter_mut().find(|j| {
            j.rotation_id == active.id
                && j.how == how
                && j.source == source
                && j.phase == active.phase
        }) {
            Some(joins) => {
                joins.fingerprints.push(fingerprint);
                joins.last = at;
            }
            None => self.joins.push(Joins {
                rotation_id: active.id.clone(),
                phase: active.phase.clone(),
                how,
                source,
                fingerprints: vec![fingerprint],
                last: at,
            }),
        }
    }

    /// `alert` needs nothing (resolved, with nothing under way).
    pub(super) fn nothing(&mut self, alert: &PendingAlert) {
        self.handled.push(rotations::Handled {
            alert_id: alert.id,
            rotation_id: None,
            note: None,
        });
    }

    /// Writes what is held, in one transaction, before anything else is written.
    pub(super) async fn flush(&mut self, db: &Db, now: Timestamp) -> Result<(), EngineError> {
        for joins in self.joins.drain(..) {
            let line = (
                joins.phase.clone(),
                joins.how.note(&joins.fingerprints),
                joins.trigger(),
            );
            self.handled[joins.last].note = Some(line);
        }
        rotations::handle_alerts(db, &self.handled, now).await?;
        self.handled.clear();
        self.active.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprints(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("f{i:03}")).collect()
    }

    #[test]
    fn one_line_names_the_first_alerts_and_counts_the_rest() {
        assert_eq!(
            Joined::Rotation.note(&fingerprints(1)),
            "alert f000 joined this rotation; no second rotation"
        );
        assert_eq!(
            Joined::SilenceRequest.note(&fingerprints(3)),
            "alerts f000, f001, f002 joined this silence request"
        );
        assert_eq!(
            Joined::Rotation.note(&fingerprints(29)),
            "alerts f000, f001, f002 and 26 more joined this rotation; no second rotation"
        );
        assert_eq!(
            Joined::ResolvedDuring.note(&fingerprints(2)),
            "alerts f000, f001 resolved during the rotation; carrying on (the new token is live)"
        );
    }
}
