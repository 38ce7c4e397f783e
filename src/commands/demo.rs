//! `token-rotator demo`: the whole service on loopback with throwaway state. It starts the
//! service with a fresh SQLite journal in a temporary directory and a one-off credential, POSTs
//! every Alertmanager capture (and the synthetic special cases) to it over real HTTP, then reopens the journal and prints, per
//! alert, the target and the decision with the rule that made it.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, ensure};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::oneshot;

use crate::app::Application;
use crate::config::Config;
use crate::fixtures;
use crate::intake::auth::WebhookAuth;
use crate::store::{AlertRow, Journal};

pub async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let mut config = Config::builtin();
    config.database_url = format!("sqlite://{}", dir.path().join("journal.db").display());
    config.listen = "127.0.0.1:0".parse().expect("a literal address");
    let busy_timeout = config.journal_busy_timeout;
    let database_url = config.database_url.clone();
    // A credential for this run only; never printed.
    let token = SecretString::from(uuid::Uuid::new_v4().simple().to_string());

    let app = Application::build(config, WebhookAuth::bearer(&token)).await?;
    let url = format!("http://{}/v1/alertmanager", app.local_addr());
    println!(
        "token-rotator demo: service on {url}, journal in {}",
        dir.path().display()
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let bodies = fixtures::replay_bodies();
    println!("\nPOST {} webhook bodies:", bodies.len());
    for (name, body) in bodies {
        let response = client
            .post(&url)
            .bearer_auth(token.expose_secret())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
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
    let _ = stop.send(());
    server.await.context("server task")??;

    // Reopen the journal: what is printed is what survived the shutdown, not what is in memory.
    let journal = Journal::open(&database_url, busy_timeout).await?;
    let rows = journal.alerts().await?;
    journal.close().await;
    print_decisions(&rows);
    ensure!(!rows.is_empty(), "the journal is empty after the demo");
    Ok(())
}

fn print_decisions(rows: &[AlertRow]) {
    println!("\nJournaled alerts and decisions ({} rows):", rows.len());
    println!(
        "  {:<16} {:<9} {:<12} {:<40} {:<22} {:<10} rule",
        "fingerprint", "status", "environment", "api_user", "application", "decision"
    );
    let mut counts = BTreeMap::new();
    for row in rows {
        let rule = match (&row.rule_index, &row.rule_name) {
            (Some(index), Some(name)) => format!("#{index} {name}"),
            _ => row.reason.clone().unwrap_or_else(|| "fallback".into()),
        };
        println!(
            "  {:<16} {:<9} {:<12} {:<40} {:<22} {:<10} {rule}",
            row.fingerprint,
            row.status,
            row.environment.as_deref().unwrap_or("-"),
            row.api_user.as_deref().unwrap_or("-"),
            row.application.as_deref().unwrap_or("-"),
            row.action,
        );
        *counts.entry(row.action.as_str()).or_insert(0) += 1;
    }
    let summary: Vec<_> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("\ndecisions: {}", summary.join(" "));
}
