//! What the scrape-time gauges show, read from the journal in one go.

use std::collections::{BTreeSet, HashSet};

use crate::store::{Db, on_pool};
use jiff::Timestamp;

use super::StoreError;
use crate::domain::target_key;
use crate::phase::Phase;
use crate::telemetry::{JournalSnapshot, TargetLabels};

/// Per-target series of targets in environments no inventory was ever taken of (the issuer
/// cannot list its tokens, or has not yet): at most this many, the longest-firing first, since
/// anyone who can reach Alertmanager could otherwise add a series per label set they invent.
pub const MAX_UNLISTED_TARGETS: usize = 100;

fn target((environment, api_user, application): (String, String, String)) -> TargetLabels {
    TargetLabels {
        environment,
        api_user,
        application,
    }
}

pub async fn read(db: &Db, now: Timestamp) -> Result<JournalSnapshot, StoreError> {
    let now_ms = now.as_millisecond();
    let active: Vec<(String, i64, i64)> = on_pool!(db, |pool| sqlx::query_as(
        "SELECT phase, COUNT(*), MIN(updated_at_ms) FROM rotations \
         WHERE next_attempt_at_ms IS NOT NULL GROUP BY phase",
    )
    .fetch_all(pool)
    .await)
    .map_err(StoreError::Read)?;
    let slack_queue: i64 = on_pool!(db, |pool| sqlx::query_scalar(
        "SELECT COUNT(*) FROM notifications WHERE delivered_at_ms IS NULL"
    )
    .fetch_one(pool)
    .await)
    .map_err(StoreError::Read)?;
    let expiries: Vec<(String, String, String, i64)> = on_pool!(db, |pool| {
        sqlx::query_as(
        "SELECT environment, api_user, application, MAX(new_token_expires_at_ms) FROM rotations \
         WHERE phase = 'done' AND new_token_expires_at_ms IS NOT NULL \
         GROUP BY environment, api_user, application",
    )
    .fetch_all(pool).await
    })
    .map_err(StoreError::Read)?;
    // The first alert of each target's firing episode: firing alerts newer than its last resolve.
    // Routed targets only: a series per label set anyone can send would grow without bound.
    // Each target's last resolve is found once (a correlated NOT EXISTS per firing alert was
    // quadratic in a target's alerts: seconds per scrape at 20 000 of them).
    let first_seen: Vec<(String, String, String, i64)> = on_pool!(db, |pool| sqlx::query_as(
        "SELECT f.environment, f.api_user, f.application, MIN(f.received_at_ms) FROM alerts f \
         LEFT JOIN (SELECT environment, api_user, application, MAX(id) AS last_resolve \
           FROM alerts WHERE status = 'resolved' GROUP BY environment, api_user, application) r \
         ON r.environment = f.environment AND r.api_user = f.api_user \
           AND r.application = f.application \
         WHERE f.status = 'firing' AND f.action <> 'unroutable' \
         AND f.environment IS NOT NULL AND f.api_user IS NOT NULL \
         AND f.application IS NOT NULL AND (r.last_resolve IS NULL OR f.id > r.last_resolve) \
         GROUP BY f.environment, f.api_user, f.application",
    )
    .fetch_all(pool)
    .await)
    .map_err(StoreError::Read)?;
    let last_success: Option<i64> = on_pool!(db, |pool| sqlx::query_scalar(
        "SELECT MAX(finished_at_ms) FROM rotations WHERE phase = 'done'"
    )
    .fetch_one(pool)
    .await)
    .map_err(StoreError::Read)?;
    let taken: BTreeSet<String> = super::inventory::taken(db)
        .await?
        .into_iter()
        .map(|t| t.environment)
        .collect();
    let schedules = super::schedules::all(db).await?;
    let seconds = |ms: i64| ms as f64 / 1000.0;
    let mut expiring_by_week = [0i64; crate::telemetry::EXPIRY_WEEKS];
    // Every token the issuers listed, where an inventory was taken (it holds the rotations' new
    // tokens too, and the ones nobody renews); else the tokens of finished rotations.
    let inventoried = super::inventory::last(db).await?;
    let counted: Vec<i64> = if inventoried.is_empty() {
        expiries.iter().map(|(_, _, _, at)| *at).collect()
    } else {
        inventoried.iter().filter_map(|t| t.expires_at_ms).collect()
    };
    let (first_seen, unlisted_targets) = only_listed(first_seen, &taken, &inventoried);
    for at in &counted {
        // Already expired counts in the first week: it needs a rotation soonest.
        let week = ((at - now_ms).max(0) / (7 * 86_400_000)) as usize;
        if let Some(n) = expiring_by_week.get_mut(week) {
            *n += 1;
        }
    }
    let last_sweep = super::sweeps::last(db)
        .await?
        .into_iter()
        .filter_map(|s| Some((s.environment, seconds(s.finished_at_ms?))))
        .collect();
    Ok(JournalSnapshot {
        last_sweep,
        expiring_by_week,
        next_rotation: schedules
            .into_iter()
            .map(|(name, due)| (name, seconds(due)))
            .collect(),
        active: active
            .into_iter()
            .filter_map(|(phase, count, oldest)| {
                let phase = Phase::parse(&phase)?.as_str();
                Some((phase, count, seconds(now_ms - oldest)))
            })
            .collect(),
        slack_queue,
        token_expiry: expiries
            .into_iter()
            .map(|(e, u, a, at)| (target((e, u, a)), seconds(at)))
            .collect(),
        alert_first_seen: first_seen
            .into_iter()
            .map(|(e, u, a, at)| (target((e, u, a)), seconds(at)))
            .collect(),
        last_success: last_success.map(seconds),
        unlisted_targets,
    })
}

/// The firing targets that get a series of their own: in an environment whose issuer listed its
/// tokens, only those it listed (an invented target has no token there); elsewhere the
/// [`MAX_UNLISTED_TARGETS`] longest firing. Also says how many were left out.
fn only_listed(
    firing: Vec<(String, String, String, i64)>,
    taken: &BTreeSet<String>,
    inventoried: &[super::inventory::InventoryRow],
) -> (Vec<(String, String, String, i64)>, i64) {
    // Compared as single flight compares them: the issuer's spelling and the alert's may differ.
    let listed: HashSet<String> = inventoried
        .iter()
        .map(|t| target_key(&t.environment, &t.api_user, &t.application))
        .collect();
    let (inventoried_envs, mut elsewhere): (Vec<_>, Vec<_>) = firing
        .into_iter()
        .partition(|(environment, ..)| taken.contains(environment));
    let before = inventoried_envs.len() + elsewhere.len();
    let mut kept: Vec<_> = inventoried_envs
        .into_iter()
        .filter(|(e, u, a, _)| listed.contains(&target_key(e, u, a)))
        .collect();
    elsewhere.sort_by_key(|(.., first_seen)| *first_seen);
    elsewhere.truncate(MAX_UNLISTED_TARGETS);
    kept.extend(elsewhere);
    let left_out = (before - kept.len()) as i64;
    (kept, left_out)
}
