//! A replica whose clock is wrong must not act: every deadline the journal holds (a grace's end,
//! a retry, a revoke) was written by some replica's clock and is compared with this one's, so a
//! clock an hour ahead would revoke an old token an hour early. Before taking the lock and at
//! every renewal the election compares this replica's clock with the database's
//! (`clock_timestamp()`, the one clock every replica shares) and refuses to lead while they
//! differ by more than [`MAX_CLOCK_SKEW`]; `/readyz` says why.
//!
//! The election itself never compares timestamps across replicas: a standby measures a silent
//! leader by its own monotonic clock (`tokio::time::Instant`), as client-go's leaderelection does
//! (`staging/src/k8s.io/client-go/tools/leaderelection/leaderelection.go`: `observedTime` is the
//! observer's `clock.Now()` when the record last changed, and expiry is
//! `observedTime + LeaseDuration`, never the holder's `renewTime`).

use std::time::Duration;

use crate::clock::Clock;

/// How far this replica's clock may be from the database's. NTP keeps hosts within
/// milliseconds; seconds of drift already mean a broken time source.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5);

/// How every refusal for the clock begins.
pub(super) const SKEWED: &str = "clock skew";

/// The database's time, in milliseconds since the epoch, as the statement ran (not as the
/// transaction began).
const DATABASE_NOW: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// `Err` with why, when this replica's clock and the database's differ by more than the bound.
pub(super) async fn check<'c>(
    executor: impl sqlx::PgExecutor<'c>,
    clock: &dyn Clock,
) -> Result<(), String> {
    let before = clock.now().as_millisecond();
    let database: i64 = sqlx::query_scalar(DATABASE_NOW)
        .fetch_one(executor)
        .await
        .map_err(|e| format!("cannot read the database's clock: {e}"))?;
    let after = clock.now().as_millisecond();
    judge_reading(before, after, database)
}

/// The judgement of one reading of the database's clock (`database`), taken between `before`
/// and `after` by this replica's: the database answered somewhere within the round trip, so
/// it is compared with its middle.
pub(super) fn judge_reading(before: i64, after: i64, database: i64) -> Result<(), String> {
    judge(before + (after - before) / 2 - database)
}

/// `skew_ms`: this replica's clock minus the database's.
fn judge(skew_ms: i64) -> Result<(), String> {
    let bound = i64::try_from(MAX_CLOCK_SKEW.as_millis()).unwrap_or(i64::MAX);
    if skew_ms.abs() <= bound {
        return Ok(());
    }
    let direction = if skew_ms > 0 { "ahead of" } else { "behind" };
    let seconds = skew_ms.abs() as f64 / 1000.0;
    Err(format!(
        "{SKEWED}: this replica's clock is {seconds:.1}s {direction} the database's (at most \
         {}s allowed); not leading until they agree, so no deadline is reached early",
        MAX_CLOCK_SKEW.as_secs()
    ))
}

#[cfg(test)]
mod tests {
    use super::judge;

    #[test]
    fn within_the_bound_either_way_is_fine_beyond_it_says_which_way() {
        assert!(judge(0).is_ok());
        assert!(judge(5_000).is_ok());
        assert!(judge(-5_000).is_ok());
        let ahead = judge(3_600_000).unwrap_err();
        assert!(ahead.contains("3600.0s ahead of the database's"), "{ahead}");
        let behind = judge(-5_001).unwrap_err();
        assert!(behind.contains("5.0s behind"), "{behind}");
    }
}
