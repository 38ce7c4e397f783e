//! The policies in force in the Kubernetes simulator: a denied write is answered as the API
//! server answers it (422 Invalid, "<resource> "<name>" is forbidden: ValidatingAdmissionPolicy
//! '<policy>' with binding '<binding>' denied request: <message>") and not made, and the
//! adapter says which policy refused what, never that a permission is missing.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};
use token_rotator::adapters::kubernetes::{Cluster, JobTemplate, SecretDistributor};
use token_rotator::adapters::signon_job::JobIssuer;
use token_rotator::adapters::{Distributor, Issuer, Permit, Placement};
use token_rotator::policy::Mode;

use super::{JOBS, LEAST_PRIVILEGE, enforce};
use crate::world::{NAMESPACE, SYNC_CRONJOB, Sims, job_template};

#[tokio::test]
async fn a_denied_write_is_answered_as_the_api_server_answers_it_and_not_made() {
    let sims = Sims::start().await;
    let env = sims.production();
    enforce(&env.kubernetes);
    let cronjob = env.kubernetes.cronjob(NAMESPACE, SYNC_CRONJOB).unwrap();
    let name = "token-rotator-list-0123456789ab-1";
    let env_vars = [("TR_API_USER", "a@example.com".to_owned())];
    let mut job = job_template()
        .script_job(&cronjob, name, "list", "rotation-1", &env_vars)
        .unwrap();
    // As the adapter makes it, it is admitted; with Signon's ServiceAccount token, it is not.
    job["spec"]["template"]["spec"]["automountServiceAccountToken"] = json!(true);
    let response = reqwest::Client::new()
        .post(format!(
            "{}/apis/batch/v1/namespaces/{NAMESPACE}/jobs",
            env.kubernetes_url()
        ))
        .header("content-type", "application/json")
        .body(job.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 422);
    let status: Value = response.json().await.unwrap();
    let denial = format!(
        "ValidatingAdmissionPolicy '{JOBS}' with binding '{JOBS}' denied request: \
         token-rotator's Jobs mount no ServiceAccount token (automountServiceAccountToken: \
         false), but a mint that writes the Secret itself (TR_WRITE_SECRET=true), as the \
         CronJob's pod does"
    );
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(status["code"], 422);
    assert_eq!(
        status["message"],
        format!("jobs.batch \"{name}\" is forbidden: {denial}")
    );
    assert_eq!(
        status["details"],
        json!({"name": name, "group": "batch", "kind": "jobs", "causes": [{"message": denial}]})
    );
    assert!(env.kubernetes.jobs().is_empty(), "not made");
    assert!(env.kubernetes.admissions().is_empty());
}

fn cluster(url: &str) -> Cluster {
    Cluster::for_url(url, NAMESPACE, Duration::from_secs(2)).unwrap()
}

#[tokio::test]
async fn the_adapter_names_the_policy_that_refused_not_a_missing_permission() {
    let sims = Sims::start().await;
    let env = sims.production();
    enforce(&env.kubernetes);
    let permit = Permit::for_mode(Mode::Active).unwrap();

    let secrets = SecretDistributor::new(cluster(&env.kubernetes_url()));
    let placement = Placement {
        name: "signon-app-publishing-api".into(),
    };
    let error = secrets
        .place(
            &permit,
            &placement,
            Some(&SecretString::from("x")),
            "rotation-1",
        )
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        format!(
            "kubernetes: HTTP 422: patch (apply) secrets/signon-app-publishing-api: refused by \
             admission policy {LEAST_PRIVILEGE}: token-rotator writes only signon-token-* \
             Secrets, and deletes none"
        )
    );
    assert!(
        env.kubernetes
            .secret_object(NAMESPACE, &placement.name)
            .is_none()
    );

    // `[signon.job] service_account` set to another account than Signon's.
    let template = JobTemplate {
        service_account: Some("token-rotator".into()),
        ..job_template()
    };
    let issuer = JobIssuer::new(cluster(&env.kubernetes_url()), template, false);
    let error = issuer
        .list(&crate::rotation::target(), "rotation-1")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&format!(
            ": refused by admission policy {LEAST_PRIVILEGE}: token-rotator's Jobs run as \
             Signon's pods do (non-root, read-only root filesystem, no privilege escalation, \
             ServiceAccount signon)"
        )),
        "{error}"
    );
    assert!(!error.contains("permission"), "{error}");
    assert!(env.kubernetes.jobs().is_empty());
}

/// The scripts the full rotation paths do not run (the inventory, the initiator's check) pass
/// the policies too, as the adapter makes their Jobs; they get no ServiceAccount token.
#[tokio::test]
async fn the_inventory_and_the_initiator_check_are_admitted() {
    let sims = Sims::start().await;
    let env = sims.production();
    enforce(&env.kubernetes);
    let issuer = JobIssuer::new(cluster(&env.kubernetes_url()), job_template(), true);
    let mut answers = 0;
    for _ in 0..10 {
        let inventory = issuer.inventory("inventory-1").await;
        let identity = issuer.check_identity("identity-1").await;
        match (inventory, identity) {
            (Ok(inventory), Ok(identity)) => {
                assert!(inventory.is_some() && identity.is_some());
                answers += 1;
                break;
            }
            (Err(e), _) | (_, Err(e)) => {
                assert!(
                    matches!(e, token_rotator::adapters::AdapterError::Pending { .. }),
                    "{e}"
                );
            }
        }
    }
    assert_eq!(answers, 1, "both Jobs ran to their end");
    let jobs = env.kubernetes.jobs();
    assert_eq!(jobs.len(), 2);
    for job in jobs {
        assert_eq!(
            job["spec"]["template"]["spec"]["automountServiceAccountToken"],
            false
        );
    }
}
