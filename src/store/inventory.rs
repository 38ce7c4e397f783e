//! The last inventory of each environment's tokens: what the issuer listed of every user's
//! tokens, replaced whole per environment in one transaction, so a reader sees one inventory or
//! the one before it, never a mix. Never a token's value.

use jiff::Timestamp;
use sqlx::QueryBuilder;

use super::{Db, StoreError, on_pool, on_tx};

/// A SELECT of every stored column, followed by `$rest` (a literal, so the query stays static).
macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT environment, api_user, application, token_id, created_at_ms, expires_at_ms, \
             expired, newest, last8, suspended, retired, renewed_by, taken_at_ms, api_user_name, \
             application_uid FROM inventoried_tokens",
            $rest
        )
    };
}

/// How many tokens one INSERT carries (15 values each, well under SQLite's 32 766 and
/// PostgreSQL's 65 535 bound parameters).
const ROWS_PER_INSERT: usize = 1000;

/// One token as the last inventory found it. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryRow {
    pub environment: String,
    pub api_user: String,
    /// The user's display name, if the issuer reports one.
    pub api_user_name: Option<String>,
    pub application: String,
    /// The application's client id, if the issuer reports one.
    pub application_uid: Option<String>,
    pub token_id: String,
    pub created_at_ms: Option<i64>,
    /// `None`: it never expires.
    pub expires_at_ms: Option<i64>,
    pub expired: bool,
    /// `false`: superseded by a token of the same pair expiring later.
    pub newest: bool,
    pub last8: String,
    pub suspended: bool,
    pub retired: bool,
    /// Who renews the pair without token-rotator; `None`: nobody.
    pub renewed_by: Option<String>,
    pub taken_at_ms: i64,
}

/// When an environment's last inventory was taken, and how many tokens it found.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Taken {
    pub environment: String,
    pub taken_at_ms: i64,
    pub tokens: i64,
}

/// The row as stored: flags are 0 or 1 on both databases.
#[derive(sqlx::FromRow)]
struct Stored {
    environment: String,
    api_user: String,
    api_user_name: Option<String>,
    application: String,
    application_uid: Option<String>,
    token_id: String,
    created_at_ms: Option<i64>,
    expires_at_ms: Option<i64>,
    expired: i64,
    newest: i64,
    last8: String,
    suspended: i64,
    retired: i64,
    renewed_by: Option<String>,
    taken_at_ms: i64,
}

impl From<Stored> for InventoryRow {
    fn from(s: Stored) -> Self {
        Self {
            environment: s.environment,
            api_user: s.api_user,
            api_user_name: s.api_user_name,
            application: s.application,
            application_uid: s.application_uid,
            token_id: s.token_id,
            created_at_ms: s.created_at_ms,
            expires_at_ms: s.expires_at_ms,
            expired: s.expired != 0,
            newest: s.newest != 0,
            last8: s.last8,
            suspended: s.suspended != 0,
            retired: s.retired != 0,
            renewed_by: s.renewed_by,
            taken_at_ms: s.taken_at_ms,
        }
    }
}

/// Replaces `environment`'s inventory with `tokens` (their `environment` and `taken_at_ms` are
/// set from the arguments), in one transaction.
pub async fn replace(
    db: &Db,
    environment: &str,
    taken_at: Timestamp,
    tokens: &[InventoryRow],
) -> Result<(), StoreError> {
    let taken_at_ms = taken_at.as_millisecond();
    let mut tx = db.write_tx().await?;
    on_tx!(&mut tx, |conn| sqlx::query(
        "DELETE FROM inventoried_tokens WHERE environment = $1"
    )
    .bind(environment)
    .execute(&mut *conn)
    .await
    .map(drop))
    .map_err(StoreError::Write)?;
    on_tx!(&mut tx, |conn| sqlx::query(
        "INSERT INTO token_inventories (environment, taken_at_ms, tokens) VALUES ($1, $2, $3) \
         ON CONFLICT (environment) DO UPDATE SET taken_at_ms = $2, tokens = $3"
    )
    .bind(environment)
    .bind(taken_at_ms)
    .bind(tokens.len() as i64)
    .execute(&mut *conn)
    .await
    .map(drop))
    .map_err(StoreError::Write)?;
    for chunk in tokens.chunks(ROWS_PER_INSERT) {
        on_tx!(&mut tx, |conn, D| {
            let mut query = QueryBuilder::<D>::new(
                "INSERT INTO inventoried_tokens (environment, api_user, application, token_id, \
                 created_at_ms, expires_at_ms, expired, newest, last8, suspended, retired, \
                 renewed_by, taken_at_ms, api_user_name, application_uid) ",
            );
            query.push_values(chunk, |mut row, t| {
                row.push_bind(environment)
                    .push_bind(&t.api_user)
                    .push_bind(&t.application)
                    .push_bind(&t.token_id)
                    .push_bind(t.created_at_ms)
                    .push_bind(t.expires_at_ms)
                    .push_bind(i64::from(t.expired))
                    .push_bind(i64::from(t.newest))
                    .push_bind(&t.last8)
                    .push_bind(i64::from(t.suspended))
                    .push_bind(i64::from(t.retired))
                    .push_bind(&t.renewed_by)
                    .push_bind(taken_at_ms)
                    .push_bind(&t.api_user_name)
                    .push_bind(&t.application_uid);
            });
            query.build().execute(&mut *conn).await.map(drop)
        })
        .map_err(StoreError::Write)?;
    }
    tx.commit().await.map_err(StoreError::Write)
}

/// Every environment's last inventory, each token once, by environment then token id.
pub async fn last(db: &Db) -> Result<Vec<InventoryRow>, StoreError> {
    let rows: Vec<Stored> = on_pool!(db, |pool| sqlx::query_as(select!(
        " ORDER BY environment, api_user, application, token_id"
    ))
    .fetch_all(pool)
    .await)
    .map_err(StoreError::Read)?;
    Ok(rows.into_iter().map(InventoryRow::from).collect())
}

/// The tokens of `api_user` in `environment`'s last inventory, by application then token id
/// (the caller picks the application: its spelling in alerts may differ from the issuer's).
pub async fn of_user(
    db: &Db,
    environment: &str,
    api_user: &str,
) -> Result<Vec<InventoryRow>, StoreError> {
    let rows: Vec<Stored> = on_pool!(db, |pool| sqlx::query_as(select!(
        " WHERE environment = $1 AND api_user = $2 ORDER BY application, token_id"
    ))
    .bind(environment)
    .bind(api_user)
    .fetch_all(pool)
    .await)
    .map_err(StoreError::Read)?;
    Ok(rows.into_iter().map(InventoryRow::from).collect())
}

/// When each environment's last inventory was taken; empty when none ever was.
pub async fn taken(db: &Db) -> Result<Vec<Taken>, StoreError> {
    on_pool!(db, |pool| sqlx::query_as(
        "SELECT environment, taken_at_ms, tokens FROM token_inventories ORDER BY environment"
    )
    .fetch_all(pool)
    .await)
    .map_err(StoreError::Read)
}
