//! Which Slack thread a new rotation is told in, and finding or making that thread as the
//! rotation is journaled: the one write about threads that starting a rotation needs, kept apart
//! so that the journal of rotations does not depend on how threads are read and told.

use crate::store::{WriteTx, on_tx};

use super::StoreError;

/// Which thread a new rotation is told in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadKey {
    /// The webhook delivery that brought the alert; `None` for a command-line rotation, which
    /// gets a thread of its own.
    pub delivery_id: Option<i64>,
    pub channel: String,
}

/// The thread of `key`, made if it is the first rotation of its delivery in that channel.
pub(super) async fn thread_for(
    tx: &mut WriteTx<'_>,
    key: &ThreadKey,
    now_ms: i64,
) -> Result<i64, StoreError> {
    if key.delivery_id.is_some() {
        let found: Option<(i64,)> = on_tx!(tx, |conn| sqlx::query_as(
            "SELECT id FROM slack_threads WHERE delivery_id = $1 AND channel = $2"
        )
        .bind(key.delivery_id)
        .bind(&key.channel)
        .fetch_optional(&mut *conn)
        .await)
        .map_err(StoreError::Write)?;
        if let Some((id,)) = found {
            return Ok(id);
        }
    }
    let (id,): (i64,) = on_tx!(tx, |conn| sqlx::query_as(
        "INSERT INTO slack_threads (delivery_id, channel, created_at_ms) VALUES ($1, $2, $3) \
         RETURNING id",
    )
    .bind(key.delivery_id)
    .bind(&key.channel)
    .bind(now_ms)
    .fetch_one(&mut *conn)
    .await)
    .map_err(StoreError::Write)?;
    Ok(id)
}
