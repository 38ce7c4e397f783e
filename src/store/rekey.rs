//! Re-sealing what the journal holds sealed with the current key, so a previous sealing key
//! can be retired (`token-rotator rekey`): the rotations' tokens and the direct messages still
//! waiting to be sent. A value is replaced only if it is still the one
//! read: a rotation that moved on meanwhile (and cleared or replaced it) is left alone.

use super::outbox::DirectBody;
use super::{Db, StoreError, execute, on_pool};
use crate::secrets::{Keys, OpenError};

/// What a pass did: values re-sealed, already current, or that no key opens.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rekeyed {
    pub resealed: u64,
    pub current: u64,
    pub unopenable: u64,
}

/// The sealed columns and the role each is sealed for (the context is `<rotation id>/<role>`).
const SEALED: [(&str, &str); 2] = [("new_token_sealed", "new"), ("old_secret_sealed", "old")];

pub async fn rekey(db: &Db, keys: &Keys) -> Result<Rekeyed, StoreError> {
    let mut done = Rekeyed::default();
    for (column, role) in SEALED {
        let rows: Vec<(String, Vec<u8>)> =
            on_pool!(db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT id, {column} FROM rotations WHERE {column} IS NOT NULL"
            )))
            .fetch_all(pool)
            .await)
            .map_err(StoreError::Read)?;
        for (id, sealed) in rows {
            if keys.is_current(&sealed) {
                done.current += 1;
                continue;
            }
            let context = format!("{id}/{role}");
            let value = match keys.open(&sealed, &context) {
                Ok(value) => value,
                Err(OpenError) => {
                    tracing::error!(rotation_id = %id, column, "no key opens this sealed value; left as it is");
                    done.unopenable += 1;
                    continue;
                }
            };
            let resealed = keys.seal(&value, &context);
            done.resealed += execute!(
                db,
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE rotations SET {column} = $1 WHERE id = $2 AND {column} = $3"
                )))
                .bind(resealed)
                .bind(&id)
                .bind(&sealed)
            )?;
        }
    }
    rekey_direct(db, keys, &mut done).await?;
    Ok(done)
}

/// Direct messages not yet sent (a handover link waiting for Slack) are sealed too.
async fn rekey_direct(db: &Db, keys: &Keys, done: &mut Rekeyed) -> Result<(), StoreError> {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    let rows: Vec<(i64, Option<String>, String)> = on_pool!(db, |pool| sqlx::query_as(
        "SELECT id, rotation_id, body FROM notifications \
         WHERE kind = 'direct' AND next_attempt_at_ms IS NOT NULL"
    )
    .fetch_all(pool)
    .await)
    .map_err(StoreError::Read)?;
    for (id, rotation_id, body) in rows {
        let Ok(mut direct) = serde_json::from_str::<DirectBody>(&body) else {
            continue;
        };
        let Ok(sealed) = STANDARD.decode(&direct.sealed) else {
            done.unopenable += 1;
            continue;
        };
        if keys.is_current(&sealed) {
            done.current += 1;
            continue;
        }
        let context = DirectBody::context(rotation_id.as_deref().unwrap_or_default());
        let Ok(value) = keys.open(&sealed, &context) else {
            tracing::error!(
                notification = id,
                "no key opens this direct message; left as it is"
            );
            done.unopenable += 1;
            continue;
        };
        direct.sealed = STANDARD.encode(keys.seal(&value, &context));
        let resealed = serde_json::to_string(&direct).expect("two strings serialize");
        done.resealed += execute!(
            db,
            sqlx::query("UPDATE notifications SET body = $1 WHERE id = $2 AND body = $3")
                .bind(resealed)
                .bind(id)
                .bind(&body)
        )?;
    }
    Ok(())
}
