//! The command line's contract, as kubectl and cmctl keep it: `-o text|json` on every command
//! that reads, exit codes with one meaning each (documented in `--help`), help on every flag,
//! shell completion and a manual page, and reading commands that never create a journal.

use std::path::Path;
use std::process::{Command, Output};

use clap::CommandFactory;
use token_rotator::cli::{Cli, exit};

fn token_rotator_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_token-rotator"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        // The built-in config's `database_url`: `./token-rotator.db`, relative to `dir`.
        .env_remove("TOKEN_ROTATOR_DATABASE_URL")
        .output()
        .expect("the binary runs")
}

fn token_rotator(args: &[&str]) -> Output {
    token_rotator_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every argument of `command` and its subcommands without a help text, as `command arg`.
fn arguments_without_help(command: &mut clap::Command) -> Vec<String> {
    command.build();
    let mut missing = Vec::new();
    walk(command, &mut missing);
    missing
}

fn walk(command: &clap::Command, missing: &mut Vec<String>) {
    for arg in command.get_arguments() {
        if arg.get_help().is_none() && arg.get_long_help().is_none() {
            missing.push(format!("{} {}", command.get_name(), arg.get_id()));
        }
    }
    for sub in command.get_subcommands() {
        walk(sub, missing);
    }
}

#[test]
fn every_argument_of_every_command_has_help() {
    let missing = arguments_without_help(&mut Cli::command());
    assert!(missing.is_empty(), "arguments without help: {missing:?}");
}

#[test]
fn the_help_check_finds_an_argument_without_help() {
    let mut command = clap::Command::new("x").subcommand(
        clap::Command::new("y")
            .arg(
                clap::Arg::new("documented")
                    .long("documented")
                    .help("Says what it is."),
            )
            .arg(clap::Arg::new("bare").long("bare")),
    );
    assert_eq!(arguments_without_help(&mut command), ["y bare"]);
}

#[test]
fn every_command_documents_its_exit_status() {
    let mut cli = Cli::command();
    cli.build();
    for sub in cli.get_subcommands().filter(|s| s.get_name() != "help") {
        let after = sub.get_after_help().map(ToString::to_string);
        assert!(
            after.as_deref().is_some_and(|a| a.contains("Exit status:")),
            "{} --help says nothing of its exit status",
            sub.get_name()
        );
    }
}

#[test]
fn exit_codes_have_one_meaning_each() {
    let codes = [
        exit::OK,
        exit::FAILED,
        exit::USAGE,
        exit::PLAN_WOULD_FAIL,
        exit::REKEY_UNOPENABLE,
    ];
    let mut distinct = codes.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), codes.len(), "a code is reused: {codes:?}");
    // 2 is clap's: what it exits with on a usage error.
    let usage = token_rotator(&["plan", "--environment", "production"]);
    assert_eq!(usage.status.code(), Some(i32::from(exit::USAGE)));
}

#[test]
fn plan_help_documents_its_own_code_for_a_step_that_would_fail() {
    let help = token_rotator(&["plan", "--help"]);
    assert!(help.status.success());
    let help = text(&help.stdout);
    assert!(
        help.contains("3  at least one step would fail"),
        "plan --help:\n{help}"
    );
    assert_eq!(exit::PLAN_WOULD_FAIL, 3);
}

#[test]
fn reading_commands_refuse_a_journal_that_does_not_exist_and_create_none() {
    let dir = tempfile::tempdir().unwrap();
    let commands: [&[&str]; 5] = [
        &["status"],
        &["status", "-o", "json"],
        &["tokens"],
        &["approve", "some-rotation", "--as", "carol"],
        &[
            "rotate",
            "--environment=production",
            "--api-user=a@alphagov.co.uk",
            "--application=x",
        ],
    ];
    for args in commands {
        let output = token_rotator_in(dir.path(), args);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("no journal at"), "{args:?}: {stderr}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{args:?} left {left:?} behind");
    }
}

#[test]
fn explain_prints_json_with_o_json() {
    let output = token_rotator(&[
        "explain",
        "--environment=production",
        "--api-user=customs-integration@hmrc.gov.uk",
        "--application=Publishing API",
        "-o",
        "json",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["served"], true);
    assert_eq!(json["decision"]["action"]["action"], "manual", "{json}");
    assert_eq!(
        json["decision"]["rule"]["name"],
        "human-or-external-api-user-needs-a-handover"
    );
    assert_eq!(json["rules"][0]["matched"], false);

    let unserved = token_rotator(&[
        "explain",
        "--environment=nowhere",
        "--api-user=a@alphagov.co.uk",
        "--application=x",
        "-o",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&unserved.stdout).unwrap();
    assert_eq!(json["served"], false);
    assert_eq!(json["environment"], "nowhere");
}

#[test]
fn check_config_prints_json_with_o_json() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let good = root.join("config/default.toml");
    let output = token_rotator(&["check-config", good.to_str().unwrap(), "-o", "json"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["valid"], true);
    assert_eq!(json["environments"]["production"], "shadow");
    assert_eq!(json["rules"].as_array().unwrap().len(), 5);

    let bad = root.join("fixtures/config/broken-semantics.toml");
    let output = token_rotator(&["check-config", bad.to_str().unwrap(), "-o", "json"]);
    assert_eq!(output.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["valid"], false);
    assert_eq!(json["problems"][0]["line"], 4);
    assert_eq!(json["problems"][0]["column"], 10);
    assert_eq!(json["problems"].as_array().unwrap().len(), 3);
}

#[test]
fn completion_scripts_name_every_command() {
    for (shell, marker) in [("bash", "complete -F"), ("zsh", "#compdef token-rotator")] {
        let output = token_rotator(&["completion", shell]);
        assert!(output.status.success(), "{shell}: {}", text(&output.stderr));
        let script = text(&output.stdout);
        assert!(script.contains(marker), "{shell}:\n{script}");
        for command in ["check-config", "explain", "plan", "status", "tokens"] {
            assert!(script.contains(command), "{shell} lacks {command}");
        }
    }
    let unknown = token_rotator(&["completion", "cmd.exe"]);
    assert_eq!(unknown.status.code(), Some(i32::from(exit::USAGE)));
}

#[test]
fn man_prints_a_roff_page_and_writes_one_per_command() {
    let output = token_rotator(&["man"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let page = text(&output.stdout);
    assert!(page.contains(".TH token-rotator 1"), "{page}");
    assert!(page.contains("check\\-config"), "{page}");

    let dir = tempfile::tempdir().unwrap();
    let output = token_rotator(&["man", "--out-dir", dir.path().to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let plan = std::fs::read_to_string(dir.path().join("token-rotator-plan.1")).unwrap();
    assert!(plan.contains("at least one step would fail"), "{plan}");
    assert!(dir.path().join("token-rotator.1").exists());
    // Hidden commands are for tests and benchmarks, not for the manual.
    assert!(!dir.path().join("token-rotator-write-token-file.1").exists());
}
