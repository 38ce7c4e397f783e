//! `token-rotator demo`: the whole service on loopback with throwaway state, no setup needed.
//!
//! It starts simulators of Signon, the Kubernetes API and Slack, seeds them with the tokens and
//! Secrets the alerts are about, starts the service (fresh SQLite journal in a temporary
//! directory, one-off credential and keys, grace period shortened to seconds), POSTs every
//! Alertmanager capture and the synthetic special cases over real HTTP, runs every rotation to
//! its end, then prints the Slack messages and a table of outcomes. It exits non-zero unless
//! every target ends where its rule and its alerts say it should.

mod asked;
mod check;
mod gitlab;
mod slack;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use check::{check, expected_ends, print_outcomes};
use gitlab::{GITLAB_ENVIRONMENT, gitlab_alert, gitlab_world};
use secrecy::{ExposeSecret, SecretString};
use slack::{APPROVER, APPROVERS_GROUP, DEMO_CHANNEL, click_approvals, demo_config};

use crate::adapters::Observer;
use crate::adapters::alertmanager::AlertmanagerClient;
use crate::adapters::kubernetes::{Cluster, JobTemplate, TOKEN_KEY};
use crate::adapters::signon::SignonClient;
use crate::adapters::slack::SlackApi;
use crate::app::{Application, EngineParts, SlackParts};
use crate::clock::{Clock, SystemClock};
use crate::config::{Distribution, IssuerMode, KubernetesSettings};
use crate::config::{ScheduleDistribution, ScheduleSettings, SynopticSettings};
use crate::domain::parameterize::secret_name;
use crate::engine::Schedule;
use crate::engine::{Adapters, Engine, RetryPolicy, SlackOut, Upstreams};
use crate::fixtures;
use crate::intake::auth::WebhookAuth;
use crate::policy::Mode;
use crate::secrets::Keys;
use crate::sim::alertmanager::AlertmanagerSim;
use crate::sim::kubernetes::{KubernetesSim, Rollout, SecretUse};
use crate::sim::signon::SignonSim;
use crate::sim::slack::{API_PATH, BOT_TOKEN, SIGNING_SECRET, SlackSim};
use crate::sim::synoptic::SynopticSim;
use crate::store::rotations::{self, RotationRow};
use crate::store::{outbox, threads};
use crate::telemetry::Metrics;

const NAMESPACE: &str = "apps";
const GRACE: Duration = Duration::from_secs(2);

pub async fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let admin_token = random_secret();
    let metrics = Arc::new(Metrics::new());
    let observer = Observer::new(Arc::clone(&metrics));
    // Each environment has its own Signon and cluster, as GOV.UK's do.
    let mut worlds = Vec::new();
    let mut environments = BTreeMap::new();
    for environment in ENVIRONMENTS {
        let signon = SignonSim::new(admin_token.expose_secret(), Arc::clone(&clock));
        let kubernetes = KubernetesSim::new();
        let (signon_http, kubernetes_http) = (signon.start().await?, kubernetes.start().await?);
        let client = SignonClient::new(
            &signon_http.url(),
            admin_token.clone(),
            Duration::from_secs(5),
        )
        .observed(observer.clone());
        // Signon as GOV.UK runs it: no admin API; our scripts run as Jobs in its image.
        kubernetes.set_runner(crate::sim::rails::runner(Arc::clone(&signon), &kubernetes));
        kubernetes.add_sync_cronjob(NAMESPACE, &DEMO_CLUSTER.sync_cronjob);
        let cluster = Cluster::for_url(&kubernetes_http.url(), NAMESPACE, Duration::from_secs(5))
            .map_err(anyhow::Error::msg)?
            .observed(observer.clone());
        let upstreams = Upstreams::build(
            client,
            cluster,
            IssuerMode::Job,
            Some(&demo_job_template()),
            &DEMO_CLUSTER,
        )
        .map_err(anyhow::Error::msg)?;
        environments.insert(environment.to_owned(), upstreams);
        worlds.push(Simulated {
            environment,
            signon,
            kubernetes,
            _servers: [signon_http, kubernetes_http],
        });
    }
    // One scheduled target: a Synoptic token rotated every day into a file.
    let synoptic_key = random_secret();
    let synoptic = SynopticSim::new(synoptic_key.expose_secret(), Arc::clone(&clock));
    let synoptic_http = synoptic.start().await?;
    let token_file = dir.path().join("weather-dashboard.token");
    let first = synoptic.add_token(None, &["dashboard"]);
    std::fs::write(&token_file, &first).context("seeding the token file")?;
    let settings = ScheduleSettings {
        issuer: crate::config::ScheduleIssuer::Synoptic,
        schedule: Schedule {
            name: "weather-dashboard".into(),
            api_user: "weather-dashboard".into(),
            environment: "production".into(),
            application: "synoptic".into(),
            every: Duration::from_secs(86400),
            overlap: Duration::from_secs(86400),
            window: None,
            jitter: Duration::ZERO,
            disable_old: false,
            handover: None,
        },
        distribution: ScheduleDistribution::File {
            path: token_file.display().to_string(),
            mode: 0o600,
            owner: None,
        },
    };
    let keys = Keys::random();
    let upstreams = crate::adapters::synoptic::scheduled::build(
        &settings.distribution,
        &SynopticSettings::at(&synoptic_http.url()),
        synoptic_key.clone(),
        &keys,
        observer.clone(),
        Arc::clone(&clock),
    );
    let scheduled = crate::engine::Scheduled {
        schedule: settings.schedule,
        upstreams,
    };
    let (gitlab, gitlab_environment, gitlab_scheduled) =
        gitlab_world(&dir, &clock, &observer).await?;
    environments.insert(GITLAB_ENVIRONMENT.to_owned(), gitlab_environment);
    let slack = SlackSim::new();
    let slack_http = slack.start().await?;
    // The channel the config names (`#token-rotator`), resolved by name as in a real workspace.
    slack.add_channel(DEMO_CHANNEL);
    let alertmanager = AlertmanagerSim::new();
    let alertmanager_http = alertmanager.start().await?;
    let bodies = fixtures::replay_bodies();
    seed(&worlds, &bodies)?;
    let production = worlds
        .iter()
        .find(|w| w.environment == "production")
        .context("a production world")?;
    asked::seed(production);

    let mut config = demo_config()?;
    config.database_url = format!("sqlite://{}", dir.path().join("journal.db").display());
    config.listen = "127.0.0.1:0".parse().expect("a literal address");
    config.engine.grace = GRACE;
    // The shipped config keeps production in shadow; the demo shows the rotations themselves.
    config
        .engine
        .modes
        .values_mut()
        .for_each(|m| *m = Mode::Active);
    config.engine.poll = Duration::from_millis(100);
    config.engine.retry = RetryPolicy {
        min_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        max_attempts: 5,
    };
    slack.set_group(APPROVERS_GROUP, &[APPROVER.0]);
    let slack_api = SlackApi::new(
        &format!("{}{API_PATH}", slack_http.url()),
        SecretString::from(BOT_TOKEN),
        Duration::from_secs(5),
    )
    .observed(observer.clone());
    let parts = EngineParts {
        adapters: Adapters {
            environments,
            slack: SlackOut::Threads,
            alertmanager: Some(
                AlertmanagerClient::new(vec![alertmanager_http.url()], Duration::from_secs(5))
                    .observed(observer),
            ),
            schedules: BTreeMap::from([
                ("weather-dashboard".to_owned(), scheduled),
                ("ci-bot".to_owned(), gitlab_scheduled),
            ]),
        },
        keys,
        clock,
        // Driven below, after every alert is journaled, so the outcome does not depend on timing.
        background: false,
        poll: Duration::from_secs(1),
        slack: SlackParts {
            api: Some(slack_api),
            signing_secret: Some(SecretString::from(SIGNING_SECRET)),
        },
    };
    let token = random_secret();
    let app = Application::build(config, WebhookAuth::bearer(&token), Some(parts), metrics).await?;
    let engine = app.engine().expect("built with an engine");
    let app_addr = app.local_addr();
    let url = format!("http://{}/v1/alertmanager", app.local_addr());
    let interactions = format!("http://{}/v1/slack/interactions", app.local_addr());
    println!(
        "token-rotator demo: service on {url}; Signon, Kubernetes, Slack, Synoptic and GitLab simulated on loopback"
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    // Last night's inventory, as the running service takes one daily: it knows the dead pair.
    engine.take_inventories().await?;
    post_all(&url, &token, &bodies).await?;
    post_all(&url, &token, &[("gitlab", gitlab_alert())]).await?;
    post_all(
        &url,
        &token,
        &[("external and dead API users", asked::alerts())],
    )
    .await?;
    engine.run_until_idle().await?;
    click_approvals(&engine, &slack, &interactions).await?;
    asked::choose(&engine, &slack, &interactions).await?;
    asked::collect_and_confirm(&engine, &slack, &format!("http://{}", app_addr)).await?;
    let rows = run_to_the_end(&engine).await?;
    let expected = expected_ends(&engine).await?;
    let _ = stop.send(());
    server.await.context("server task")??;

    println!("\nSlack, as the channels read (threads indented):");
    print!("{}", slack.transcript());
    print_outcomes(&rows);
    println!();
    for world in &worlds {
        println!(
            "{:<12} Signon: {} tokens minted, {} revoked; Kubernetes: {} Secrets",
            world.environment,
            world.signon.minted().len(),
            world.signon.revoked().len(),
            world.kubernetes.names().len(),
        );
    }
    let posted = slack.posted();
    println!(
        "Alertmanager: {} silences; Slack: {} threads, {} messages, {} edits, {} posts refused for going faster than 1/s; {:.1}s in all",
        alertmanager.silences().len(),
        posted.iter().filter(|m| m.thread_ts.is_none()).count(),
        posted.len(),
        posted.iter().map(|m| m.edits).sum::<usize>(),
        slack.rate_limited(),
        started.elapsed().as_secs_f64()
    );
    ensure!(
        slack.rate_limited() == 0,
        "Slack was posted to faster than 1 message per second per channel"
    );
    let (scheduled, alerted): (Vec<RotationRow>, Vec<RotationRow>) = rows
        .into_iter()
        .partition(|r| r.trigger.starts_with("schedule:"));
    let (gitlab_rows, scheduled): (Vec<RotationRow>, Vec<RotationRow>) = scheduled
        .into_iter()
        .partition(|r| r.environment == GITLAB_ENVIRONMENT);
    let gitlab_alerted: Vec<RotationRow> = alerted
        .iter()
        .filter(|r| r.environment == GITLAB_ENVIRONMENT)
        .cloned()
        .collect();
    gitlab.check(&gitlab_rows, &gitlab_alerted)?;
    let in_file = std::fs::read_to_string(&token_file).unwrap_or_default();
    println!(
        "Synoptic: {} tokens, {} live; the scheduled target {} (file holds a {} token; the old one expires by itself)",
        synoptic.tokens().len(),
        synoptic.live().len(),
        scheduled
            .first()
            .map_or("did not run", |r| r.phase.as_str()),
        if synoptic.is_live(&in_file) && in_file != first {
            "new, live"
        } else {
            "WRONG"
        },
    );
    ensure!(
        scheduled.len() == 1 && scheduled[0].phase == "done",
        "the scheduled Synoptic target did not rotate: {scheduled:?}"
    );
    ensure!(
        in_file != first && synoptic.is_live(&in_file) && synoptic.is_live(&first),
        "the token file does not hold a new live Synoptic token beside the old one"
    );
    let production = worlds
        .iter()
        .find(|w| w.environment == "production")
        .context("a production world")?;
    asked::check(production, &alerted)?;
    check(&alerted, &expected, &worlds)
}

const ENVIRONMENTS: [&str; 2] = ["integration", "production"];
/// One environment's simulated Signon and cluster.
struct Simulated {
    environment: &'static str,
    signon: Arc<SignonSim>,
    kubernetes: Arc<KubernetesSim>,
    _servers: [crate::sim::Running; 2],
}

fn random_secret() -> SecretString {
    SecretString::from(uuid::Uuid::new_v4().simple().to_string())
}

/// Gives every API user in the alerts a live token, synced to its Secret, as GOV.UK has today.
fn seed(worlds: &[Simulated], bodies: &[(&str, Vec<u8>)]) -> anyhow::Result<()> {
    let mut targets = BTreeSet::new();
    for (_, body) in bodies {
        let payload: serde_json::Value = serde_json::from_slice(body)?;
        for alert in payload["alerts"].as_array().into_iter().flatten() {
            let labels = &alert["labels"];
            if let (Some(env), Some(user), Some(app)) = (
                labels["environment"].as_str(),
                labels["api_user"].as_str(),
                labels["application"].as_str(),
            ) {
                targets.insert((env.to_owned(), user.to_owned(), app.to_owned()));
            }
        }
    }
    for (env, user, app) in targets {
        let Some(world) = worlds.iter().find(|w| w.environment == env) else {
            continue;
        };
        let value = world
            .signon
            .add_token(&user, &app, Duration::from_secs(10 * 86400));
        let name = secret_name(&world.signon.user_name(&user), &app);
        world.kubernetes.put(NAMESPACE, &name, TOKEN_KEY, &value);
        // Its consumer, rolled by Reloader when the Secret changes.
        let consumer = name.trim_start_matches("signon-token-");
        world.kubernetes.add_deployment(
            NAMESPACE,
            consumer,
            &name,
            SecretUse::Env,
            true,
            Rollout::Finishes,
        );
    }
    Ok(())
}

/// The demo's cluster: Secrets applied (by mint.rb), Reloader installed.
static DEMO_CLUSTER: std::sync::LazyLock<KubernetesSettings> =
    std::sync::LazyLock::new(|| KubernetesSettings {
        url: None,
        namespace: NAMESPACE.to_owned(),
        timeout: Duration::from_secs(5),
        distribution: Distribution::Apply,
        sync_cronjob: "signon-sync-token-secrets-to-k8s".to_owned(),
        reloader: true,
        max_jobs: crate::adapters::kubernetes::DEFAULT_MAX_JOBS,
    });

fn demo_job_template() -> JobTemplate {
    JobTemplate {
        pod_template: "signon-sync-token-secrets-to-k8s".to_owned(),
        image: None,
        namespace: NAMESPACE.to_owned(),
        service_account: None,
        scripts_config_map: "token-rotator-signon-scripts".to_owned(),
        ttl_seconds_after_finished: 3600,
        active_deadline_seconds: 300,
        cpu: None,
        memory: None,
        initiator: crate::sim::signon::INITIATOR.to_owned(),
    }
}

async fn post_all(
    url: &str,
    token: &SecretString,
    bodies: &[(&str, Vec<u8>)],
) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    println!("\nPOST {} webhook bodies:", bodies.len());
    for (name, body) in bodies {
        let response = client
            .post(url)
            .bearer_auth(token.expose_secret())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await
            .with_context(|| format!("POST {name}"))?;
        let status = response.status();
        let receipt: serde_json::Value = response.json().await?;
        ensure!(status.is_success(), "{name}: HTTP {status}: {receipt}");
        println!(
            "  {name:<58} {status}  {} new, {} duplicate",
            receipt["new"], receipt["duplicates"]
        );
    }
    Ok(())
}

/// Drives the engine until every rotation has ended and every message is delivered.
async fn run_to_the_end(engine: &Engine) -> anyhow::Result<Vec<RotationRow>> {
    let pool = engine.journal().pool();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        engine.run_until_idle().await?;
        let rows = rotations::all_rotations(pool).await?;
        let waiting = outbox::all_notifications(pool)
            .await?
            .iter()
            .any(|n| n.delivered_at_ms.is_none())
            || !threads::with_work(pool, jiff::Timestamp::now())
                .await?
                .is_empty();
        if rows.iter().all(|r| r.next_attempt_at_ms.is_none()) && !waiting {
            return Ok(rows);
        }
        if Instant::now() > deadline {
            let running: Vec<String> = rows
                .iter()
                .filter(|r| r.next_attempt_at_ms.is_some())
                .map(|r| {
                    format!(
                        "{} / {} in {} ({})",
                        r.api_user,
                        r.application,
                        r.phase,
                        r.last_error.as_deref().unwrap_or("no error")
                    )
                })
                .collect();
            bail!(
                "rotations still running after 60 s: {}",
                if running.is_empty() {
                    "none; Slack messages still waiting".to_owned()
                } else {
                    running.join("; ")
                }
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
