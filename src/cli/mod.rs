//! The command line's shape: every command, flag and help text. `main.rs` runs what is parsed;
//! the shape lives in the library so that tests can walk it and `completion` and `man` can
//! render it.

pub mod docs;
pub mod exit;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands::explain::parse_label;

#[derive(Parser)]
#[command(
    name = "token-rotator",
    version,
    about = "Rotates expiring API tokens on Alertmanager alerts",
    after_help = exit::SUMMARY
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// How a command that reads prints what it read.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people: tables and sentences.
    Text,
    /// For programs: one JSON document.
    Json,
}

/// `-o text|json`, as kubectl and cmctl spell it (`--json` is kept as `-o json`).
#[derive(Args)]
pub struct Output {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// The same as `-o json`.
    #[arg(long, hide = true)]
    pub json: bool,
}

impl Output {
    pub fn json(&self) -> bool {
        self.json || self.format == Format::Json
    }
}

/// `--config`, shared by every command that reads one.
#[derive(Args)]
pub struct ConfigFile {
    /// TOML configuration file (default: the built-in one; TOKEN_ROTATOR_* variables override).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// The three labels that name a token: where it lives, whose it is, what it is for.
#[derive(Args)]
pub struct TargetArgs {
    /// The environment label, e.g. `production`.
    #[arg(long)]
    pub environment: String,
    /// The API user's email (Signon) or the token's owner, as the alert's `api_user` label.
    #[arg(long)]
    pub api_user: String,
    /// The application the token is for, as the alert's `application` label.
    #[arg(long)]
    pub application: String,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the service: receive Alertmanager webhooks on POST /v1/alertmanager.
    #[command(after_help = exit::COMMON)]
    Serve {
        #[command(flatten)]
        config: ConfigFile,
        /// Address to listen on (overrides the config's `listen`).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Accept webhooks without a credential. Only for a trusted network.
        #[arg(long)]
        insecure_no_auth: bool,
        /// Allow a grace period under 5 minutes (consumers cache tokens that long).
        #[arg(long)]
        allow_short_grace: bool,
    },
    /// Run the service on loopback with throwaway state and replay the Alertmanager captures.
    #[command(after_help = exit::DEMO)]
    Demo,
    /// Re-seal every value the journal holds sealed with the current encryption key, so the
    /// previous one (TOKEN_ROTATOR_ENCRYPTION_KEY_PREVIOUS) can be retired.
    #[command(after_help = exit::REKEY)]
    Rekey {
        #[command(flatten)]
        config: ConfigFile,
    },
    /// Every rotation in the journal: phase, next action and when.
    #[command(after_help = exit::COMMON)]
    Status {
        #[command(flatten)]
        config: ConfigFile,
        #[command(flatten)]
        output: Output,
    },
    /// Every token of the last inventory (taken daily by the service): its state, expiry and
    /// who renews it, and each environment's last sweep; tokens nobody renews first.
    #[command(after_help = exit::COMMON)]
    Tokens {
        #[command(flatten)]
        config: ConfigFile,
        /// Only this environment's tokens.
        #[arg(long)]
        environment: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// Ask for a rotation by hand; the running service carries it out like an alert's.
    #[command(after_help = exit::COMMON)]
    Rotate {
        #[command(flatten)]
        config: ConfigFile,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Approve a waiting approval request, as its Slack button does; the service rotates.
    #[command(after_help = exit::DECIDE)]
    Approve {
        /// The rotation's id, as `status` and the Slack thread show it.
        rotation_id: String,
        /// Who is approving, for the audit trail and the Slack thread.
        #[arg(long = "as")]
        name: String,
        #[command(flatten)]
        config: ConfigFile,
    },
    /// Reject a waiting approval request, as its Slack button does; nothing is minted.
    #[command(after_help = exit::DECIDE)]
    Reject {
        /// The rotation's id, as `status` and the Slack thread show it.
        rotation_id: String,
        /// Who is rejecting, for the audit trail and the Slack thread.
        #[arg(long = "as")]
        name: String,
        #[command(flatten)]
        config: ConfigFile,
    },
    /// What would be done for the alerts firing now (from Alertmanager) or for these labels,
    /// changing nothing.
    #[command(after_help = exit::PLAN)]
    Plan {
        #[command(flatten)]
        config: ConfigFile,
        #[command(flatten)]
        output: Output,
        /// Plan for this environment instead of the firing alerts (with --api-user and
        /// --application).
        #[arg(long, requires_all = ["api_user", "application"])]
        environment: Option<String>,
        /// The alert's `api_user` label.
        #[arg(long)]
        api_user: Option<String>,
        /// The alert's `application` label.
        #[arg(long)]
        application: Option<String>,
        /// Another label, as name=value (repeatable).
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
    },
    /// The end-to-end benchmark (`bench/e2e.sh`): N tokens through the whole service on loopback.
    #[cfg(feature = "sim")]
    #[command(hide = true, after_help = exit::COMMON)]
    BenchE2e {
        /// How many tokens to rotate.
        #[arg(long, default_value_t = 1000)]
        tokens: usize,
        /// `fast`: simulators answer at once; `realistic`: a real cluster's latency, three runs.
        #[arg(long, value_enum, default_value = "fast")]
        profile: crate::commands::bench_e2e::Profile,
        /// With `realistic`: only the run that measures intake beside the busy engine.
        #[arg(long)]
        intake_only: bool,
    },
    /// Write a token (read from stdin) to a file as the `file` distributor does. For tests that
    /// kill it between the write and the rename (`--pause-before-rename`).
    #[command(hide = true, after_help = exit::COMMON)]
    WriteTokenFile {
        /// The file to write.
        path: PathBuf,
        /// Stop for an hour after writing the temporary file, before renaming it into place.
        #[arg(long)]
        pause_before_rename: bool,
    },
    /// Validate a configuration file; prints every problem with its line and column.
    #[command(after_help = exit::CHECK_CONFIG)]
    CheckConfig {
        /// The TOML configuration file to check.
        file: PathBuf,
        #[command(flatten)]
        output: Output,
    },
    /// Show which rule decides for an alert with these labels, and why.
    #[command(after_help = exit::COMMON)]
    Explain {
        #[command(flatten)]
        config: ConfigFile,
        #[command(flatten)]
        target: TargetArgs,
        /// Another label, as name=value (repeatable).
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        #[command(flatten)]
        output: Output,
    },
    /// Print a shell completion script, e.g. `token-rotator completion bash > /etc/bash_completion.d/token-rotator`.
    #[command(after_help = exit::COMMON)]
    Completion {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write one page per command into a directory.
    #[command(after_help = exit::COMMON)]
    Man {
        /// Write token-rotator.1 and token-rotator-COMMAND.1 here instead of printing.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
}

impl Command {
    /// Commands that print a report of their own: their logs would only bury it unless asked for.
    pub fn quiet(&self) -> bool {
        match self {
            Command::Demo | Command::Completion { .. } | Command::Man { .. } => true,
            #[cfg(feature = "sim")]
            Command::BenchE2e { .. } => true,
            _ => false,
        }
    }
}
