//! What a validating admission policy would be shown for each write: the operation as
//! admission names it (a server-side apply that creates is `CREATE`, one that changes is
//! `UPDATE`; kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/ —
//! "request", "object", "oldObject"), the object as stored after the write and as it was
//! before. Tests evaluate the shipped ValidatingAdmissionPolicy's CEL against these.

use serde_json::Value;

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

/// The resources whose writes are recorded for admission (the ones the policy governs).
pub(super) const ADMITTED: [&str; 3] = ["secrets", "jobs", "deployments"];

impl KubernetesSim {
    /// Every write to Secrets, Jobs and Deployments that succeeded, as admission saw it.
    pub fn admissions(&self) -> Vec<Admission> {
        self.admissions.lock().expect("lock never poisoned").clone()
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
