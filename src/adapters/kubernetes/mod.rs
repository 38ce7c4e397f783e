//! The cluster: the Secret a consumer reads its token from, the Jobs that run Signon's scripts
//! and its sync CronJob, and the Deployments that must roll onto a new token.
//!
//! kube's built-in retry is off (it would retry 429/5xx for minutes, under our own retries) and
//! every call has a timeout: the engine owns retrying, with its journaled backoff. Errors name
//! the object and the verb; for 403 the permission that is missing, for an admission policy's
//! denial the policy and its message.

mod jobs;
pub mod lease;
mod rollout;
mod secret;
mod sync;

use std::time::Duration;

pub use jobs::{
    CONTROLLER_UID, CreatedJobs, JobOutcome, JobTemplate, REFUSED_BY, Run, job_exists, jobs_name,
    run_job,
};
pub use rollout::{Baseline, Deployments, RolloutState};
pub use secret::{FIELD_MANAGER, ROTATION_ANNOTATION, SecretDistributor, TOKEN_KEY};
pub use sync::SyncDistributor;

use super::{AdapterError, Observer};

pub(crate) const UPSTREAM: &str = "kubernetes";

/// `kubernetes.max_jobs` unless set.
pub const DEFAULT_MAX_JOBS: usize = 4;

/// A client for one namespace of one cluster, with the timeout and metrics every call gets.
#[derive(Clone)]
pub struct Cluster {
    client: kube::Client,
    namespace: String,
    observer: Observer,
    timeout: Duration,
    /// The Jobs this process runs at once in this cluster (shared by every clone).
    job_slots: jobs::JobSlots,
}

impl Cluster {
    /// The API server at `url` (tests, the demo, or `kubectl proxy`).
    pub fn for_url(url: &str, namespace: &str, timeout: Duration) -> Result<Self, String> {
        let uri = url
            .parse()
            .map_err(|e| format!("kubernetes url {url:?}: {e}"))?;
        let mut config = kube::Config::new(uri);
        config.default_namespace = namespace.to_owned();
        Self::from_config(config, namespace, timeout)
    }

    /// In-cluster service account or kubeconfig, as kubectl would find them.
    pub async fn inferred(namespace: &str, timeout: Duration) -> Result<Self, String> {
        let config = kube::Config::infer()
            .await
            .map_err(|e| format!("no Kubernetes configuration: {e}"))?;
        Self::from_config(config, namespace, timeout)
    }

    fn from_config(
        mut config: kube::Config,
        namespace: &str,
        timeout: Duration,
    ) -> Result<Self, String> {
        config.default_retry = false;
        config.read_timeout = Some(timeout);
        let client =
            kube::Client::try_from(config).map_err(|e| format!("kubernetes client: {e}"))?;
        Ok(Self {
            client,
            namespace: namespace.to_owned(),
            observer: Observer::default(),
            timeout,
            job_slots: jobs::JobSlots::new(DEFAULT_MAX_JOBS),
        })
    }

    /// At most `max` of the Jobs this process makes run at once (`kubernetes.max_jobs`): each
    /// boots Rails against Signon's database, so a burst of rotations must not start hundreds.
    pub fn with_max_jobs(mut self, max: usize) -> Self {
        self.job_slots = jobs::JobSlots::new(max);
        self
    }

    pub fn observed(mut self, observer: Observer) -> Self {
        self.observer = observer;
        self
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn api<K>(&self, namespace: &str) -> kube::Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        kube::Api::namespaced(self.client.clone(), namespace)
    }

    /// One call, timed and classified; `what` names the verb and object for errors
    /// (`create jobs/token-rotator-mint-…`).
    async fn timed<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, AdapterError> {
        let timed = async {
            match tokio::time::timeout(self.timeout, call).await {
                Ok(result) => result.map_err(|e| classify(what, e)),
                Err(_) => Err(AdapterError::Transient {
                    upstream: UPSTREAM,
                    detail: format!("{what} timed out after {:?}", self.timeout),
                }),
            }
        };
        self.observer.time(UPSTREAM, timed).await
    }
}

impl Cluster {
    /// A CronJob as JSON (its `jobTemplate` is what Jobs are made from).
    pub(crate) async fn cronjob(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<serde_json::Value, AdapterError> {
        let api = self.api::<k8s_openapi::api::batch::v1::CronJob>(namespace);
        let cronjob = self
            .timed(&format!("get cronjobs/{name}"), api.get(name))
            .await?;
        serde_json::to_value(&cronjob)
            .map_err(|e| AdapterError::permanent(UPSTREAM, format!("cronjobs/{name}: {e}")))
    }

    /// As [`Cluster::timed`], but the API statuses in `tolerated` are an answer (`None`), not
    /// an error: a pod log is 400 while its container waits to start and 404 once it is gone.
    async fn timed_tolerating<T>(
        &self,
        what: &str,
        tolerated: &[u16],
        call: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<Option<T>, AdapterError> {
        let call = async {
            match call.await {
                Ok(value) => Ok(Some(value)),
                Err(kube::Error::Api(status)) if tolerated.contains(&status.code) => {
                    tracing::debug!(what, code = status.code, message = %status.message, "tolerated");
                    Ok(None)
                }
                Err(e) => Err(e),
            }
        };
        self.timed(what, call).await
    }
}

/// A ValidatingAdmissionPolicy's denial, as the API server words it whatever the status
/// (`<resource> "<name>" is forbidden: ValidatingAdmissionPolicy '<policy>' with binding
/// '<binding>' denied request: <message>`, 422 Invalid unless the policy's validation names
/// another reason, such as 403 Forbidden: `Dispatch` in
/// k8s.io/apiserver/pkg/admission/plugin/policy/validating/dispatcher.go): the policy and its
/// message. Not a missing RBAC permission: RBAC allowed the request, the policy refused it.
fn admission_denial(message: &str) -> Option<(&str, &str)> {
    let (_, rest) = message.split_once("ValidatingAdmissionPolicy '")?;
    let (policy, rest) = rest.split_once('\'')?;
    let (_, denial) = rest.split_once(" denied request: ")?;
    Some((policy, denial))
}

/// What went wrong, named: the verb and object; for 403 the permission to grant, for an
/// admission policy's refusal the policy and why.
fn classify(what: &str, error: kube::Error) -> AdapterError {
    match error {
        // An error answer kube could not read as a Status (a proxy's or a load balancer's plain
        // text 502/503) arrives with code 0: unknown, so worth another try, never "permanent".
        kube::Error::Api(status) if status.code == 0 => AdapterError::Transient {
            upstream: UPSTREAM,
            detail: format!(
                "{what}: an error answer that is not a Kubernetes Status: {}",
                status.message
            ),
        },
        kube::Error::Api(status) => {
            // Whole, unlike other answers' bodies (cut to a snippet): the policy's message says
            // what to change, and is the policy author's, not any body an upstream sends.
            if let Some((policy, message)) = admission_denial(&status.message) {
                let message: String = message.chars().take(1000).collect();
                return AdapterError::Permanent {
                    upstream: UPSTREAM,
                    detail: format!(
                        "HTTP {}: {what}: refused by admission policy {policy}: {message}",
                        status.code
                    ),
                };
            }
            let detail = match status.code {
                403 => format!(
                    "{what}: forbidden: the ServiceAccount lacks this permission (RBAC: verb and resource as named here): {}",
                    status.message
                ),
                404 => format!("{what}: not found: {}", status.message),
                409 => format!("{what}: conflict: {}", status.message),
                422 => format!("{what}: invalid: {}", status.message),
                _ => format!("{what}: {} {}", status.reason, status.message),
            };
            AdapterError::from_status(UPSTREAM, status.code, &detail)
        }
        // Anything below HTTP (connection, TLS, a body we cannot read) may pass.
        other => AdapterError::Transient {
            upstream: UPSTREAM,
            detail: format!("{what}: {other}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16, reason: &str, message: &str) -> kube::Error {
        let status = serde_json::json!({"status": "Failure", "code": code, "reason": reason, "message": message});
        kube::Error::Api(Box::new(serde_json::from_value(status).unwrap()))
    }

    #[test]
    fn a_policys_denial_names_the_policy_whatever_its_status_and_rbac_names_the_permission() {
        let denial = "jobs.batch \"x-1\" is forbidden: ValidatingAdmissionPolicy 'p' with \
                      binding 'b' denied request: Jobs run Signon's image";
        // 422 Invalid by default; 403 where the policy's validation says `reason: Forbidden`.
        for (code, reason) in [(422, "Invalid"), (403, "Forbidden")] {
            let error = classify("create jobs/x-1", api_error(code, reason, denial));
            assert_eq!(
                error.to_string(),
                format!(
                    "kubernetes: HTTP {code}: create jobs/x-1: refused by admission policy p: Jobs run Signon's image"
                )
            );
            assert!(!error.to_string().contains("permission"));
        }
        let rbac = "jobs.batch is forbidden: User \"system:serviceaccount:token-rotator:token-rotator\" \
                    cannot create resource \"jobs\" in API group \"batch\" in the namespace \"apps\"";
        let error = classify("create jobs/x-1", api_error(403, "Forbidden", rbac));
        assert!(
            error.to_string().contains("lacks this permission"),
            "{error}"
        );
    }
}
