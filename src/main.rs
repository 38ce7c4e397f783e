//! The `token-rotator` command line. Everything it does lives in the library; this file only
//! parses arguments and turns results into exit codes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use token_rotator::commands::{check_config, demo, explain, rotate, serve, status};
use token_rotator::config::Config;
use token_rotator::domain::{ApiUser, Application, Environment, Target};
use token_rotator::store::Journal;

#[derive(Parser)]
#[command(
    name = "token-rotator",
    version,
    about = "Rotates expiring API tokens on Alertmanager alerts"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: receive Alertmanager webhooks on POST /v1/alertmanager.
    Serve {
        /// TOML configuration file (default: the built-in one).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on (overrides the config's `listen`).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Accept webhooks without a credential. Only for a trusted network.
        #[arg(long)]
        insecure_no_auth: bool,
        /// Allow a grace period under 5 minutes (gds-sso caches tokens that long).
        #[arg(long)]
        allow_short_grace: bool,
    },
    /// Run the service on loopback with throwaway state and replay the Alertmanager captures.
    Demo,
    /// Every rotation in the journal: phase, next action and when (table, or --json).
    Status {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Ask for a rotation by hand; the running service carries it out like an alert's.
    Rotate {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        environment: String,
        #[arg(long)]
        api_user: String,
        #[arg(long)]
        application: String,
    },
    /// Validate a configuration file; prints every problem with its line and column.
    CheckConfig { file: PathBuf },
    /// Show which rule decides for an alert with these labels, and why.
    Explain {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        environment: String,
        #[arg(long)]
        api_user: String,
        #[arg(long)]
        application: String,
        /// Another label, as name=value (repeatable).
        #[arg(long = "label", value_parser = explain::parse_label)]
        labels: Vec<(String, String)>,
    },
}

fn main() -> ExitCode {
    token_rotator::install_crypto_provider();
    let cli = Cli::parse();
    // The demo prints its own report; its logs would only bury it unless asked for.
    let default_level = match cli.command {
        Command::Demo => "warn",
        _ => "info",
    };
    token_rotator::telemetry::init_logging(default_level);
    match run(cli.command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("token-rotator: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve {
            config,
            listen,
            insecure_no_auth,
            allow_short_grace,
        } => {
            runtime()?.block_on(serve::run(serve::ServeArgs {
                config,
                listen,
                insecure_no_auth,
                allow_short_grace,
            }))?;
        }
        Command::Demo => runtime()?.block_on(demo::run())?,
        Command::Status { config, json } => {
            let config = Config::load(config.as_deref())?;
            let rows = runtime()?.block_on(async {
                let journal =
                    Journal::open(&config.database_url, config.journal_busy_timeout).await?;
                let rows = status::load(&journal).await;
                journal.close().await;
                anyhow::Ok(rows?)
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status::json(&rows))?);
            } else {
                print!("{}", status::table(&rows));
            }
        }
        Command::Rotate {
            config,
            environment,
            api_user,
            application,
        } => {
            let config = Config::load(config.as_deref())?;
            let target = Target {
                environment: Environment::parse(&environment)?,
                api_user: ApiUser::parse(&api_user)?,
                application: Application::parse(&application)?,
            };
            let requested = runtime()?.block_on(async {
                let journal =
                    Journal::open(&config.database_url, config.journal_busy_timeout).await?;
                let mode = config
                    .engine
                    .modes
                    .get(target.environment.as_str())
                    .copied()
                    .unwrap_or_default();
                let requested =
                    rotate::request(&journal, &target, mode, jiff::Timestamp::now()).await;
                journal.close().await;
                requested
            })?;
            match requested {
                rotate::Requested::Started(id) => {
                    println!(
                        "rotation {id} journaled for {target}; the running service carries it out"
                    )
                }
                rotate::Requested::AlreadyActive { id, phase } => {
                    println!(
                        "rotation {id} for {target} is already under way (phase {phase}); not starting another"
                    )
                }
            }
        }
        Command::CheckConfig { file } => {
            let (report, valid) = check_config::run(&file);
            if !valid {
                eprintln!("{report}");
                return Ok(ExitCode::FAILURE);
            }
            println!("{report}");
        }
        Command::Explain {
            config,
            environment,
            api_user,
            application,
            labels,
        } => {
            let config = Config::load(config.as_deref())?;
            let args = explain::ExplainArgs {
                environment,
                api_user,
                application,
                labels,
            };
            print!("{}", explain::run(&config, args));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
