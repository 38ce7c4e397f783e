//! One rotation at a time through the minting phase per serialisation key (an issuer whose
//! tokens belong to an account, listed together): a rotation minting beside another on the same
//! account would see the other's new token in its listing, and after a lost answer could not
//! tell which is its own. The others wait in `planned`, saying for which rotation.
//!
//! Whose turn it is follows from the journal alone, so every pass (and a restarted service)
//! decides the same: a rotation that already journaled what it listed (it has begun minting)
//! keeps its turn; otherwise the oldest goes first. Shadow rotations mint nothing and take no
//! turn.

use super::{Engine, Phase};
use crate::adapters::AdapterError;
use crate::policy::Mode;
use crate::store::rotations::{self, RotationRow};

use super::row::{ENGINE, unwritten};

/// Whether a rotation takes part in the turns (it may mint).
fn mints(row: &RotationRow) -> bool {
    row.mode != Mode::Shadow.as_str()
}

/// The rotation whose turn it is among `waiting` (all sharing one key, oldest first), each as
/// its id and whether it has begun minting.
fn holder<'a>(waiting: &[(&'a str, bool)]) -> Option<&'a str> {
    waiting
        .iter()
        .find(|(_, began)| *began)
        .or_else(|| waiting.first())
        .map(|(id, _)| *id)
}

impl Engine {
    /// `Err(pending)` while another rotation sharing `row`'s issuer's serialisation key has the
    /// turn; `Ok` when `row` may mint (it has the turn, or its issuer has no key).
    pub(super) async fn my_turn(&self, row: &RotationRow) -> Result<(), AdapterError> {
        let Some(key) = self.serialisation_key(row) else {
            return Ok(());
        };
        if !mints(row) {
            return Ok(());
        }
        let planned = rotations::in_phase(&self.db, Phase::Planned.as_str())
            .await
            .map_err(unwritten)?;
        let sharing: Vec<&RotationRow> = planned
            .iter()
            .filter(|r| mints(r) && self.serialisation_key(r).as_deref() == Some(key.as_str()))
            .collect();
        let turns: Vec<(&str, bool)> = sharing
            .iter()
            .map(|r| (r.id.as_str(), r.secret_name.is_some()))
            .collect();
        match holder(&turns) {
            Some(id) if id != row.id => {
                let other = sharing.iter().find(|r| r.id == id).expect("one of them");
                Err(AdapterError::pending(
                    ENGINE,
                    format!(
                        "waiting for rotation {} ({} / {} / {}, {}) to finish minting: it uses \
                         the same {} account, where one rotation mints at a time",
                        other.id,
                        other.environment,
                        other.api_user,
                        other.application,
                        other.trigger,
                        self.adapters
                            .for_row(row)
                            .map(|u| u.issuer.name())
                            .unwrap_or("issuer"),
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    fn serialisation_key(&self, row: &RotationRow) -> Option<String> {
        self.adapters
            .for_row(row)
            .ok()
            .and_then(|up| up.issuer.serialisation_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_that_began_minting_keeps_its_turn_else_the_oldest_goes_first() {
        assert_eq!(
            holder(&[("a", false), ("b", true), ("c", false)]),
            Some("b")
        );
        assert_eq!(holder(&[("a", false), ("c", false)]), Some("a"));
        assert_eq!(holder(&[]), None);
    }
}
