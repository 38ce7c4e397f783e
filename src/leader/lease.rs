//! Election by a Kubernetes Lease, for clusters that prefer the API server's lock: the classic
//! algorithm (client-go's): renew every `L/5` with the resourceVersion read, so a racing write
//! loses with 409; a standby takes a Lease only once it has seen it unchanged for a whole `L` by
//! its own clock (no trust in clocks agreeing across nodes). Stopping releases the Lease (no
//! holder), so a rolling update hands over at once.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use tokio::sync::watch;
use tokio::time::{Instant, timeout, timeout_at};

use super::Leadership;
use crate::adapters::kubernetes::Cluster;
use crate::adapters::kubernetes::lease::LeaseWrite;
use crate::clock::Clock;
use crate::store::{Db, Pool};
use crate::telemetry::Metrics;

pub(super) struct Election {
    pub(super) leadership: Arc<Leadership>,
    pub(super) cluster: Cluster,
    pub(super) name: String,
    pub(super) db: Db,
    pub(super) lease: Duration,
    pub(super) holder: String,
    pub(super) metrics: Arc<Metrics>,
    pub(super) clock: Arc<dyn Clock>,
    /// The Lease as we last wrote it, while we hold it.
    pub(super) held: std::sync::Mutex<Option<Lease>>,
}

impl Election {
    pub(super) async fn run(self, mut stop: watch::Receiver<bool>) {
        let leadership = Arc::clone(&self.leadership);
        super::elect(&leadership, &self.metrics, self.lease, &mut stop, || {
            self.term()
        })
        .await;
        let held = self.held.lock().expect("lock never poisoned").take();
        if let Some(lease) = held {
            let release = self.cluster.write_lease_at(
                &self.name,
                Some(&lease),
                None,
                self.seconds(),
                self.clock.now(),
            );
            match timeout(self.lease / 5, release).await {
                Ok(Ok(LeaseWrite::Written(_))) => tracing::info!("released the Lease"),
                _ => tracing::warn!("could not release the Lease; it expires by itself"),
            }
        }
    }

    fn seconds(&self) -> i32 {
        i32::try_from(self.lease.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    /// This replica's clock agrees with the database's, within the time a renewal has.
    async fn clock_agrees(&self, pool: &sqlx::PgPool) -> Result<(), String> {
        let check = self.leadership.clock_agrees(pool, &*self.clock);
        timeout(self.lease / 2, check)
            .await
            .map_err(|_| "reading the database's clock timed out".to_owned())?
    }

    fn hold(&self, lease: Option<Lease>) {
        *self.held.lock().expect("lock never poisoned") = lease;
    }

    /// Wait for the Lease, lead while renewing it.
    async fn term(&self) -> Result<(), String> {
        let every = self.lease / 5;
        let Pool::Postgres(pool) = &self.db.pool else {
            return Err("a Lease elects among replicas of a PostgreSQL journal only".into());
        };
        // (resourceVersion, when we first saw it): a holder silent for a lease has gone.
        let mut seen: Option<(Option<String>, Instant)> = None;
        let lease = loop {
            // Never take the Lease with a wrong clock: holding it would keep the others out too.
            self.clock_agrees(pool).await?;
            let current = self
                .cluster
                .read_lease(&self.name)
                .await
                .map_err(|e| e.to_string())?;
            let holder = current
                .as_ref()
                .and_then(|l| l.spec.as_ref())
                .and_then(|s| s.holder_identity.clone());
            let version = current
                .as_ref()
                .and_then(|l| l.metadata.resource_version.clone());
            let free = match &holder {
                None => true,
                Some(h) if *h == self.holder => true,
                Some(_) => match &seen {
                    Some((v, since)) if *v == version => since.elapsed() >= self.lease,
                    _ => {
                        seen = Some((version, Instant::now()));
                        false
                    }
                },
            };
            if free {
                let write = self
                    .cluster
                    .write_lease_at(
                        &self.name,
                        current.as_ref(),
                        Some(&self.holder),
                        self.seconds(),
                        self.clock.now(),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                if let LeaseWrite::Written(lease) = write {
                    break *lease;
                }
            }
            tokio::time::sleep(every).await;
        };
        let mut current = lease.clone();
        self.hold(Some(lease));
        let (holder, metrics) = (&self.holder, &self.metrics);
        super::take_over(&self.leadership, pool, holder, metrics, self.lease / 2).await?;

        let mut deadline = Instant::now() + self.lease / 2;
        loop {
            tokio::time::sleep(every).await;
            // A clock gone wrong while leading: stop acting (the Lease is released on the way
            // out of the election, or expires).
            self.clock_agrees(pool).await?;
            let renew = self.cluster.write_lease_at(
                &self.name,
                Some(&current),
                Some(&self.holder),
                self.seconds(),
                self.clock.now(),
            );
            match timeout_at(deadline, renew).await {
                Ok(Ok(LeaseWrite::Written(lease))) => {
                    current = *lease;
                    self.hold(Some(current.clone()));
                    deadline = Instant::now() + self.lease / 2;
                }
                Ok(Ok(LeaseWrite::Conflict)) => {
                    self.hold(None);
                    return Err("the Lease was taken by another replica".into());
                }
                Ok(Err(e)) if Instant::now() < deadline => {
                    tracing::warn!(error = %e, "renewing the Lease failed; retrying");
                }
                Ok(Err(e)) => return Err(format!("cannot renew the Lease: {e}")),
                Err(_) => return Err(format!("no renewal of the Lease for {:?}", self.lease / 2)),
            }
        }
    }
}
