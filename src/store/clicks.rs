//! Slack button clicks as the journal keeps them: who pressed what on which request, what came
//! of it, the words the clicker alone was shown, and how those words reached them. A click that
//! changes nothing leaves no audit row, so without this a refused or late click would leave no
//! trace but a log line. Nothing secret is in a click or its answer.

use jiff::Timestamp;

use super::{Db, StoreError, on_pool, on_tx};

/// One click, as the interactions endpoint journals it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClickRow {
    pub id: i64,
    pub at_ms: i64,
    /// The button's value: a rotation id, or whatever a stale button carried.
    pub rotation_id: String,
    pub user_id: String,
    pub user_name: String,
    pub action: String,
    pub outcome: String,
    pub answer: String,
    /// `response_url`, `chat.postEphemeral`, `undelivered: …`; `None` while on its way.
    pub answered_by: Option<String>,
}

/// A click about to be journaled.
pub struct NewClick<'a> {
    pub rotation_id: &'a str,
    pub user_id: &'a str,
    pub user_name: &'a str,
    pub action: &'a str,
    pub outcome: &'a str,
    pub answer: &'a str,
}

/// Journals `click` at `now`; its id, for [`answered`].
pub async fn record(db: &Db, click: &NewClick<'_>, now: Timestamp) -> Result<i64, StoreError> {
    let mut tx = db.write_tx().await?;
    let (id,): (i64,) = on_tx!(&mut tx, |conn| sqlx::query_as(
        "INSERT INTO slack_clicks (at_ms, rotation_id, user_id, user_name, action, outcome, answer) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(now.as_millisecond())
    .bind(click.rotation_id)
    .bind(click.user_id)
    .bind(click.user_name)
    .bind(click.action)
    .bind(click.outcome)
    .bind(click.answer)
    .fetch_one(&mut *conn)
    .await)
    .map_err(StoreError::Write)?;
    tx.commit().await.map_err(StoreError::Write)?;
    Ok(id)
}

/// Notes how the answer to click `id` reached its clicker, or why it did not.
pub async fn answered(db: &Db, id: i64, by: &str) -> Result<(), StoreError> {
    let mut tx = db.write_tx().await?;
    on_tx!(&mut tx, |conn| sqlx::query(
        "UPDATE slack_clicks SET answered_by = $1 WHERE id = $2"
    )
    .bind(by)
    .bind(id)
    .execute(&mut *conn)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::Write)?;
    tx.commit().await.map_err(StoreError::Write)
}

/// Every click journaled, oldest first.
pub async fn all(db: &Db) -> Result<Vec<ClickRow>, StoreError> {
    on_pool!(db, |pool| sqlx::query_as(
        "SELECT id, at_ms, rotation_id, user_id, user_name, action, outcome, answer, answered_by \
         FROM slack_clicks ORDER BY id",
    )
    .fetch_all(pool)
    .await)
    .map_err(StoreError::Read)
}
