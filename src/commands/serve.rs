//! `token-rotator serve`: the long-running service.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use secrecy::SecretString;

use crate::adapters::Observer;
use crate::adapters::alertmanager::AlertmanagerClient;
use crate::adapters::gitlab::GitLabClient;
use crate::adapters::kubernetes::Cluster;
use crate::adapters::signon::SignonClient;
use crate::adapters::slack::{SlackApi, SlackWebhook};
use crate::app::{Application, EngineParts, SlackParts, shutdown_signal};
use crate::clock::SystemClock;
use crate::config::{Config, IssuerMode, ScheduleIssuer};
use crate::engine::{Adapters, SlackOut, Upstreams};
use crate::intake::auth::WebhookAuth;
use crate::secrets::{self, Keys};
use crate::telemetry::Metrics;

pub const SIGNON_ADMIN_TOKEN_VAR: &str = "TOKEN_ROTATOR_SIGNON_ADMIN_TOKEN";
pub const SLACK_WEBHOOK_URL_VAR: &str = "TOKEN_ROTATOR_SLACK_WEBHOOK_URL";
pub const SYNOPTIC_API_KEY_VAR: &str = "TOKEN_ROTATOR_SYNOPTIC_API_KEY";
/// The token token-rotator authenticates to GitLab with (`[gitlab]`).
pub const GITLAB_TOKEN_VAR: &str = "TOKEN_ROTATOR_GITLAB_TOKEN";
pub const SLACK_BOT_TOKEN_VAR: &str = "TOKEN_ROTATOR_SLACK_BOT_TOKEN";
pub const SLACK_SIGNING_SECRET_VAR: &str = "TOKEN_ROTATOR_SLACK_SIGNING_SECRET";
/// gds-sso caches a token for 5 minutes: revoking sooner can break a consumer still using it.
pub const MIN_GRACE: Duration = Duration::from_secs(5 * 60);

pub struct ServeArgs {
    pub config: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub insecure_no_auth: bool,
    pub allow_short_grace: bool,
}

/// The status page's own bearer token (or `…_FILE`).
pub const STATUS_TOKEN_VAR: &str = "TOKEN_ROTATOR_STATUS_TOKEN";

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let auth = if args.insecure_no_auth {
        tracing::warn!("--insecure-no-auth: anyone who can reach the webhook can submit alerts");
        WebhookAuth::Disabled
    } else {
        WebhookAuth::from_env(&secrets::process_env).context("refusing to start")?
    };
    if config.engine.grace < MIN_GRACE && !args.allow_short_grace {
        bail!(
            "refusing to start: rotation.grace_period is {}, less than {} (gds-sso caches tokens for 5 minutes); \
             pass --allow-short-grace if you mean it",
            humantime::format_duration(config.engine.grace),
            humantime::format_duration(MIN_GRACE)
        );
    }
    let metrics = Arc::new(Metrics::new());
    let engine = engine_parts(&config, Observer::new(Arc::clone(&metrics))).await?;
    if engine.is_none() {
        tracing::warn!(
            "no [signon] section and no [[schedules]]: the engine is off; alerts are journaled and decided only"
        );
    }
    // The status page's own read-only credential; without it the webhook's guards the page.
    let status_auth = secrets::from_env(STATUS_TOKEN_VAR, &secrets::process_env)
        .context("refusing to start")?
        .map(|token| WebhookAuth::bearer(&token));
    if status_auth.is_none() && !config.status_page_open {
        tracing::warn!(
            "{STATUS_TOKEN_VAR} is not set: the status page takes the webhook's credential, so whoever reads it can also post alerts"
        );
    }
    let interactions = engine
        .as_ref()
        .is_some_and(|e| e.slack.signing_secret.is_some());
    if let Some(warning) = metrics_beside_the_public_edge(&config, interactions) {
        tracing::warn!("{warning}");
    }
    let http = &config.http;
    let mut caps = vec![("internal", http.max_connections)];
    if config.public_listen.is_some() {
        caps.push(("public", http.public_max_connections));
    }
    if config.metrics_listen.is_some() {
        caps.push(("metrics", http.metrics_max_connections));
    }
    crate::web::serve::warn_if_caps_exceed_open_files(&caps);
    let journal = crate::store::redact_url(&config.database_url);
    let app = Application::build_with(config, auth, status_auth, engine, metrics).await?;
    tracing::info!(addr = %app.local_addr(), %journal, "listening");
    if let Some(addr) = app.public_addr() {
        tracing::info!(%addr, "public edge listening (Slack interactions, handover links)");
    }
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}

/// Without `public_listen`, Slack's interactions and handover links are served on `listen`, which
/// must then be reachable from outside; without `metrics_listen`, `/metrics` (no credential, and
/// it names API users) is served there too. Says so when both are true and either is in use.
fn metrics_beside_the_public_edge(config: &Config, interactions: bool) -> Option<String> {
    let handovers = config
        .schedules
        .iter()
        .any(|s| s.schedule.handover.is_some());
    let public_on_listen = config.public_listen.is_none() && (interactions || handovers);
    (public_on_listen && config.metrics_listen.is_none()).then(|| {
        format!(
            "Slack's interactions or handover links are served on listen ({}), which must then \
             be reachable from outside, and so is /metrics, which takes no credential and names \
             API users: set public_listen for the public edge and metrics_listen for Prometheus",
            config.listen
        )
    })
}

async fn engine_parts(config: &Config, observer: Observer) -> anyhow::Result<Option<EngineParts>> {
    // Signon's environments, and the scheduled targets: either alone is enough to rotate.
    let mut upstreams = upstreams(config, &observer).await?.unwrap_or_default();
    upstreams.extend(gitlab_environments(config, &observer)?);
    if upstreams.is_empty() && config.schedules.is_empty() {
        return Ok(None);
    }
    let lookup = &secrets::process_env;
    let keys = Keys::from_env(lookup)?;
    let bot = secrets::from_env(SLACK_BOT_TOKEN_VAR, lookup)?;
    let signing_secret = secrets::from_env(SLACK_SIGNING_SECRET_VAR, lookup)?;
    let approval_rule = config
        .policy
        .rules()
        .iter()
        .find(|r| r.action.asks_in_slack());
    if let Some(rule) = approval_rule
        && (bot.is_none() || signing_secret.is_none())
    {
        bail!(
            "rule {:?} asks for approval in Slack: set {SLACK_BOT_TOKEN_VAR} and {SLACK_SIGNING_SECRET_VAR} (buttons need the Web API and signed interactions)",
            rule.name
        );
    }
    // A handover link is a credential: it goes to its owner as a Slack direct message, which
    // needs the Web API; there is no other way to send it (it is never logged).
    if let Some(schedule) = config
        .schedules
        .iter()
        .find(|s| s.schedule.handover.is_some())
        && bot.is_none()
    {
        bail!(
            "schedule {:?} hands its token over: set {SLACK_BOT_TOKEN_VAR} (the link is sent to its owner as a Slack direct message)",
            schedule.schedule.name
        );
    }
    let slack_api = match bot {
        Some(token) => {
            if config.engine.slack.default_channel.is_none() {
                bail!(
                    "{SLACK_BOT_TOKEN_VAR} is set but [slack] channel is not: say where threads go"
                );
            }
            Some(
                SlackApi::new(&config.slack.api_url, token, config.slack.timeout)
                    .joining(config.slack.join_channels)
                    .observed(observer.clone()),
            )
        }
        None => None,
    };
    let mut adapters = Adapters {
        environments: upstreams,
        slack: SlackOut::Log,
        alertmanager: alertmanager(config, observer.clone()),
        schedules: scheduled(config, &observer, &keys)?,
    };
    adapters.slack = if slack_api.is_some() {
        SlackOut::Threads
    } else {
        let webhook = secrets::from_env(SLACK_WEBHOOK_URL_VAR, lookup)?
            .map(|url| SlackWebhook::new(url, Duration::from_secs(10)).observed(observer));
        if webhook.is_none() {
            tracing::warn!(
                "neither {SLACK_BOT_TOKEN_VAR} nor {SLACK_WEBHOOK_URL_VAR} is set: outcomes are logged, not posted"
            );
        }
        webhook.into()
    };
    Ok(Some(EngineParts {
        // One instance per cluster: these upstreams serve every environment it hears of.
        adapters,
        keys,
        clock: Arc::new(SystemClock),
        background: true,
        poll: Duration::from_secs(1),
        slack: SlackParts {
            api: slack_api,
            signing_secret,
        },
    }))
}

/// The cluster's Signon and Kubernetes API from `[signon]`, `[kubernetes]` and the environment,
/// by environment (`*`: every environment without an issuer of its own); `None` without
/// `[signon]`.
pub async fn upstreams(
    config: &Config,
    observer: &Observer,
) -> anyhow::Result<Option<BTreeMap<String, Upstreams>>> {
    let Some(signon) = &config.signon else {
        return Ok(None);
    };
    let admin = secrets::from_env(SIGNON_ADMIN_TOKEN_VAR, &secrets::process_env)?;
    let needs_admin = signon.issuer == IssuerMode::Http
        || signon.issuers.values().any(|i| *i == IssuerMode::Http);
    let admin = match admin {
        Some(admin) => admin,
        None if needs_admin => {
            bail!("[signon] uses the HTTP admin contract but {SIGNON_ADMIN_TOKEN_VAR} is not set")
        }
        // The Job issuer needs no admin token: Signon's image has the database.
        None => SecretString::from(String::new()),
    };
    let client = SignonClient::new(&signon.url, admin, signon.timeout).observed(observer.clone());
    let kube = &config.kubernetes;
    let cluster = match &kube.url {
        Some(url) => Cluster::for_url(url, &kube.namespace, kube.timeout),
        None => Cluster::inferred(&kube.namespace, kube.timeout).await,
    }
    .map_err(anyhow::Error::msg)?
    .observed(observer.clone())
    .with_max_jobs(kube.max_jobs);
    let build = |issuer| {
        Upstreams::build(
            client.clone(),
            cluster.clone(),
            issuer,
            signon.job.as_ref(),
            kube,
        )
        .map_err(anyhow::Error::msg)
    };
    let mut all = BTreeMap::from([("*".to_owned(), build(signon.issuer)?)]);
    for (environment, issuer) in &signon.issuers {
        all.insert(environment.clone(), build(*issuer)?);
    }
    Ok(Some(all))
}

/// The GitLab client of `[gitlab]`, with its token from the environment.
fn gitlab_client(config: &Config, observer: &Observer) -> anyhow::Result<Option<GitLabClient>> {
    let Some(gitlab) = &config.gitlab else {
        return Ok(None);
    };
    let token = secrets::from_env(GITLAB_TOKEN_VAR, &secrets::process_env)?
        .with_context(|| format!("[gitlab] is configured but {GITLAB_TOKEN_VAR} is not set"))?;
    Ok(Some(
        GitLabClient::new(gitlab, token, Arc::new(SystemClock)).observed(observer.clone()),
    ))
}

/// The environments of `[gitlab] environments`: their alerts name GitLab tokens.
fn gitlab_environments(
    config: &Config,
    observer: &Observer,
) -> anyhow::Result<BTreeMap<String, Upstreams>> {
    let Some(gitlab) = config
        .gitlab
        .as_ref()
        .filter(|g| !g.environments.is_empty())
    else {
        return Ok(BTreeMap::new());
    };
    let client = gitlab_client(config, observer)?.expect("[gitlab] is configured");
    let dir = gitlab.tokens_dir.as_deref().unwrap_or_default();
    Ok(gitlab
        .environments
        .iter()
        .map(|e| {
            (
                e.clone(),
                crate::adapters::gitlab::environment(client.clone(), dir),
            )
        })
        .collect())
}

/// The scheduled targets of `[[schedules]]`, with their issuer and distributor.
fn scheduled(
    config: &Config,
    observer: &Observer,
    keys: &Keys,
) -> anyhow::Result<BTreeMap<String, crate::engine::Scheduled>> {
    let uses = |issuer| config.schedules.iter().any(|s| s.issuer == issuer);
    let synoptic_key = match (&config.synoptic, uses(ScheduleIssuer::Synoptic)) {
        (Some(_), true) => Some(
            secrets::from_env(SYNOPTIC_API_KEY_VAR, &secrets::process_env)?.with_context(|| {
                format!("[[schedules]] use Synoptic but {SYNOPTIC_API_KEY_VAR} is not set")
            })?,
        ),
        _ => None,
    };
    let gitlab = if uses(ScheduleIssuer::GitLab) {
        gitlab_client(config, observer)?
    } else {
        None
    };
    let mut built = BTreeMap::new();
    for s in &config.schedules {
        let upstreams = match (s.issuer, &config.synoptic, &synoptic_key, &gitlab) {
            (ScheduleIssuer::Synoptic, Some(synoptic), Some(key), _) => {
                crate::adapters::synoptic::scheduled::build(
                    &s.distribution,
                    synoptic,
                    key.clone(),
                    keys,
                    observer.clone(),
                    Arc::new(SystemClock),
                )
            }
            (ScheduleIssuer::GitLab, _, _, Some(client)) => {
                crate::adapters::gitlab::scheduled(client.clone(), &s.distribution)
            }
            // check-config refuses a schedule whose issuer has no section.
            _ => bail!(
                "schedule {:?}: its issuer is not configured",
                s.schedule.name
            ),
        };
        let scheduled = crate::engine::Scheduled {
            schedule: s.schedule.clone(),
            upstreams,
        };
        built.insert(s.schedule.name.clone(), scheduled);
    }
    Ok(built)
}

/// The Alertmanager client from `[alertmanager]`, if configured.
pub fn alertmanager(config: &Config, observer: Observer) -> Option<AlertmanagerClient> {
    config
        .alertmanager
        .as_ref()
        .map(|am| AlertmanagerClient::new(am.urls.clone(), am.timeout).observed(observer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_beside_the_public_edge_is_warned_about() {
        let mut config = Config::builtin();
        assert_eq!(
            metrics_beside_the_public_edge(&config, false),
            None,
            "no public edge in use"
        );
        let warning = metrics_beside_the_public_edge(&config, true).expect("warned");
        assert!(warning.contains("set public_listen"), "{warning}");
        config.public_listen = Some("127.0.0.1:8443".parse().unwrap());
        assert_eq!(metrics_beside_the_public_edge(&config, true), None);
        config.public_listen = None;
        config.metrics_listen = Some("127.0.0.1:9090".parse().unwrap());
        assert_eq!(metrics_beside_the_public_edge(&config, true), None);
    }
}
