//! What a step reads from its rotation's journal row: the target, the placement, the gate for
//! changes, sealed values' contexts and how a token the journal never held is recognised. Shared
//! by every phase's module, so that none of them imports another.

use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::adapters::kubernetes::Baseline;
use crate::adapters::{AdapterError, Permit, Placement};
use crate::domain::{ApiUser, Application, Environment, Target};
use crate::policy::Mode;
use crate::secrets::Keys;
use crate::store::rotations::RotationRow;

/// The trigger of transitions the engine makes by itself.
pub(super) const ENGINE: &str = "engine";

/// How the journal knows a new token it never held: its SHA-256 (a Job minted it) or its last 8
/// characters (adopted: the issuer made it by itself). Once the token is found where it is
/// placed, the journal keeps the keyed HMAC of what is there instead, as for a token it held.
pub(super) const SHA256: &str = "sha256:";
pub(super) const LAST8: &str = "last8:";

pub(super) fn target(row: &RotationRow) -> Result<Target, AdapterError> {
    let bad = |e: crate::domain::EmptyValue| AdapterError::permanent("journal", e.to_string());
    Ok(Target {
        environment: Environment::parse(&row.environment).map_err(bad)?,
        api_user: ApiUser::parse(&row.api_user).map_err(bad)?,
        application: Application::parse(&row.application).map_err(bad)?,
    })
}

/// Where the new token goes, as the first step journaled it (`secret_name` is the column's old
/// name; it holds any distributor's placement).
pub(super) fn placement(row: &RotationRow) -> Result<Placement, AdapterError> {
    row.secret_name
        .clone()
        .map(|name| Placement { name })
        .ok_or_else(|| journal("no placement recorded"))
}

/// The gate: a mutation only for a rotation created active. An unreadable mode counts as shadow.
pub(super) fn permit(row: &RotationRow) -> Result<Permit, AdapterError> {
    Permit::for_mode(Mode::parse(&row.mode).unwrap_or(Mode::Shadow))
}

pub(super) fn millis(t: Timestamp) -> Option<i64> {
    Some(t.as_millisecond())
}

/// A time as the journal's reasons and Slack show it: to the second, in UTC.
pub(super) fn when(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// " expiring <when>" for a journaled expiry, or nothing when the issuer did not say.
pub(super) fn expiring(ms: Option<i64>) -> String {
    ms.and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .map_or_else(String::new, |t| format!(" expiring {}", when(t)))
}

/// A token as people recognise it: its id and, when the issuer shows any, its last characters.
pub(super) fn token(id: &str, last: &str) -> String {
    if last.is_empty() {
        id.to_owned()
    } else {
        format!("{id} (…{last})")
    }
}

/// Binds a sealed value to its rotation and role, so it cannot be swapped for another.
pub(super) fn context(row: &RotationRow, role: &str) -> String {
    format!("{}/{role}", row.id)
}

/// Whether `value` is the token `print` names.
pub(super) fn holds(keys: &Keys, value: &SecretString, print: &str) -> bool {
    if let Some(hex) = print.strip_prefix(SHA256) {
        hex::encode(Sha256::digest(value.expose_secret().as_bytes())) == hex
    } else if let Some(last8) = print.strip_prefix(LAST8) {
        value.expose_secret().ends_with(last8)
    } else {
        keys.fingerprint(value).hmac == print
    }
}

/// The journal does not hold what a step needs: retrying cannot help.
pub(super) fn journal(detail: &str) -> AdapterError {
    AdapterError::permanent("journal", detail.to_owned())
}

/// A journal write that failed: worth another try.
pub(super) fn unwritten(e: crate::store::StoreError) -> AdapterError {
    AdapterError::Transient {
        upstream: "journal",
        detail: e.to_string(),
    }
}

/// The consumers as they were before the token changed, journaled by the first step.
pub(super) fn baseline(row: &RotationRow) -> Option<Baseline> {
    serde_json::from_str(row.rollout_baseline.as_deref()?).ok()
}

/// The rule's `ask` settings journaled with the rotation, if it asks.
pub(crate) fn ask_of(row: &RotationRow) -> Option<crate::policy::Ask> {
    let detail: serde_json::Value = serde_json::from_str(row.action_detail.as_deref()?).ok()?;
    let ask = &detail["ask"];
    Some(crate::policy::Ask {
        handover_window: humantime::parse_duration(ask["handover_window"].as_str()?).ok()?,
        old_token: serde_json::from_value(ask["old_token"].clone()).ok()?,
    })
}
