//! The Signon image, as far as token-rotator's Jobs are concerned: what `deploy/signon/*.rb`
//! do under `rails runner`, and what Signon's `rake kubernetes:sync_token_secrets` does, played
//! against the Signon simulator and the Kubernetes simulator's Secrets. Same inputs (TR_*
//! environment variables), same one-line JSON results, same Secrets written.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::kubernetes::{JobRun, JobRunner, KubernetesSim};
use super::signon::SignonSim;
use crate::adapters::kubernetes::TOKEN_KEY;
use crate::adapters::parameterize::secret_name;

/// What Rails prints before a script's own output.
const BOOT: &str = "I, [2026-11-26T01:00:00.000000 #1]  INFO -- : Booting Signon (production)\n";

/// A runner for the Kubernetes simulator's Jobs, backed by `signon` and writing Secrets into
/// `kubernetes` (weakly held: the simulator owns its runner).
pub fn runner(signon: Arc<SignonSim>, kubernetes: &Arc<KubernetesSim>) -> JobRunner {
    let kubernetes: Weak<KubernetesSim> = Arc::downgrade(kubernetes);
    Arc::new(move |run: &JobRun| {
        let kubernetes = kubernetes.upgrade().ok_or("the cluster is gone")?;
        let result = match run.operation().as_str() {
            "list" => list(&signon, run),
            "mint" => mint(&signon, &kubernetes, run),
            "revoke" => revoke(&signon, run),
            "sync" => return Ok(sync(&signon, &kubernetes, run)),
            other => Err(format!("no script for {other:?}")),
        };
        match result {
            Ok(mut line) => {
                line["token_rotator"] = json!(1);
                line["ok"] = json!(true);
                Ok(format!("{BOOT}{line}\n"))
            }
            Err(error) => Err(format!(
                "{BOOT}{}\n",
                json!({"token_rotator": 1, "ok": false, "error": error})
            )),
        }
    })
}

fn input<'a>(run: &'a JobRun, name: &str) -> Result<&'a str, String> {
    run.env
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| format!("KeyError: key not found: \"{name}\""))
}

fn list(signon: &SignonSim, run: &JobRun) -> Result<Value, String> {
    let mut listing = signon.admin_list(input(run, "TR_API_USER")?, input(run, "TR_APPLICATION")?);
    let secret = secret_name(
        listing["api_user"]["name"].as_str().unwrap_or_default(),
        listing["application"]["name"].as_str().unwrap_or_default(),
    );
    listing["secret"] = json!(secret);
    Ok(listing)
}

fn mint(signon: &SignonSim, kubernetes: &KubernetesSim, run: &JobRun) -> Result<Value, String> {
    let api_user = input(run, "TR_API_USER")?;
    let application = input(run, "TR_APPLICATION")?;
    let expires_in: u64 = input(run, "TR_EXPIRES_IN")?
        .parse()
        .map_err(|e| format!("ArgumentError: invalid value for Integer(): {e}"))?;
    let key = input(run, "TR_IDEMPOTENCY_KEY")?;
    let (token, _) = signon
        .admin_mint(api_user, application, Duration::from_secs(expires_in), key)
        .map_err(|e| format!("ActiveRecord::RecordNotFound: {e}"))?;
    let secret = (run.env.get("TR_WRITE_SECRET").map(String::as_str) == Some("true")).then(|| {
        let name = secret_name(&signon.user_name(api_user), &token.application);
        kubernetes.put(&run.namespace, &name, TOKEN_KEY, &token.value);
        name
    });
    Ok(json!({
        "id": token.id.to_string(),
        "expires_at": token.expires_at,
        "last8": &token.value[token.value.len() - 8..],
        "sha256": hex::encode(Sha256::digest(token.value.as_bytes())),
        "secret": secret,
    }))
}

fn revoke(signon: &SignonSim, run: &JobRun) -> Result<Value, String> {
    let _user = input(run, "TR_API_USER")?;
    let id = input(run, "TR_TOKEN_ID")?;
    let already = signon
        .tokens()
        .iter()
        .any(|t| t.id.to_string() == id && t.revoked);
    signon
        .admin_revoke(id)
        .map_err(|e| format!("ActiveRecord::RecordNotFound: {e}"))?;
    Ok(json!({"id": id, "revoked": true, "already_revoked": already}))
}

/// `rake kubernetes:sync_token_secrets`: every pair's longest-lived live token into its Secret.
fn sync(signon: &SignonSim, kubernetes: &KubernetesSim, run: &JobRun) -> String {
    let mut log = String::from(BOOT);
    for (user, application, value) in signon.longest_lived() {
        let name = secret_name(&user, &application);
        kubernetes.put(&run.namespace, &name, TOKEN_KEY, &value);
        log.push_str(&format!(
            "I, [2026-11-26T01:09:00.000000 #1]  INFO -- : {name}\n"
        ));
    }
    log
}
