//! The `token-rotator` command line. Everything it does lives in the library; this file only
//! parses arguments and turns results into exit codes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use token_rotator::commands::{check_config, demo, explain, plan, rotate, serve, status, tokens};
use token_rotator::config::Config;
use token_rotator::domain::{ApiUser, Application, Environment, Target};
use token_rotator::engine::approval::{self, Decided, Decider, Verdict};
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

/// How a command that reads prints what it read.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// For people: tables and sentences.
    Text,
    /// For programs: one JSON document.
    Json,
}

/// `-o text|json`, as kubectl and cmctl spell it (`--json` is kept as `-o json`).
#[derive(Args)]
struct Output {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    format: Format,
    /// The same as `-o json`.
    #[arg(long, hide = true)]
    json: bool,
}

impl Output {
    fn json(&self) -> bool {
        self.json || self.format == Format::Json
    }
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
    /// Re-seal every value the journal holds sealed with the current encryption key, so the
    /// previous one (TOKEN_ROTATOR_ENCRYPTION_KEY_PREVIOUS) can be retired.
    Rekey {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Every rotation in the journal: phase, next action and when.
    Status {
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        output: Output,
    },
    /// Every token of the last inventory (taken daily by the service): its state, expiry and
    /// who renews it, and each environment's last sweep; tokens nobody renews first.
    Tokens {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Only this environment's tokens.
        #[arg(long)]
        environment: Option<String>,
        #[command(flatten)]
        output: Output,
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
    /// Approve a waiting approval request, as its Slack button does; the service rotates.
    Approve {
        rotation_id: String,
        /// Who is approving, for the audit trail and the Slack thread.
        #[arg(long = "as")]
        name: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Reject a waiting approval request, as its Slack button does; nothing is minted.
    Reject {
        rotation_id: String,
        #[arg(long = "as")]
        name: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// What would be done for the alerts firing now (from Alertmanager) or for these labels,
    /// changing nothing. Exit 0 when every plan is feasible, 2 when any step would fail.
    Plan {
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        output: Output,
        #[arg(long, requires_all = ["api_user", "application"])]
        environment: Option<String>,
        #[arg(long)]
        api_user: Option<String>,
        #[arg(long)]
        application: Option<String>,
        /// Another label, as name=value (repeatable).
        #[arg(long = "label", value_parser = explain::parse_label)]
        labels: Vec<(String, String)>,
    },
    /// The end-to-end benchmark (`bench/e2e.sh`): N tokens through the whole service on loopback.
    #[command(hide = true)]
    BenchE2e {
        #[arg(long, default_value_t = 1000)]
        tokens: usize,
        /// `fast`: simulators answer at once; `realistic`: a real cluster's latency, three runs.
        #[arg(long, value_enum, default_value = "fast")]
        profile: token_rotator::commands::bench_e2e::Profile,
        /// With `realistic`: only the run that measures intake beside the busy engine.
        #[arg(long)]
        intake_only: bool,
    },
    /// Write a token (read from stdin) to a file as the `file` distributor does. For tests that
    /// kill it between the write and the rename (`--pause-before-rename`).
    #[command(hide = true)]
    WriteTokenFile {
        path: PathBuf,
        #[arg(long)]
        pause_before_rename: bool,
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
        Command::Demo | Command::BenchE2e { .. } => "warn",
        _ => "info",
    };
    let logs = token_rotator::telemetry::init_logging(default_level);
    let outcome = run(cli.command);
    // Every log line is out before the last word below.
    drop(logs);
    match outcome {
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
        Command::Rekey { config } => {
            let config = Config::load(config.as_deref())?;
            let keys =
                token_rotator::secrets::Keys::from_env(&token_rotator::secrets::process_env)?;
            let done = runtime()?.block_on(async {
                let journal =
                    Journal::open(&config.database_url, config.journal_busy_timeout).await?;
                let done = token_rotator::store::rekey::rekey(journal.pool(), &keys).await;
                journal.close().await;
                done
            })?;
            println!(
                "re-sealed {}, already current {}, opened by no key {}",
                done.resealed, done.current, done.unopenable
            );
            if done.unopenable > 0 {
                return Ok(ExitCode::from(2));
            }
        }
        Command::Status { config, output } => {
            let json = output.json();
            let config = Config::load(config.as_deref())?;
            let rows = runtime()?.block_on(async {
                let journal =
                    Journal::open(&config.database_url, config.journal_busy_timeout).await?;
                let rows = status::load(&journal).await;
                let schedules = status::schedules(&journal).await;
                journal.close().await;
                anyhow::Ok((rows?, schedules?))
            })?;
            let (rows, schedules) = rows;
            if json {
                println!("{}", serde_json::to_string_pretty(&status::json(&rows))?);
            } else {
                print!("{}", status::table(&rows));
                print!("{}", status::schedule_table(&schedules));
            }
        }
        Command::Tokens {
            config,
            environment,
            output,
        } => {
            let json = output.json();
            let config = Config::load(config.as_deref())?;
            let inventories = runtime()?.block_on(async {
                let journal =
                    Journal::open(&config.database_url, config.journal_busy_timeout).await?;
                let loaded = tokens::load(&journal, environment.as_deref()).await;
                journal.close().await;
                anyhow::Ok(loaded?)
            })?;
            let now_ms = jiff::Timestamp::now().as_millisecond();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&tokens::json(&inventories, now_ms))?
                );
                if inventories.taken.is_empty() {
                    eprintln!("{}", tokens::NONE_TAKEN);
                }
            } else {
                print!("{}", tokens::table(&inventories, now_ms));
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
                let Some(mode) = config
                    .engine
                    .modes
                    .get(target.environment.as_str())
                    .copied()
                else {
                    anyhow::bail!(
                        "environment {:?} is not served by this config: add [environments.{}]",
                        target.environment.as_str(),
                        target.environment.as_str()
                    );
                };
                let channel = config
                    .engine
                    .slack
                    .channel(None, target.environment.as_str());
                let requested =
                    rotate::request(&journal, &target, mode, channel, jiff::Timestamp::now()).await;
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
        Command::Plan {
            config,
            output,
            environment,
            api_user,
            application,
            labels,
        } => {
            let json = output.json();
            let config = Config::load(config.as_deref())?;
            let reports = runtime()?.block_on(async {
                let observer = token_rotator::adapters::Observer::default();
                let upstreams = serve::upstreams(&config, &observer).await?;
                let alertmanager = serve::alertmanager(&config, observer);
                let alerts = match (environment, api_user, application) {
                    (Some(environment), Some(api_user), Some(application)) => {
                        let mut set: token_rotator::domain::Labels = labels.into_iter().collect();
                        set.insert("alertname".into(), token_rotator::reconcile::ALERTNAME.into());
                        set.insert("environment".into(), environment);
                        set.insert("api_user".into(), api_user);
                        set.insert("application".into(), application);
                        vec![set]
                    }
                    _ => {
                        let am = alertmanager.as_ref().ok_or_else(|| {
                            anyhow::anyhow!("no [alertmanager] configured: give --environment, --api-user and --application")
                        })?;
                        am.active_alerts(token_rotator::reconcile::ALERTNAME)
                            .await?
                            .into_iter()
                            .map(|a| a.labels)
                            .collect()
                    }
                };
                // Read only when an issuer's listing would write; never created here.
                let lists_with_job = upstreams
                    .as_ref()
                    .is_some_and(|all| all.values().any(|up| up.issuer.list_writes()));
                let journal = if lists_with_job {
                    Journal::open_existing(&config.database_url, config.journal_busy_timeout)
                        .await
                        .map_err(|e| e.to_string())
                } else {
                    Err("no issuer needs it".to_owned())
                };
                let reports = plan::plan_all(
                    &config,
                    alerts,
                    upstreams.as_ref(),
                    alertmanager.as_ref(),
                    journal.as_ref().map_err(String::as_str),
                )
                .await;
                if let Ok(journal) = journal {
                    journal.close().await;
                }
                anyhow::Ok(reports)
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&plan::json(&reports))?);
            } else {
                print!("{}", plan::render(&reports));
            }
            if reports.iter().any(|r| !r.plan.feasible) {
                return Ok(ExitCode::from(2));
            }
        }
        Command::Approve {
            rotation_id,
            name,
            config,
        } => return decide(config, &rotation_id, Verdict::Approve, &name),
        Command::Reject {
            rotation_id,
            name,
            config,
        } => return decide(config, &rotation_id, Verdict::Reject, &name),
        Command::BenchE2e {
            tokens,
            profile,
            intake_only,
        } => runtime()?.block_on(token_rotator::commands::bench_e2e::run(
            tokens,
            profile,
            intake_only,
        ))?,
        Command::WriteTokenFile {
            path,
            pause_before_rename,
        } => {
            use std::io::{Read, Write};
            let mut value = String::new();
            std::io::stdin().read_to_string(&mut value)?;
            let file = token_rotator::adapters::file::FileDistributor::new(path, 0o600, None);
            let temp = file.prepare(value.trim_end())?;
            if pause_before_rename {
                println!("prepared {}", temp.display());
                std::io::stdout().flush()?;
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
            file.commit(&temp)?;
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

/// `approve` and `reject`: one journal transaction, like a click; exit 1 when nothing changed.
fn decide(
    config: Option<PathBuf>,
    rotation_id: &str,
    verdict: Verdict,
    name: &str,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !name.trim().is_empty(),
        "--as needs a name for the audit trail"
    );
    let config = Config::load(config.as_deref())?;
    let decided = runtime()?.block_on(async {
        let journal = Journal::open(&config.database_url, config.journal_busy_timeout).await?;
        let decided = approval::decide(
            journal.pool(),
            rotation_id,
            verdict,
            &Decider::cli(name),
            jiff::Timestamp::now(),
        )
        .await;
        journal.close().await;
        anyhow::Ok(decided?)
    })?;
    match decided {
        Decided::Done(Verdict::Approve) => {
            println!("rotation {rotation_id} approved by {name}; the running service rotates it");
            Ok(ExitCode::SUCCESS)
        }
        Decided::Done(Verdict::Reject) => {
            println!("rotation {rotation_id} rejected by {name}; nothing was changed");
            Ok(ExitCode::SUCCESS)
        }
        Decided::Done(other) => {
            println!("rotation {rotation_id}: {name} {}", other.past());
            Ok(ExitCode::SUCCESS)
        }
        Decided::NotOffered(why) => {
            eprintln!("rotation {rotation_id}: {why}; nothing changed");
            Ok(ExitCode::FAILURE)
        }
        Decided::Closed { phase, by } => {
            let by = by.map_or_else(String::new, |b| format!(", decided by {b}"));
            eprintln!(
                "rotation {rotation_id} is not waiting for approval ({phase}{by}); nothing changed"
            );
            Ok(ExitCode::FAILURE)
        }
        Decided::Unknown => {
            eprintln!("no rotation {rotation_id} in the journal");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
