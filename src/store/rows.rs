//! Reading the journal back (the demo, `status`, tests).

use crate::store::{Db, on_pool};

use super::StoreError;

/// One journaled alert with the decision made for it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AlertRow {
    pub id: i64,
    pub delivery_id: i64,
    pub received_at_ms: i64,
    pub fingerprint: String,
    pub status: String,
    pub starts_at_ms: i64,
    pub environment: Option<String>,
    pub api_user: Option<String>,
    pub application: Option<String>,
    pub action: String,
    pub rule_index: Option<i64>,
    pub rule_name: Option<String>,
    pub action_detail: Option<String>,
    pub reason: Option<String>,
}

pub(super) async fn all_alerts(db: &Db) -> Result<Vec<AlertRow>, StoreError> {
    on_pool!(db, |pool| sqlx::query_as(
        "SELECT id, delivery_id, received_at_ms, fingerprint, status, starts_at_ms, environment, \
         api_user, application, action, rule_index, rule_name, action_detail, reason \
         FROM alerts ORDER BY id",
    )
    .fetch_all(pool)
    .await)
    .map_err(StoreError::Read)
}
