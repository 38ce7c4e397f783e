//! What a validating admission policy would be shown for each write: the operation as
//! admission names it (a server-side apply that creates is `CREATE`, one that changes is
//! `UPDATE`; kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/ —
//! "request", "object", "oldObject"), the object as stored after the write and as it was
//! before. Tests evaluate the shipped ValidatingAdmissionPolicy's CEL against these, and may
//! put it in force ([`KubernetesSim::enforce`]): a write it denies is answered as the API
//! server answers it, and not made.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::KubernetesSim;

/// One write as admission sees it.
#[derive(Debug, Clone)]
pub struct Admission {
    /// `CREATE`, `UPDATE` or `DELETE`.
    pub operation: &'static str,
    /// `""` (core), `"batch"`, `"apps"`…
    pub group: String,
    pub resource: String,
    pub namespace: String,
    pub name: String,
    /// After the write; `null` for `DELETE`.
    pub object: Value,
    /// Before it; `null` for `CREATE`.
    pub old_object: Value,
}

/// A ValidatingAdmissionPolicy's "no": the policy, the binding that put it in force, and the
/// message of the first validation that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub policy: String,
    pub binding: String,
    pub message: String,
}

/// The policies in force: judges a write (with the cluster, for a policy's parameters) before
/// it is made.
pub type Policies = Arc<dyn Fn(&KubernetesSim, &Admission) -> Option<Denial> + Send + Sync>;

/// The resources whose writes are recorded for admission (the ones the policy governs).
pub(super) const ADMITTED: [&str; 3] = ["secrets", "jobs", "deployments"];

/// `GroupResource.String()`: `jobs.batch`, `deployments.apps`, `secrets`.
fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    }
}

/// The API server's answer to a denied write. `Dispatch` in
/// `k8s.io/apiserver/pkg/admission/plugin/policy/validating/dispatcher.go` words it
/// "ValidatingAdmissionPolicy '%s' with binding '%s' denied request: %s" and wraps it with
/// `admission.NewForbidden` (`k8s.io/apiserver/pkg/admission/errors.go`, then
/// `apierrors.NewForbidden`: `<resource> "<name>" is forbidden: …`, details naming the group,
/// resource and name), adds the message as a cause, and replaces the reason with the
/// validation's own, `Invalid` when it names none (the shipped policies name none), and the code
/// with `reasonToCode`'s: 422 for `Invalid`.
fn denied(admission: &Admission, denial: &Denial) -> Response {
    let message = format!(
        "ValidatingAdmissionPolicy '{}' with binding '{}' denied request: {}",
        denial.policy, denial.binding, denial.message
    );
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!(
            "{} {:?} is forbidden: {message}",
            qualified(&admission.group, &admission.resource),
            admission.name
        ),
        "reason": "Invalid",
        "details": {
            "name": admission.name, "group": admission.group, "kind": admission.resource,
            "causes": [{"message": message}],
        },
        "code": 422,
    });
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
}

impl KubernetesSim {
    /// Every write to Secrets, Jobs and Deployments that succeeded, as admission saw it.
    pub fn admissions(&self) -> Vec<Admission> {
        self.admissions.lock().expect("lock never poisoned").clone()
    }

    /// Puts `policies` in force: from now on every write to a Secret, Job or Deployment is
    /// judged before it is made, as by token-rotator's ServiceAccount (the simulator has no
    /// other users), and a denied one is answered as the API server answers it.
    pub fn enforce(&self, policies: Policies) {
        *self.policies.lock().expect("lock never poisoned") = Some(policies);
    }

    /// The denial of a write about to be made, as its answer; `None`: admitted.
    pub(super) fn judge(&self, admission: &Admission) -> Option<Response> {
        let policies = self.policies.lock().expect("lock never poisoned").clone()?;
        let denial = policies(self, admission)?;
        Some(denied(admission, &denial))
    }

    /// A CronJob as stored (a policy's parameter).
    pub fn cronjob(&self, namespace: &str, name: &str) -> Option<Value> {
        self.cronjobs
            .lock()
            .expect("lock never poisoned")
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// The stored object, as a client would read it.
    pub(super) fn stored(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let key = (namespace.to_owned(), name.to_owned());
        match resource {
            "secrets" => self
                .secrets
                .lock()
                .expect("lock never poisoned")
                .get(&key)
                .cloned(),
            "jobs" => self
                .jobs
                .lock()
                .expect("lock never poisoned")
                .get(&key)
                .map(|j| j.object().clone()),
            "deployments" => self
                .deployments
                .lock()
                .expect("lock never poisoned")
                .get(&key)
                .map(|d| d.object().clone()),
            _ => None,
        }
    }

    pub(super) fn admitted(&self, admission: Admission) {
        self.admissions
            .lock()
            .expect("lock never poisoned")
            .push(admission);
    }
}
