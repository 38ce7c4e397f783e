//! Signon without an admin API, the way GOV.UK can run it today: `list`, `mint` and `revoke`
//! are `rails runner` scripts (`deploy/signon/*.rb`) in Signon's own image, run as Kubernetes
//! Jobs with Signon's ServiceAccount. Nothing changes in Signon itself.
//!
//! `mint` never prints the token: it applies the Secret itself (distribution `apply`) or leaves
//! it to Signon's sync CronJob (`sync`), and reports the id, expiry, last 8 characters and
//! SHA-256. Jobs are named after the rotation (and token), so a restarted service re-attaches
//! to the Job it started.
//!
//! At most one mint per rotation: `mint.rb` records the rotation id in its
//! `ACCESS_TOKEN_GENERATED` event and looks it up before minting, so a second run (the Job's
//! second attempt, or a Job re-created after its TTL removed it) answers the first run's token.
//! `recover` finds that token through `list.rb` when the mint Job is gone. A refusal (checked
//! before anything is written: initiator, suspended user, retired application, no access to
//! replace) is final at once.

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use serde_json::Value;

use super::kubernetes::{Cluster, JobOutcome, JobTemplate, REFUSED_BY, Run, job_exists, run_job};
use super::{
    AdapterError, IdentityReport, InventoriedToken, Inventory, Issuer, MintedToken, MintedValue,
    Permit, Resolved, TokenInfo, TokenListing, kubernetes::jobs_name,
};
use crate::domain::Target;

const UPSTREAM: &str = "signon";

/// How long `inventory.rb`'s one result line may be: a few hundred bytes a token, so room for
/// about a hundred thousand tokens (GOV.UK's Signon keeps every token it ever renewed, expired
/// ones included, until someone revokes them).
const INVENTORY_BYTES: usize = 32 * 1024 * 1024;

/// The account domains whose tokens Signon renews by itself each night, matched as Signon
/// matches them: `access_tokens:renew_expiring_internal_tokens` (alphagov/signon
/// `lib/tasks/access_tokens.rake`) makes a pair a new token once its newest expires within a
/// month, for users whose email matches `/@(alphagov\.co\.uk|publishing\.service\.gov\.uk)$/`.
const RENEWED_DOMAINS: [&str; 2] = ["@alphagov.co.uk", "@publishing.service.gov.uk"];

/// Who renews the tokens of `email`'s pairs without token-rotator.
fn renewed_by(email: &str) -> Option<String> {
    RENEWED_DOMAINS
        .iter()
        .any(|domain| email.ends_with(domain))
        .then(|| "Signon (nightly)".to_owned())
}

#[derive(Clone)]
pub struct JobIssuer {
    cluster: Cluster,
    template: JobTemplate,
    /// `mint.rb` applies the Secret itself (else Signon's sync CronJob will).
    write_secret: bool,
}

impl JobIssuer {
    pub fn new(cluster: Cluster, template: JobTemplate, write_secret: bool) -> Self {
        Self {
            cluster,
            template,
            write_secret,
        }
    }

    async fn run(
        &self,
        script: &str,
        key: &str,
        extra: &str,
        env: &[(&str, String)],
    ) -> Result<Value, AdapterError> {
        self.run_long(script, key, extra, env, 0).await
    }

    /// [`JobIssuer::run`] for a script whose result line may be `result_bytes` long.
    async fn run_long(
        &self,
        script: &str,
        key: &str,
        extra: &str,
        env: &[(&str, String)],
        result_bytes: usize,
    ) -> Result<Value, AdapterError> {
        let base = jobs_name(script, key, extra);
        let id = key.split('/').next().unwrap_or(key);
        // Signon's pod as its chart renders it now (image, database, secrets).
        let run = Run {
            namespace: &self.template.namespace,
            base: &base,
            expect_result: true,
            attempts: 2,
            result_bytes,
            cronjob: &self.template.pod_template,
            created: None,
        };
        let outcome = run_job(&self.cluster, &run, |cronjob, name| {
            self.template.script_job(cronjob, name, script, id, env)
        })
        .await?;
        match outcome {
            JobOutcome::Result(line) => Ok(line),
            JobOutcome::Completed => Err(AdapterError::permanent(
                UPSTREAM,
                format!("{script}.rb printed no result"),
            )),
        }
    }
}

fn text(line: &Value, field: &str) -> Result<String, AdapterError> {
    line[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| AdapterError::permanent(UPSTREAM, format!("the result has no {field:?}")))
}

fn time(line: &Value, field: &str) -> Result<Timestamp, AdapterError> {
    text(line, field)?
        .parse()
        .map_err(|e| AdapterError::permanent(UPSTREAM, format!("{field}: {e}")))
}

fn target_env(target: &Target) -> Vec<(&'static str, String)> {
    vec![
        ("TR_API_USER", target.api_user.to_string()),
        ("TR_APPLICATION", target.application.to_string()),
    ]
}

/// Whom and what a script's lookups matched (`"resolved"`, common.rb `TokenRotator.resolved`):
/// Signon's MySQL ignores case, so `find_by` may find another spelling than the one asked for.
/// A result without it is refused: what it acted on would be unknown.
fn resolved(line: &Value, script: &str) -> Result<Resolved, AdapterError> {
    let found = &line["resolved"];
    match (found["email"].as_str(), found["application"].as_str()) {
        (Some(email), Some(application)) => Ok(Resolved {
            api_user: email.to_owned(),
            application: application.to_owned(),
        }),
        _ => Err(AdapterError::permanent(
            UPSTREAM,
            format!(
                "{script}.rb did not say which API user and application it found (\"resolved\"); deploy the scripts of this version of token-rotator"
            ),
        )),
    }
}

/// A token as `mint.rb` (or `list.rb`'s `minted`) names it, never its value; made for whom
/// `found` (that script's `resolved`) says.
fn named_token(line: &Value, found: Resolved) -> Result<MintedToken, AdapterError> {
    Ok(MintedToken {
        id: text(line, "id")?,
        expires_at: time(line, "expires_at")?,
        value: MintedValue::Withheld {
            sha256: text(line, "sha256")?,
            last8: text(line, "last8")?,
        },
        resolved: Some(found),
    })
}

/// One entry of `inventory.rb`'s `tokens`.
fn inventoried(entry: &Value) -> Result<InventoriedToken, AdapterError> {
    let optional_time = |field: &str| match &entry[field] {
        Value::Null => Ok(None),
        _ => time(entry, field).map(Some),
    };
    let flag = |field: &str| entry[field] == Value::Bool(true);
    let optional_text = |field: &str| entry[field].as_str().map(str::to_owned);
    let api_user = text(entry, "api_user")?;
    Ok(InventoriedToken {
        renewed_by: renewed_by(&api_user),
        api_user,
        api_user_name: optional_text("api_user_name"),
        application: text(entry, "application")?,
        application_uid: optional_text("application_uid"),
        id: text(entry, "id")?,
        created_at: optional_time("created_at")?,
        expires_at: optional_time("expires_at")?,
        expired: flag("expired"),
        newest: flag("newest"),
        last8: text(entry, "last8")?,
        suspended: flag("api_user_suspended"),
        retired: flag("application_retired"),
    })
}

impl JobIssuer {
    /// The token the rotation `key` made, as `list.rb` finds it by the key `mint.rb` recorded.
    /// A revoked one is an error: minting again would make a second token for one rotation.
    async fn made_by(
        &self,
        target: &Target,
        key: &str,
    ) -> Result<Option<MintedToken>, AdapterError> {
        let mut env = target_env(target);
        env.push(("TR_IDEMPOTENCY_KEY", key.to_owned()));
        let line = self.run("list", key, "recover", &env).await?;
        let minted = &line["minted"];
        if minted.is_null() {
            return Ok(None);
        }
        if minted["revoked"] == Value::Bool(true) {
            return Err(AdapterError::permanent(
                UPSTREAM,
                format!(
                    "token {} that this rotation made is revoked in Signon; not minting another",
                    text(minted, "id")?
                ),
            ));
        }
        named_token(minted, resolved(&line, "list")?).map(Some)
    }
}

#[async_trait]
impl Issuer for JobIssuer {
    fn name(&self) -> &'static str {
        "Signon"
    }

    fn expiry_alertname(&self) -> Option<&'static str> {
        Some(super::signon::EXPIRY_ALERTNAME)
    }

    /// Every listing is a Job in Signon's namespace.
    fn list_writes(&self) -> bool {
        true
    }

    /// The same Signon, reached through a Job in its image: it renews internal tokens nightly.
    fn self_renews(&self) -> bool {
        true
    }

    /// `check_initiator.rb`: the initiator exists, is not suspended, and is an API user (which
    /// Signon's inactivity suspension never takes) or a superadmin (which it will, so warned).
    async fn check_identity(&self, key: &str) -> Result<Option<IdentityReport>, AdapterError> {
        let env = [("TR_INITIATOR", self.template.initiator.clone())];
        let line = self.run("check_initiator", key, "", &env).await?;
        let initiator = &line["initiator"];
        let email = text(initiator, "email")?;
        let kind = if initiator["api_user"] == Value::Bool(true) {
            "an active API user"
        } else {
            "an active superadmin"
        };
        // The lookup ignores case: a configured spelling Signon does not store is said, so that
        // the initiator the events record is the one configured.
        let configured = &self.template.initiator;
        let mut warnings: Vec<String> = line["warning"]
            .as_str()
            .map(str::to_owned)
            .into_iter()
            .collect();
        match line["resolved"]["initiator"].as_str() {
            Some(found) if found == configured => {}
            Some(found) => warnings.push(format!(
                "Signon matched the configured initiator {configured:?} to the user {found:?} (its lookup ignores case); configure it as Signon spells it"
            )),
            None => {
                return Err(AdapterError::permanent(
                    UPSTREAM,
                    "check_initiator.rb did not say which user it found (\"resolved\"); deploy the scripts of this version of token-rotator",
                ));
            }
        }
        Ok(Some(IdentityReport {
            checked: format!("Signon's initiator {email} is {kind}"),
            warning: (!warnings.is_empty()).then(|| warnings.join("; ")),
        }))
    }

    /// `inventory.rb`: every not-revoked token of every API user, in one result line.
    async fn inventory(&self, key: &str) -> Result<Option<Inventory>, AdapterError> {
        let line = self
            .run_long("inventory", key, "", &[], INVENTORY_BYTES)
            .await?;
        let tokens = line["tokens"]
            .as_array()
            .ok_or_else(|| AdapterError::permanent(UPSTREAM, "the result has no \"tokens\""))?
            .iter()
            .map(inventoried)
            .collect::<Result<Vec<_>, AdapterError>>()?;
        Ok(Some(Inventory { tokens }))
    }

    async fn list(&self, target: &Target, key: &str) -> Result<TokenListing, AdapterError> {
        let line = self.run("list", key, "", &target_env(target)).await?;
        let tokens = line["tokens"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|t| {
                Ok(TokenInfo {
                    id: text(t, "id")?,
                    expires_at: time(t, "expires_at")?,
                    last8: text(t, "last8")?,
                })
            })
            .collect::<Result<Vec<_>, AdapterError>>()?;
        Ok(TokenListing {
            api_user_name: text(&line["api_user"], "name")?,
            application_uid: text(&line["application"], "uid")?,
            application_name: text(&line["application"], "name")?,
            tokens,
            resolved: Some(resolved(&line, "list")?),
        })
    }

    async fn mint(
        &self,
        _permit: &Permit,
        target: &Target,
        expires_in: Duration,
        idempotency_key: &str,
        _like: Option<&str>,
    ) -> Result<MintedToken, AdapterError> {
        let mut env = target_env(target);
        env.push(("TR_INITIATOR", self.template.initiator.clone()));
        env.push(("TR_EXPIRES_IN", expires_in.as_secs().to_string()));
        env.push(("TR_IDEMPOTENCY_KEY", idempotency_key.to_owned()));
        env.push(("TR_WRITE_SECRET", self.write_secret.to_string()));
        match self.run("mint", idempotency_key, "", &env).await {
            Ok(line) => named_token(&line, resolved(&line, "mint")?),
            // Both runs failed, but not by a refusal: the token may exist all the same (saved,
            // then the Secret apply failed). Journal it if so, so that the rotation carries it
            // on, or rolls back and revokes it, instead of leaving it live and unknown.
            Err(AdapterError::Permanent { upstream, detail }) if upstream != REFUSED_BY => {
                match self.made_by(target, idempotency_key).await? {
                    Some(token) => {
                        tracing::warn!(token_id = %token.id, %detail, "mint Job failed after making a token; carrying that token on");
                        Ok(token)
                    }
                    None => Err(AdapterError::Permanent { upstream, detail }),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The mint Job is gone (its TTL passed) or never ran: find the rotation's token by its key
    /// instead of minting again. While the Job is there, `mint` re-attaches to it.
    async fn recover(
        &self,
        _permit: &Permit,
        target: &Target,
        _known: &[String],
        _expires_in: Duration,
        key: &str,
    ) -> Result<Option<MintedToken>, AdapterError> {
        let base = jobs_name("mint", key, "");
        if job_exists(&self.cluster, &self.template.namespace, &base).await? {
            return Ok(None);
        }
        self.made_by(target, key).await
    }

    async fn revoke(
        &self,
        _permit: &Permit,
        target: &Target,
        token_id: &str,
        key: &str,
    ) -> Result<(), AdapterError> {
        let mut env = target_env(target);
        env.push(("TR_INITIATOR", self.template.initiator.clone()));
        env.push(("TR_TOKEN_ID", token_id.to_owned()));
        env.push(("TR_IDEMPOTENCY_KEY", key.to_owned()));
        let line = self.run("revoke", key, token_id, &env).await?;
        if line["revoked"] == Value::Bool(true) {
            // The token id bound the revoke to the pair found (revoke.rb refuses another's
            // token), and that pair's spelling was checked when its tokens were listed: one
            // found under another spelling since is told, not undone.
            match resolved(&line, "revoke") {
                Ok(found) if found.is_exactly(target) => {}
                Ok(found) => tracing::warn!(
                    token_id,
                    found = ?format!("{} / {}", found.api_user, found.application),
                    asked = ?target.to_string(),
                    "revoke.rb found the pair under another spelling"
                ),
                Err(e) => {
                    tracing::warn!(token_id, error = %e, "revoke.rb revoked the token without saying which pair it found")
                }
            }
            Ok(())
        } else {
            Err(AdapterError::permanent(
                UPSTREAM,
                format!("revoke.rb did not revoke token {token_id}"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signon_renews_its_own_domains_only_as_its_task_matches_them() {
        assert_eq!(
            renewed_by("publisher@alphagov.co.uk").as_deref(),
            Some("Signon (nightly)")
        );
        assert!(renewed_by("content-store@publishing.service.gov.uk").is_some());
        // Internal to GOV.UK, but not a domain Signon's task renews.
        assert_eq!(
            renewed_by("token-rotator@digital.cabinet-office.gov.uk"),
            None
        );
        assert_eq!(renewed_by("someone@hmrc.gov.uk"), None);
        assert_eq!(renewed_by("x@alphagov.co.uk.example.com"), None);
    }
}
