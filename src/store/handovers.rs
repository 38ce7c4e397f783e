//! Handovers: one-time links to a new token for an owner token-rotator cannot write to. The
//! journal keeps only the SHA-256 of a link's id: someone who reads the database (or a backup)
//! cannot collect a token with what they find there.

use crate::store::{Db, execute, on_pool};
use jiff::Timestamp;
use sha2::{Digest, Sha256};

/// What the journal keeps of a link's id.
fn stored(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

use super::StoreError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HandoverRow {
    /// The SHA-256 of the link's id, never the id.
    pub id: String,
    pub rotation_id: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub collected_at_ms: Option<i64>,
    pub confirmed_at_ms: Option<i64>,
}

/// What asking for a handover's token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collect {
    /// Yours, once: the rotation whose token it is.
    Token(String),
    Unknown,
    Expired,
    Collected(i64),
}

const COLUMNS: &str =
    "id, rotation_id, created_at_ms, expires_at_ms, collected_at_ms, confirmed_at_ms";

/// The rotation's handover under the link id `id`. A retried step (the first try's message
/// never went out: it is journaled with the step's transition) replaces a link nobody used.
pub async fn open(
    db: &Db,
    rotation_id: &str,
    id: &str,
    now: Timestamp,
    expires: Timestamp,
) -> Result<HandoverRow, StoreError> {
    execute!(
        db,
        sqlx::query(
            "INSERT INTO handovers (id, rotation_id, created_at_ms, expires_at_ms) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (rotation_id) DO UPDATE SET id = excluded.id, \
         created_at_ms = excluded.created_at_ms, expires_at_ms = excluded.expires_at_ms \
         WHERE handovers.collected_at_ms IS NULL AND handovers.confirmed_at_ms IS NULL",
        )
        .bind(stored(id))
        .bind(rotation_id)
        .bind(now.as_millisecond())
        .bind(expires.as_millisecond())
    )?;
    of_rotation(db, rotation_id)
        .await?
        .ok_or_else(|| StoreError::Read(sqlx::Error::RowNotFound))
}

pub async fn of_rotation(db: &Db, rotation_id: &str) -> Result<Option<HandoverRow>, StoreError> {
    on_pool!(db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM handovers WHERE rotation_id = $1"
    )))
    .bind(rotation_id)
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::Read)
}

async fn by_id(db: &Db, stored_id: &str) -> Result<Option<HandoverRow>, StoreError> {
    on_pool!(db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM handovers WHERE id = $1"
    )))
    .bind(stored_id)
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::Read)
}

/// Whether the token could be collected now, without collecting it (what a link scanner's GET
/// sees): `Token` when it still can be.
pub async fn peek(db: &Db, id: &str, now: Timestamp) -> Result<Collect, StoreError> {
    Ok(match by_id(db, &stored(id)).await? {
        None => Collect::Unknown,
        Some(h) => match h.collected_at_ms {
            Some(at) => Collect::Collected(at),
            None if h.expires_at_ms <= now.as_millisecond() => Collect::Expired,
            None => Collect::Token(h.rotation_id),
        },
    })
}

/// Marks the token collected, if it still can be: once, within the window.
pub async fn collect(db: &Db, id: &str, now: Timestamp) -> Result<Collect, StoreError> {
    let now_ms = now.as_millisecond();
    let taken: Option<(String,)> = on_pool!(db, |pool| sqlx::query_as(
        "UPDATE handovers SET collected_at_ms = $1 \
         WHERE id = $2 AND collected_at_ms IS NULL AND expires_at_ms > $1 RETURNING rotation_id",
    )
    .bind(now_ms)
    .bind(stored(id))
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::Write)?;
    if let Some((rotation,)) = taken {
        return Ok(Collect::Token(rotation));
    }
    Ok(match by_id(db, &stored(id)).await? {
        None => Collect::Unknown,
        Some(h) => match h.collected_at_ms {
            Some(at) => Collect::Collected(at),
            None => Collect::Expired,
        },
    })
}

/// What a confirmation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirm {
    /// Confirmed now.
    Confirmed,
    /// Confirmed before, at this time; nothing changed.
    Already(i64),
    /// Nobody has collected the token: confirming now would end the rotation and drop the only
    /// copy of a token nobody has. Nothing changed.
    NotCollected,
    Expired,
    Unknown,
}

/// The owner says the token is in place. Only a collected, unconfirmed handover within its
/// window is confirmed, and all three are checked in the one UPDATE that confirms it: a confirm
/// racing the collection can never land before it.
pub async fn confirm(db: &Db, id: &str, now: Timestamp) -> Result<Confirm, StoreError> {
    let now_ms = now.as_millisecond();
    let done = execute!(
        db,
        sqlx::query(
            "UPDATE handovers SET confirmed_at_ms = $1 \
         WHERE id = $2 AND collected_at_ms IS NOT NULL AND confirmed_at_ms IS NULL \
         AND expires_at_ms > $1",
        )
        .bind(now_ms)
        .bind(stored(id))
    )?;
    if done == 1 {
        return Ok(Confirm::Confirmed);
    }
    // Why not, read after the update (each of these only ever moves forward).
    Ok(match by_id(db, &stored(id)).await? {
        None => Confirm::Unknown,
        Some(h) => match h.confirmed_at_ms {
            Some(at) => Confirm::Already(at),
            None if h.expires_at_ms <= now_ms => Confirm::Expired,
            // Not collected when the update ran (one that landed since makes a second
            // confirm succeed).
            None => Confirm::NotCollected,
        },
    })
}
