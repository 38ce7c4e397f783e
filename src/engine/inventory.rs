//! The daily inventory: every token each served environment's issuer still honours or reports,
//! of every user, expired ones included. An issuer may renew some tokens by itself and revoke
//! none, so tokens pile up that no alert explains: the journal keeps the last inventory of each
//! environment, whole, for `token-rotator tokens` and the status page to say which tokens nobody
//! renews, which are dead but never revoked, and which were superseded. Taken at start-up (of
//! leading) and once a day; it only reads.

use std::sync::Arc;
use std::time::Duration;

use super::{Engine, EngineError};
use crate::adapters::{AdapterError, InventoriedToken, Inventory, Issuer};
use crate::store::inventory::{self, InventoryRow};

/// How often the inventories are taken again after the one at start-up.
pub const TAKE_EVERY: Duration = Duration::from_secs(24 * 3600);
/// How long taking one may take: a Job waits for a node and its image to start.
const TAKE_BUDGET: Duration = Duration::from_secs(15 * 60);

impl Engine {
    /// Takes each served environment's inventory once: one per issuer (environments served by
    /// one issuer are given the same inventory), journaled per environment, each replacing the
    /// last. An issuer that cannot list everything is skipped; one that fails keeps the
    /// environment's last inventory, and the failure is logged. Returns how many environments'
    /// inventories were journaled.
    pub async fn take_inventories(&self) -> Result<usize, EngineError> {
        let mut issuers: Vec<(Arc<dyn Issuer>, Vec<String>)> = Vec::new();
        for environment in self.settings.modes.keys() {
            let Ok(upstreams) = self.adapters.upstreams(environment) else {
                continue;
            };
            match issuers
                .iter_mut()
                .find(|(issuer, _)| Arc::ptr_eq(issuer, &upstreams.issuer))
            {
                Some((_, environments)) => environments.push(environment.clone()),
                None => issuers.push((Arc::clone(&upstreams.issuer), vec![environment.clone()])),
            }
        }
        let mut taken = 0;
        for (issuer, environments) in issuers {
            let served = environments.join(", ");
            // Job names are short hashes of this key: one Job per issuer and day.
            let key = format!("inventory-{}/{served}", self.clock.now().as_second());
            let inventory = match self.take_one(issuer.as_ref(), &key).await {
                Ok(Some(inventory)) => inventory,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(environments = %served, error = %e, "{}'s inventory could not be taken; the last one stays", issuer.name());
                    continue;
                }
            };
            let now = self.clock.now();
            let rows: Vec<InventoryRow> = inventory.tokens.iter().map(row).collect();
            for environment in &environments {
                inventory::replace(&self.db, environment, now, &rows).await?;
                taken += 1;
            }
            let unrenewed = rows
                .iter()
                .filter(|r| r.renewed_by.is_none() && !r.expired)
                .count();
            tracing::info!(environments = %served, tokens = rows.len(), unrenewed, "{}'s inventory taken", issuer.name());
        }
        Ok(taken)
    }

    /// One inventory, waited for: a Job runs for a while (asked again every `poll`, as a step
    /// is), up to [`TAKE_BUDGET`]. A transient failure (a slow API server) is asked again
    /// within the same budget: the next chance would otherwise be a day away.
    pub(super) async fn take_one(
        &self,
        issuer: &dyn Issuer,
        key: &str,
    ) -> Result<Option<Inventory>, AdapterError> {
        let started = std::time::Instant::now();
        loop {
            match issuer.inventory(key).await {
                Err(AdapterError::Pending { upstream, detail })
                    if started.elapsed() < TAKE_BUDGET =>
                {
                    tracing::debug!(upstream, %detail, "inventory under way");
                    tokio::time::sleep(self.settings.poll).await;
                }
                Err(e) if e.is_transient() && started.elapsed() < TAKE_BUDGET => {
                    tracing::warn!(error = %e, "the inventory will be asked again");
                    tokio::time::sleep(self.settings.poll).await;
                }
                other => return other,
            }
        }
    }
}

/// The journal's row of a token (its environment and time are set when it is written).
pub(super) fn row(token: &InventoriedToken) -> InventoryRow {
    InventoryRow {
        environment: String::new(),
        api_user: token.api_user.clone(),
        api_user_name: token.api_user_name.clone(),
        application: token.application.clone(),
        application_uid: token.application_uid.clone(),
        token_id: token.id.clone(),
        created_at_ms: token.created_at.map(|t| t.as_millisecond()),
        expires_at_ms: token.expires_at.map(|t| t.as_millisecond()),
        expired: token.expired,
        newest: token.newest,
        last8: token.last8.clone(),
        suspended: token.suspended,
        retired: token.retired,
        renewed_by: token.renewed_by.clone(),
        taken_at_ms: 0,
    }
}

/// The token a journal row records (the reverse of [`row`]).
pub(super) fn token(row: &InventoryRow) -> InventoriedToken {
    let at = |ms: Option<i64>| ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok());
    InventoriedToken {
        api_user: row.api_user.clone(),
        api_user_name: row.api_user_name.clone(),
        application: row.application.clone(),
        application_uid: row.application_uid.clone(),
        id: row.token_id.clone(),
        created_at: at(row.created_at_ms),
        expires_at: at(row.expires_at_ms),
        expired: row.expired,
        newest: row.newest,
        last8: row.last8.clone(),
        suspended: row.suspended,
        retired: row.retired,
        renewed_by: row.renewed_by.clone(),
    }
}
