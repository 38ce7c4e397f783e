//! `token-rotator serve`: the long-running service.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

use crate::app::{Application, shutdown_signal};
use crate::config::Config;
use crate::intake::auth::WebhookAuth;
use crate::secrets;

pub struct ServeArgs {
    pub config: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub insecure_no_auth: bool,
}

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
    let app = Application::build(config, auth).await?;
    tracing::info!(addr = %app.local_addr(), "listening");
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}
