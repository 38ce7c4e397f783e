//! `token-rotator tokens`: every token of the last inventory in the journal (one per
//! environment, taken daily by the service), with its state and who renews it. Tokens nobody
//! renews come first (a person must rotate them or hand them over), then by expiry.

use std::fmt::Write;

use serde_json::json;

use crate::report::status::when;
use crate::store::inventory::{self, InventoryRow, Taken};
use crate::store::sweeps::{self, LastSweep};
use crate::store::{Journal, StoreError};

/// What a journal without an inventory says.
pub const NONE_TAKEN: &str = "No token inventory in the journal yet: the service takes one at \
start-up and daily, for each environment whose issuer can list every token (Signon's Jobs).";

/// The last inventory of each environment, tokens in the order they are shown.
#[derive(Debug, Clone, Default)]
pub struct Inventories {
    /// When each environment's inventory was taken; empty when none was.
    pub taken: Vec<Taken>,
    /// Unrenewed first, then by expiry (see [`ordered`]).
    pub tokens: Vec<InventoryRow>,
    /// Each environment's last sweep of superseded tokens.
    pub sweeps: Vec<LastSweep>,
}

/// The journal's last inventories, of `environment` alone when given.
pub async fn load(journal: &Journal, environment: Option<&str>) -> Result<Inventories, StoreError> {
    let pool = journal.pool();
    let keep = |e: &str| environment.is_none_or(|wanted| wanted == e);
    let mut taken = inventory::taken(pool).await?;
    taken.retain(|t| keep(&t.environment));
    let mut tokens = inventory::last(pool).await?;
    tokens.retain(|t| keep(&t.environment));
    ordered(&mut tokens);
    let mut sweeps = sweeps::last(pool).await?;
    sweeps.retain(|s| keep(&s.environment));
    Ok(Inventories {
        taken,
        tokens,
        sweeps,
    })
}

/// Tokens nothing will renew first, then the soonest to expire (one that never expires last),
/// then by environment, user, application and id so that the order is stable.
pub fn ordered(tokens: &mut [InventoryRow]) {
    tokens.sort_by(|a, b| {
        let key = |t: &InventoryRow| {
            (
                t.renewed_by.is_some(),
                t.expires_at_ms.is_none(),
                t.expires_at_ms,
            )
        };
        key(a).cmp(&key(b)).then_with(|| {
            (&a.environment, &a.api_user, &a.application, &a.token_id).cmp(&(
                &b.environment,
                &b.api_user,
                &b.application,
                &b.token_id,
            ))
        })
    });
}

/// `expired` (past its expiry, never revoked), `superseded` (its pair has a token expiring
/// later: consumers are given that one), or `live`.
pub fn state(token: &InventoryRow) -> &'static str {
    if token.expired {
        "expired"
    } else if !token.newest {
        "superseded"
    } else {
        "live"
    }
}

/// Who renews the token's pair without token-rotator, or `nobody`.
pub fn renewer(token: &InventoryRow) -> &str {
    token.renewed_by.as_deref().unwrap_or("nobody")
}

/// What else a person should know: the user is suspended, the application retired.
pub fn notes(token: &InventoryRow) -> String {
    let mut notes = Vec::new();
    if token.suspended {
        notes.push("user suspended");
    }
    if token.retired {
        notes.push("application retired");
    }
    notes.join(", ")
}

/// "in 12 d", "3 h ago", "now", "never": what a glance needs (the absolute time is beside it).
pub fn relative(at_ms: Option<i64>, now_ms: i64) -> String {
    let Some(at_ms) = at_ms else {
        return "never".to_owned();
    };
    let d = (at_ms - now_ms) / 1000;
    let abs = d.unsigned_abs();
    if abs < 60 {
        return "now".to_owned();
    }
    let span = span(abs);
    if d >= 0 {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

/// A length of time at a glance: days past two days, else hours past one, else minutes.
pub fn span(seconds: u64) -> String {
    if seconds >= 2 * 86_400 {
        format!("{} d", seconds / 86_400)
    } else if seconds >= 3600 {
        format!("{} h", seconds / 3600)
    } else {
        format!("{} min", seconds / 60)
    }
}

/// The expiry as people read it: relative, then absolute (UTC).
pub fn expires(token: &InventoryRow, now_ms: i64) -> String {
    match token.expires_at_ms {
        Some(at) => format!("{} ({} UTC)", relative(Some(at), now_ms), when(Some(at))),
        None => "never".to_owned(),
    }
}

/// When each environment's inventory was taken, one line each.
pub fn taken_lines(taken: &[Taken], now_ms: i64) -> String {
    let mut out = String::new();
    for t in taken {
        let _ = writeln!(
            out,
            "{}: inventory taken {} UTC ({}), {} token(s)",
            t.environment,
            when(Some(t.taken_at_ms)),
            relative(Some(t.taken_at_ms), now_ms),
            t.tokens
        );
    }
    out
}

/// What an environment's last sweep did, as one sentence after its name.
pub fn sweep_line(sweep: &LastSweep, now_ms: i64) -> String {
    match (&sweep.outcome, sweep.finished_at_ms) {
        (Some(outcome), Some(at)) => format!(
            "last sweep {} (finished {} UTC, {}): {outcome}",
            sweep.day,
            when(Some(at)),
            relative(Some(at), now_ms)
        ),
        _ => format!(
            "sweep of {} not finished (under way, or the first day the service saw the environment, which sweeps nothing)",
            sweep.day
        ),
    }
}

pub fn table(inventories: &Inventories, now_ms: i64) -> String {
    if inventories.taken.is_empty() {
        return format!("{NONE_TAKEN}\n");
    }
    let mut out = taken_lines(&inventories.taken, now_ms);
    for sweep in &inventories.sweeps {
        let _ = writeln!(out, "{}: {}", sweep.environment, sweep_line(sweep, now_ms));
    }
    let _ = writeln!(
        out,
        "\n{:<12} {:<38} {:<22} {:<8} {:<8} {:<36} {:<10} {:<16} notes",
        "environment", "api_user", "application", "id", "last8", "expires", "state", "renewed by",
    );
    for t in &inventories.tokens {
        let _ = writeln!(
            out,
            "{:<12} {:<38} {:<22} {:<8} {:<8} {:<36} {:<10} {:<16} {}",
            t.environment,
            t.api_user,
            t.application,
            t.token_id,
            t.last8,
            expires(t, now_ms),
            state(t),
            renewer(t),
            notes(t)
        );
    }
    out
}

pub fn json(inventories: &Inventories, now_ms: i64) -> serde_json::Value {
    let taken: Vec<_> = inventories
        .taken
        .iter()
        .map(|t| {
            json!({
                "environment": t.environment,
                "taken_at_ms": t.taken_at_ms,
                "tokens": t.tokens,
            })
        })
        .collect();
    let tokens: Vec<_> = inventories
        .tokens
        .iter()
        .map(|t| {
            json!({
                "environment": t.environment,
                "api_user": t.api_user,
                "application": t.application,
                "id": t.token_id,
                "last8": t.last8,
                "created_at_ms": t.created_at_ms,
                "expires_at_ms": t.expires_at_ms,
                "expires": relative(t.expires_at_ms, now_ms),
                "state": state(t),
                "renewed_by": t.renewed_by,
                "api_user_suspended": t.suspended,
                "application_retired": t.retired,
            })
        })
        .collect();
    let swept: Vec<_> = inventories
        .sweeps
        .iter()
        .map(|s| {
            json!({
                "environment": s.environment,
                "day": s.day,
                "outcome": s.outcome,
                "finished_at_ms": s.finished_at_ms,
            })
        })
        .collect();
    json!({"inventories": taken, "sweeps": swept, "tokens": tokens})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(id: &str, expires_at_ms: Option<i64>, renewed: bool) -> InventoryRow {
        InventoryRow {
            environment: "production".into(),
            api_user: "a@alphagov.co.uk".into(),
            api_user_name: None,
            application: "app".into(),
            application_uid: None,
            token_id: id.into(),
            created_at_ms: None,
            expires_at_ms,
            expired: false,
            newest: true,
            last8: "abcdefgh".into(),
            suspended: false,
            retired: false,
            renewed_by: renewed.then(|| "Signon (nightly)".into()),
            taken_at_ms: 0,
        }
    }

    #[test]
    fn tokens_nobody_renews_come_first_then_by_expiry() {
        let mut tokens = vec![
            token("1", Some(5_000), true),
            token("2", None, false),
            token("3", Some(9_000), false),
            token("4", Some(1_000), true),
            token("5", Some(7_000), false),
        ];
        ordered(&mut tokens);
        let ids: Vec<&str> = tokens.iter().map(|t| t.token_id.as_str()).collect();
        assert_eq!(ids, ["5", "3", "2", "4", "1"]);
    }

    #[test]
    fn a_token_is_expired_superseded_or_live() {
        let mut t = token("1", Some(1), false);
        assert_eq!(state(&t), "live");
        t.newest = false;
        assert_eq!(state(&t), "superseded");
        t.expired = true;
        assert_eq!(state(&t), "expired");
        assert_eq!(relative(Some(3 * 86_400_000), 0), "in 3 d");
        assert_eq!(relative(Some(0), 7_200_000), "2 h ago");
        assert_eq!(relative(None, 0), "never");
    }
}
