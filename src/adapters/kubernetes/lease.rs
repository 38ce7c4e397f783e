//! The Lease a replica holds to lead, when leader election is `kubernetes`: read, create, and
//! update with the resourceVersion read, so two replicas racing for it cannot both win.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{PostParams, Resource};

use super::Cluster;
use crate::adapters::AdapterError;

/// Whether a write took effect.
pub enum LeaseWrite {
    Written(Box<Lease>),
    /// Someone else wrote first (409): read again.
    Conflict,
}

impl Cluster {
    pub async fn read_lease(&self, name: &str) -> Result<Option<Lease>, AdapterError> {
        let api = self.api::<Lease>(&self.namespace);
        self.timed(&format!("get leases/{name}"), api.get_opt(name))
            .await
    }

    /// Creates the Lease held by `holder`, or updates `current` (read before) to be held by
    /// `holder` (`None`: released), renewed now.
    pub async fn write_lease(
        &self,
        name: &str,
        current: Option<&Lease>,
        holder: Option<&str>,
        duration_seconds: i32,
    ) -> Result<LeaseWrite, AdapterError> {
        let now = jiff::Timestamp::now();
        self.write_lease_at(name, current, holder, duration_seconds, now)
            .await
    }

    /// As [`write_lease`](Self::write_lease), renewed at `now` by the writer's clock. Nobody
    /// judges the Lease by these times (a standby measures silence by its own clock); they are
    /// for people reading it.
    pub async fn write_lease_at(
        &self,
        name: &str,
        current: Option<&Lease>,
        holder: Option<&str>,
        duration_seconds: i32,
        now: jiff::Timestamp,
    ) -> Result<LeaseWrite, AdapterError> {
        let api = self.api::<Lease>(&self.namespace);
        let now = Some(MicroTime(now));
        let before = current.and_then(|l| l.spec.clone()).unwrap_or_default();
        let taken_over = before.holder_identity.as_deref() != holder;
        let spec = LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            lease_duration_seconds: Some(duration_seconds),
            acquire_time: if taken_over {
                now.clone()
            } else {
                before.acquire_time
            },
            renew_time: now,
            lease_transitions: Some(
                before.lease_transitions.unwrap_or(0) + i32::from(taken_over && holder.is_some()),
            ),
            ..LeaseSpec::default()
        };
        let params = PostParams::default();
        let written = match current {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.to_owned()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                let call = async { api.create(&params, &lease).await };
                self.timed(&format!("create leases/{name}"), conflict_is_ok(call))
                    .await?
            }
            Some(current) => {
                let mut lease = current.clone();
                lease.spec = Some(spec);
                // The resourceVersion read stays in: the API server refuses the write if the
                // Lease changed since.
                lease.meta_mut().managed_fields = None;
                let call = async { api.replace(name, &params, &lease).await };
                self.timed(&format!("update leases/{name}"), conflict_is_ok(call))
                    .await?
            }
        };
        Ok(match written {
            Some(lease) => LeaseWrite::Written(Box::new(lease)),
            None => LeaseWrite::Conflict,
        })
    }
}

/// 409 Conflict (or AlreadyExists) as `None`: lost a race, not an error.
async fn conflict_is_ok(
    call: impl Future<Output = Result<Lease, kube::Error>>,
) -> Result<Option<Lease>, kube::Error> {
    match call.await {
        Ok(lease) => Ok(Some(lease)),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(None),
        Err(e) => Err(e),
    }
}
