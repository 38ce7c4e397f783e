//! The shipped ValidatingAdmissionPolicies (`deploy/kubernetes/base/admission-policy.yaml`),
//! evaluated with a CEL interpreter as the API server would: against every write the Kubernetes
//! simulator received in the full rotation paths (each must be admitted; the simulator also
//! enforces them there, see [`enforce`]), and against the writes someone holding
//! token-rotator's ServiceAccount token could make with the same RBAC (each must be denied,
//! with the policy's message): `secrets`, `jobs`, `deployments`. `enforced` holds the
//! simulator's answer to a denial and the adapter's words for it.
//!
//! As the API server does (kubernetes.io/docs/reference/access-authn-authz/
//! validating-admission-policy/, and `Dispatch` in k8s.io/apiserver/pkg/admission/plugin/
//! policy/validating/dispatcher.go): a policy judges a write only if a `resourceRules` entry
//! and its binding (namespace, `objectSelector`) match; the binding's parameter is looked up
//! next (missing with `parameterNotFoundAction: Deny`: denied, before any matchConditions);
//! then every `matchConditions` expression must hold; `variables` are there under
//! `variables.<name>` (computed lazily there; here, one that cannot be computed for this object
//! is left out, so an expression that needs it errs); an expression that errs counts as a
//! denial (`failurePolicy: Fail`); the first failed validation's message is the answer.

mod deployments;
mod enforced;
mod job_code;
mod job_reach;
mod jobs;
mod policies;
mod secrets;

use std::sync::Arc;

use serde_json::{Value, json};
use token_rotator::sim::kubernetes::{Admission, Denial, KubernetesSim};

pub(crate) use policies::{Policy, denials, shipped};

use crate::rbac::full_paths;

pub(crate) const SERVICE_ACCOUNT: &str = "system:serviceaccount:token-rotator:token-rotator";
pub(crate) const LEAST_PRIVILEGE: &str = "token-rotator-least-privilege";
pub(crate) const JOBS: &str = "token-rotator-jobs";

/// Puts the shipped policies in force in `cluster`, as for token-rotator's ServiceAccount.
pub(crate) fn enforce(cluster: &KubernetesSim) {
    let policies = shipped();
    cluster.enforce(Arc::new(move |sim: &KubernetesSim, a: &Admission| {
        denials(&policies, a, SERVICE_ACCOUNT, &|ns, name| {
            sim.cronjob(ns, name)
        })
        .into_iter()
        .next()
    }));
}

/// One write of the full paths, with the cluster it was made in (its CronJob is the parameter).
#[derive(Clone)]
pub(crate) struct Write {
    pub cluster: Arc<KubernetesSim>,
    pub admission: Admission,
}

impl Write {
    pub(crate) fn denials(&self, policies: &[Policy], user: &str) -> Vec<Denial> {
        denials(policies, &self.admission, user, &|ns, name| {
            self.cluster.cronjob(ns, name)
        })
    }

    /// The first container of a Job's or a Deployment's pod template.
    pub(crate) fn container(&mut self) -> &mut Value {
        &mut self.admission.object["spec"]["template"]["spec"]["containers"][0]
    }

    pub(crate) fn pod(&mut self) -> &mut Value {
        &mut self.admission.object["spec"]["template"]["spec"]
    }
}

/// Every write token-rotator made in the full paths.
pub(crate) async fn writes() -> Vec<Write> {
    full_paths()
        .await
        .iter()
        .flat_map(|cluster| {
            cluster.admissions().into_iter().map(|admission| Write {
                cluster: Arc::clone(cluster),
                admission,
            })
        })
        .collect()
}

/// The first write of `resource` and `operation` that `what` picks.
pub(crate) fn find(
    writes: &[Write],
    resource: &str,
    operation: &str,
    what: &dyn Fn(&Admission) -> bool,
) -> Write {
    writes
        .iter()
        .find(|w| {
            w.admission.resource == resource
                && w.admission.operation == operation
                && what(&w.admission)
        })
        .unwrap_or_else(|| panic!("no such {operation} of {resource} in the full paths"))
        .clone()
}

/// `write` changed by `change` is denied by `policy` with a message containing `why`; the same
/// write by anyone else is not these policies' business.
pub(crate) fn denied(
    policies: &[Policy],
    write: &Write,
    change: &dyn Fn(&mut Write),
    policy: &str,
    why: &str,
) {
    let mut w = write.clone();
    change(&mut w);
    let answer = w.denials(policies, SERVICE_ACCOUNT);
    assert!(
        answer
            .iter()
            .any(|d| d.policy == policy && d.message.contains(why)),
        "{policy}: {why}: {answer:#?} for {:#}",
        w.admission.object
    );
    assert_eq!(
        w.denials(policies, "system:serviceaccount:argocd:argocd"),
        [],
        "{why}"
    );
}

/// `write` changed by `change` is still admitted.
pub(crate) fn admitted(policies: &[Policy], write: &Write, change: &dyn Fn(&mut Write)) {
    let mut w = write.clone();
    change(&mut w);
    assert_eq!(
        w.denials(policies, SERVICE_ACCOUNT),
        [],
        "{:#}",
        w.admission.object
    );
}

#[tokio::test]
async fn the_policies_admit_every_write_of_the_full_paths() {
    let policies = shipped();
    assert_eq!(
        policies.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        [LEAST_PRIVILEGE, JOBS]
    );
    let writes = writes().await;
    for write in &writes {
        let a = &write.admission;
        assert_eq!(
            write.denials(&policies, SERVICE_ACCOUNT),
            [],
            "{} {}/{}: {:#}",
            a.operation,
            a.resource,
            a.name,
            a.object
        );
    }
    // Not vacuous: each kind of write token-rotator makes is among them.
    let command =
        |a: &Admission| a.object["spec"]["template"]["spec"]["containers"][0]["command"].clone();
    find(&writes, "secrets", "UPDATE", &|_| true);
    find(&writes, "secrets", "CREATE", &|_| true);
    for script in ["list", "mint", "revoke"] {
        let path = format!("/token-rotator/{script}.rb");
        find(&writes, "jobs", "CREATE", &|a| {
            command(a)[2] == path.as_str()
        });
    }
    find(&writes, "jobs", "CREATE", &|a| {
        command(a) == json!(["rake"])
    });
    find(&writes, "deployments", "UPDATE", &|_| true);
}
