//! The `token-rotator` command line. Everything it does lives in the library (its shape in
//! `token_rotator::cli`); this file only runs what was parsed and turns results into exit codes
//! (`token_rotator::cli::exit`, one meaning per number).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use token_rotator::cli::{Cli, Command, ConfigFile, Output, TargetArgs, docs, exit};
use token_rotator::commands::{check_config, explain, plan, rotate, serve, status, tokens};
use token_rotator::config::Config;
use token_rotator::domain::{ApiUser, Application, Environment, Target};
use token_rotator::engine::approval::{self, Decided, Decider, Verdict};
use token_rotator::store::Journal;

fn main() -> ExitCode {
    token_rotator::install_crypto_provider();
    let cli = Cli::parse();
    let default_level = if cli.command.quiet() { "warn" } else { "info" };
    let logs = token_rotator::telemetry::init_logging(default_level);
    let outcome = run(cli.command);
    // Every log line is out before the last word below.
    drop(logs);
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("token-rotator: {error:#}");
            exit::code(exit::FAILED)
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
                config: config.config,
                listen,
                insecure_no_auth,
                allow_short_grace,
            }))?;
        }
        Command::Demo => demo()?,
        Command::Rekey { config } => return rekey(config),
        Command::Status { config, output } => status(config, output)?,
        Command::Tokens {
            config,
            environment,
            output,
        } => tokens(config, environment, output)?,
        Command::Rotate { config, target } => rotate(config, target)?,
        Command::Plan {
            config,
            output,
            environment,
            api_user,
            application,
            labels,
        } => {
            let alerts = environment.zip(api_user).zip(application).map(
                |((environment, api_user), application)| TargetArgs {
                    environment,
                    api_user,
                    application,
                },
            );
            return plan(config, output, alerts, labels);
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
        #[cfg(feature = "sim")]
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
        } => write_token_file(path, pause_before_rename)?,
        Command::CheckConfig { file, output } => {
            let report = check_config::check(&file);
            if output.json() {
                println!("{}", serde_json::to_string_pretty(&report.json())?);
            } else if report.valid() {
                println!("{}", report.text());
            } else {
                eprintln!("{}", report.text());
            }
            if !report.valid() {
                return Ok(exit::code(exit::FAILED));
            }
        }
        Command::Explain {
            config,
            target,
            labels,
            output,
        } => {
            let config = Config::load(config.config.as_deref())?;
            let args = explain::ExplainArgs {
                environment: target.environment,
                api_user: target.api_user,
                application: target.application,
                labels,
            };
            let explained = explain::run(&config, args);
            if output.json() {
                println!("{}", serde_json::to_string_pretty(&explained.json())?);
            } else {
                print!("{}", explained.text());
            }
        }
        Command::Completion { shell } => {
            let mut stdout = std::io::stdout().lock();
            docs::completion(shell, &mut stdout);
            stdout.flush()?;
        }
        Command::Man { out_dir: None } => docs::man(&mut std::io::stdout().lock())?,
        Command::Man { out_dir: Some(dir) } => {
            for page in docs::man_pages(&dir)? {
                println!("{}", page.display());
            }
        }
    }
    Ok(exit::code(exit::OK))
}

#[cfg(feature = "sim")]
fn demo() -> anyhow::Result<()> {
    runtime()?.block_on(token_rotator::commands::demo::run())
}

#[cfg(not(feature = "sim"))]
fn demo() -> anyhow::Result<()> {
    anyhow::bail!(
        "demo is not in this build: it runs against the simulators, which release images leave \
out; build with the default features (`cargo run -- demo`)"
    )
}

/// Opens the journal the service keeps, never creating one: a command run on a laptop with the
/// default `database_url` must say there is none rather than leave an empty file behind.
async fn existing_journal(config: &Config) -> anyhow::Result<Journal> {
    Ok(Journal::open_existing(&config.database_url, config.journal_busy_timeout).await?)
}

fn rekey(config: ConfigFile) -> anyhow::Result<ExitCode> {
    let config = Config::load(config.config.as_deref())?;
    let keys = token_rotator::secrets::Keys::from_env(&token_rotator::secrets::process_env)?;
    let done = runtime()?.block_on(async {
        let journal = existing_journal(&config).await?;
        let done = token_rotator::store::rekey::rekey(journal.pool(), &keys).await;
        journal.close().await;
        anyhow::Ok(done?)
    })?;
    println!(
        "re-sealed {}, already current {}, opened by no key {}",
        done.resealed, done.current, done.unopenable
    );
    if done.unopenable > 0 {
        return Ok(exit::code(exit::REKEY_UNOPENABLE));
    }
    Ok(exit::code(exit::OK))
}

fn status(config: ConfigFile, output: Output) -> anyhow::Result<()> {
    let config = Config::load(config.config.as_deref())?;
    let (rows, schedules) = runtime()?.block_on(async {
        let journal = existing_journal(&config).await?;
        let rows = status::load(&journal).await;
        let schedules = status::schedules(&journal).await;
        journal.close().await;
        anyhow::Ok((rows?, schedules?))
    })?;
    if output.json() {
        println!("{}", serde_json::to_string_pretty(&status::json(&rows))?);
    } else {
        print!("{}", status::table(&rows));
        print!("{}", status::schedule_table(&schedules));
    }
    Ok(())
}

fn tokens(config: ConfigFile, environment: Option<String>, output: Output) -> anyhow::Result<()> {
    let config = Config::load(config.config.as_deref())?;
    let inventories = runtime()?.block_on(async {
        let journal = existing_journal(&config).await?;
        let loaded = tokens::load(&journal, environment.as_deref()).await;
        journal.close().await;
        anyhow::Ok(loaded?)
    })?;
    let now_ms = jiff::Timestamp::now().as_millisecond();
    if output.json() {
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
    Ok(())
}

fn rotate(config: ConfigFile, target: TargetArgs) -> anyhow::Result<()> {
    let config = Config::load(config.config.as_deref())?;
    let target = Target {
        environment: Environment::parse(&target.environment)?,
        api_user: ApiUser::parse(&target.api_user)?,
        application: Application::parse(&target.application)?,
    };
    let environment = target.environment.as_str();
    let Some(mode) = config.engine.modes.get(environment).copied() else {
        anyhow::bail!(
            "environment {environment:?} is not served by this config: add [environments.{environment}]"
        );
    };
    let channel = config.engine.slack.channel(None, environment);
    let requested = runtime()?.block_on(async {
        let journal = existing_journal(&config).await?;
        let requested =
            rotate::request(&journal, &target, mode, channel, jiff::Timestamp::now()).await;
        journal.close().await;
        requested
    })?;
    match requested {
        rotate::Requested::Started(id) => {
            println!("rotation {id} journaled for {target}; the running service carries it out")
        }
        rotate::Requested::AlreadyActive { id, phase } => println!(
            "rotation {id} for {target} is already under way (phase {phase}); not starting another"
        ),
    }
    Ok(())
}

fn plan(
    config: ConfigFile,
    output: Output,
    target: Option<TargetArgs>,
    labels: Vec<(String, String)>,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(config.config.as_deref())?;
    let alerts = target.map(|t| {
        let mut set: token_rotator::domain::Labels = labels.into_iter().collect();
        set.insert(
            "alertname".into(),
            token_rotator::reconcile::ALERTNAME.into(),
        );
        set.insert("environment".into(), t.environment);
        set.insert("api_user".into(), t.api_user);
        set.insert("application".into(), t.application);
        vec![set]
    });
    let reports = runtime()?.block_on(plan::for_cli(&config, alerts))?;
    if output.json() {
        println!("{}", serde_json::to_string_pretty(&plan::json(&reports))?);
    } else {
        print!("{}", plan::render(&reports));
    }
    if reports.iter().any(|r| !r.plan.feasible) {
        return Ok(exit::code(exit::PLAN_WOULD_FAIL));
    }
    Ok(exit::code(exit::OK))
}

/// Writes a token from stdin as the `file` distributor does, optionally pausing before the
/// rename so that a test can kill it there.
fn write_token_file(path: PathBuf, pause_before_rename: bool) -> anyhow::Result<()> {
    use std::io::Read;
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
    Ok(())
}

/// `approve` and `reject`: one journal transaction, like a click; exit 1 when nothing changed.
fn decide(
    config: ConfigFile,
    rotation_id: &str,
    verdict: Verdict,
    name: &str,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !name.trim().is_empty(),
        "--as needs a name for the audit trail"
    );
    let config = Config::load(config.config.as_deref())?;
    let decided = runtime()?.block_on(async {
        let journal = existing_journal(&config).await?;
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
    let refused = |why: String| {
        eprintln!("{why}");
        Ok(exit::code(exit::FAILED))
    };
    match decided {
        Decided::Done(Verdict::Approve) => {
            println!("rotation {rotation_id} approved by {name}; the running service rotates it")
        }
        Decided::Done(Verdict::Reject) => {
            println!("rotation {rotation_id} rejected by {name}; nothing was changed")
        }
        Decided::Done(other) => println!("rotation {rotation_id}: {name} {}", other.past()),
        Decided::NotOffered(why) => {
            return refused(format!("rotation {rotation_id}: {why}; nothing changed"));
        }
        Decided::Closed { phase, by } => {
            let by = by.map_or_else(String::new, |b| format!(", decided by {b}"));
            return refused(format!(
                "rotation {rotation_id} is not waiting for approval ({phase}{by}); nothing changed"
            ));
        }
        Decided::Unknown => return refused(format!("no rotation {rotation_id} in the journal")),
    }
    Ok(exit::code(exit::OK))
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
