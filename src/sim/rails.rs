//! The Signon image, as far as token-rotator's Jobs are concerned: what `deploy/signon/*.rb`
//! do under `rails runner`, and what Signon's `rake kubernetes:sync_token_secrets` does, played
//! against the Signon simulator and the Kubernetes simulator's Secrets. Same inputs (TR_*
//! environment variables), same one-line JSON results, same Secrets written.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::kubernetes::{JobRun, JobRunner, KubernetesSim};
use super::signon::{Refusal, SignonSim};
use crate::adapters::kubernetes::TOKEN_KEY;
use crate::domain::parameterize::secret_name;

/// What Rails prints before a script's own output.
const BOOT: &str = "I, [2026-11-26T01:00:00.000000 #1]  INFO -- : Booting Signon (production)\n";

/// The in-pod Secret apply `mint.rb` makes with Signon's kubeclient, as a fault operation of
/// the Signon simulator: a test makes it fail after the token is saved.
pub const SECRET_APPLY: &str = "secret-apply";

/// What Signon's Kubernetes client (`lib/kubernetes/client.rb`: kubeclient with
/// `bearer_token_file:` the mounted ServiceAccount token) raises in a pod without that token:
/// kubeclient's `validate_bearer_token_file` (`lib/kubeclient/common.rb`).
const NO_TOKEN: &str =
    "ArgumentError: Token file /var/run/secrets/kubernetes.io/serviceaccount/token does not exist";

/// How a script ends: its result fields, or why it said no.
enum Outcome {
    Done(Value),
    /// Checked before anything was written (`{"ok":false,"refused":code,…}`).
    Refused(Refusal),
    /// Anything else the script rescued (`{"ok":false,"error":"Class: message"}`), with the
    /// fields it still names (a token that exists although the Secret apply failed).
    Error(String, Value),
}

impl From<Refusal> for Outcome {
    fn from(refusal: Refusal) -> Self {
        Outcome::Refused(refusal)
    }
}

/// A runner for the Kubernetes simulator's Jobs, backed by `signon` and writing Secrets into
/// `kubernetes` (weakly held: the simulator owns its runner).
pub fn runner(signon: Arc<SignonSim>, kubernetes: &Arc<KubernetesSim>) -> JobRunner {
    let kubernetes: Weak<KubernetesSim> = Arc::downgrade(kubernetes);
    Arc::new(move |run: &JobRun| {
        let kubernetes = kubernetes.upgrade().ok_or("the cluster is gone")?;
        let outcome = match run.operation().as_str() {
            "list" => list(&signon, run),
            "mint" => mint(&signon, &kubernetes, run),
            "revoke" => revoke(&signon, run),
            "check_initiator" => check_initiator(&signon, run),
            "inventory" => Outcome::Done(json!({"tokens": signon.inventory()})),
            "sync" if !run.service_account_token => {
                return Err(format!("{BOOT}rake aborted!\n{NO_TOKEN}\n"));
            }
            "sync" => return Ok(sync(&signon, &kubernetes, run)),
            other => Outcome::Error(format!("LoadError: no script {other:?}"), json!({})),
        };
        // Every script prints exactly one result line, whatever happened (common.rb).
        match outcome {
            Outcome::Done(mut line) => {
                line["token_rotator"] = json!(1);
                line["ok"] = json!(true);
                Ok(format!("{BOOT}{line}\n"))
            }
            Outcome::Refused(refusal) => Err(format!(
                "{BOOT}{}\n",
                json!({"token_rotator": 1, "ok": false, "refused": refusal.code, "error": refusal.message})
            )),
            Outcome::Error(error, mut fields) => {
                fields["token_rotator"] = json!(1);
                fields["ok"] = json!(false);
                fields["error"] = json!(error);
                Err(format!("{BOOT}{fields}\n"))
            }
        }
    })
}

/// `ENV.fetch` as `common.rb` reads it.
fn input<'a>(run: &'a JobRun, name: &str) -> Result<&'a str, Outcome> {
    run.env
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            Outcome::Refused(Refusal {
                code: "bad_input",
                message: format!("{name} is not set"),
            })
        })
}

macro_rules! check {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Outcome::from(e),
        }
    };
}

fn list(signon: &SignonSim, run: &JobRun) -> Outcome {
    let key = run.env.get("TR_IDEMPOTENCY_KEY").map(String::as_str);
    let mut listing = check!(signon.admin_list(
        check!(input(run, "TR_API_USER")),
        check!(input(run, "TR_APPLICATION")),
        key
    ));
    let secret = secret_name(
        listing["api_user"]["name"].as_str().unwrap_or_default(),
        listing["application"]["name"].as_str().unwrap_or_default(),
    );
    listing["secret"] = json!(secret);
    Outcome::Done(listing)
}

fn mint(signon: &SignonSim, kubernetes: &KubernetesSim, run: &JobRun) -> Outcome {
    let initiator = check!(signon.check_initiator(run.env.get("TR_INITIATOR").map(String::as_str)));
    let api_user = check!(input(run, "TR_API_USER"));
    let application = check!(input(run, "TR_APPLICATION"));
    // Signon's `expires_in` is an INT column (db/schema.rb).
    let expires_in: u64 = match check!(input(run, "TR_EXPIRES_IN")).parse() {
        Ok(n) if (1..=i32::MAX as u64).contains(&n) => n,
        _ => {
            return Outcome::Refused(Refusal {
                code: "bad_input",
                message: "TR_EXPIRES_IN must be a whole number of seconds from 1 to 2147483647"
                    .into(),
            });
        }
    };
    let key = check!(input(run, "TR_IDEMPOTENCY_KEY"));
    let (token, created) =
        check!(signon.admin_mint(api_user, application, Duration::from_secs(expires_in), key));
    let mut line = json!({
        "id": token.id.to_string(),
        "expires_at": token.expires_at,
        "last8": token.last8(),
        "sha256": hex::encode(Sha256::digest(token.value.as_bytes())),
        "secret": null,
        "replayed": !created,
        // common.rb `TokenRotator.resolved`: whom the lookups matched, as stored.
        "resolved": {"email": token.api_user, "application": token.application, "initiator": initiator.email},
    });
    if run.env.get("TR_WRITE_SECRET").map(String::as_str) == Some("true") {
        let name = secret_name(&signon.user_name(api_user), &token.application);
        if !run.service_account_token {
            return Outcome::Error(
                format!("the token was made but Secret {name} could not be written: {NO_TOKEN}"),
                line,
            );
        }
        if signon.faults.due(SECRET_APPLY).is_some() {
            return Outcome::Error(
                format!(
                    "the token was made but Secret {name} could not be written: Kubeclient::HttpError: Internal error occurred"
                ),
                line,
            );
        }
        kubernetes.put(&run.namespace, &name, TOKEN_KEY, &token.value);
        line["secret"] = json!(name);
    }
    Outcome::Done(line)
}

/// `check_initiator.rb`: the initiator's checks alone; writes nothing.
fn check_initiator(signon: &SignonSim, run: &JobRun) -> Outcome {
    let initiator = check!(signon.check_initiator(run.env.get("TR_INITIATOR").map(String::as_str)));
    let mut line = json!({
        "initiator": {"email": initiator.email, "api_user": initiator.api_user, "suspended": false},
        "resolved": {"initiator": initiator.email},
    });
    if let Some(warning) = initiator.warning {
        line["warning"] = json!(warning);
    }
    Outcome::Done(line)
}

fn revoke(signon: &SignonSim, run: &JobRun) -> Outcome {
    let initiator = check!(signon.check_initiator(run.env.get("TR_INITIATOR").map(String::as_str)));
    let user = check!(input(run, "TR_API_USER"));
    let id = check!(input(run, "TR_TOKEN_ID"));
    let application = run.env.get("TR_APPLICATION").map(String::as_str);
    let (already, mut resolved) = check!(signon.admin_revoke(Some(user), application, id));
    resolved["initiator"] = json!(initiator.email);
    Outcome::Done(
        json!({"id": id, "revoked": true, "already_revoked": already, "resolved": resolved}),
    )
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
