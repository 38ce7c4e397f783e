//! The binary itself: check-config, explain, and serve's start-up and shutdown.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn token_rotator(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_token-rotator"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs")
}

fn fixture_path(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(path)
        .display()
        .to_string()
}

fn check_config(file: &str) -> (i32, Vec<String>) {
    let path = fixture_path(file);
    let output = token_rotator(&["check-config", &path]);
    let stderr = String::from_utf8(output.stderr).unwrap();
    // Paths vary by checkout; keep `line:column: message`.
    let lines = stderr
        .lines()
        .map(|l| l.strip_prefix(&format!("{path}:")).unwrap_or(l).to_owned())
        .collect();
    (output.status.code().unwrap(), lines)
}

#[test]
fn check_config_reports_a_syntax_error_with_its_line() {
    let (code, lines) = check_config("config/broken-syntax.toml");
    assert_eq!(code, 1);
    assert_eq!(lines.len(), 1, "{lines:?}");
    // The inline table on line 6 is never closed.
    assert!(lines[0].starts_with("6:"), "{lines:?}");
}

#[test]
fn check_config_reports_an_unknown_key_with_its_line_and_column() {
    let (code, lines) = check_config("config/broken-unknown-key.toml");
    assert_eq!(code, 1);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("6:1: unknown field `grace`"),
        "{lines:?}"
    );
    assert!(lines[0].contains("expected one of"), "{lines:?}");
}

#[test]
fn check_config_reports_every_semantic_problem() {
    let (code, lines) = check_config("config/broken-semantics.toml");
    assert_eq!(code, 1);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].starts_with("4:10: rule \"trade-tariff\": action \"manual\" needs `owner`"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("11:22: rule \"bad-glob\": invalid pattern \"[unclosed\""),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with("16:18: escalate_after \"fortnight\" is not a duration"),
        "{lines:?}"
    );
}

#[test]
fn check_config_accepts_the_shipped_config() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
    let output = token_rotator(&["check-config", path.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains(
            "OK (serves integration (active), production (shadow), staging (active); 5 rules"
        ),
        "{stdout}"
    );
}

#[test]
fn explain_shows_the_match_and_the_rules_before_it() {
    let output = token_rotator(&[
        "explain",
        "--environment",
        "production",
        "--api-user",
        "customs-integration@hmrc.gov.uk",
        "--application",
        "Publishing API",
        "--label",
        "severity=warning",
    ]);
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let expected = [
        "rule 0 \"staging-is-restored-from-production-nightly\": no match",
        "    - environment \"production\" does not match \"staging\"",
        "rule 1 \"sso-push-user-rotates-itself\": no match",
        "rule 2 \"trade-tariff-has-its-own-procedure\": no match",
        "    - application \"Publishing API\" does not match [\"Trade Tariff Admin\",",
        "rule 3 \"human-or-external-api-user-needs-a-handover\": MATCH",
        "    - api_user \"customs-integration@hmrc.gov.uk\" is external",
        "decision: manual (by rule 3 \"human-or-external-api-user-needs-a-handover\")",
        "    owner: #govuk-platform-engineering-team",
    ];
    for line in expected {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(
        !text.contains("rule 4"),
        "rules after the match are not tried:\n{text}"
    );
}

#[test]
fn explain_matches_other_labels_too() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[environments.production]\n[[rules]]\nname = \"paged\"\naction = \"rotate\"\nmatch = { severity = \"!warning\" }\n",
    )
    .unwrap();
    let explain = |severity: &str| {
        let output = token_rotator(&[
            "explain",
            "--config",
            config.to_str().unwrap(),
            "--environment=production",
            "--api-user=a@alphagov.co.uk",
            "--application=x",
            &format!("--label=severity={severity}"),
        ]);
        String::from_utf8(output.stdout).unwrap()
    };
    assert!(explain("page").contains("decision: rotate (by rule 0 \"paged\")"));
    assert!(
        explain("warning").contains("decision: manual (by no rule matched; the fallback applies)")
    );
}

#[test]
fn serve_refuses_to_start_without_a_credential() {
    let output = Command::new(env!("CARGO_BIN_EXE_token-rotator"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("TOKEN_ROTATOR_WEBHOOK_TOKEN")
        .env_remove("TOKEN_ROTATOR_WEBHOOK_TOKEN_FILE")
        .env_remove("TOKEN_ROTATOR_WEBHOOK_USERNAME")
        .env_remove("TOKEN_ROTATOR_WEBHOOK_PASSWORD")
        .env("TOKEN_ROTATOR_DATABASE_URL", "sqlite::memory:")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("no webhook credential: set TOKEN_ROTATOR_WEBHOOK_TOKEN"),
        "{stderr}"
    );
}

/// Finds a free loopback port by binding and releasing it.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn serve_reads_its_credential_from_a_file_logs_no_secret_and_stops_on_sigterm() {
    token_rotator::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let token = "file-held-credential-7f3a9c";
    let wrong = "attacker-guess-credential-0000";
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_token-rotator"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("TOKEN_ROTATOR_WEBHOOK_TOKEN_FILE", &token_file)
        .env_remove("TOKEN_ROTATOR_WEBHOOK_TOKEN")
        .env(
            "TOKEN_ROTATOR_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("j.db").display()),
        )
        .env("TOKEN_ROTATOR_LOG_FORMAT", "json")
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}");
    let mut ready = false;
    for _ in 0..200 {
        if client
            .get(format!("{url}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "serve became ready");
    for credential in [token, wrong] {
        client
            .post(format!("{url}/v1/alertmanager"))
            .bearer_auth(credential)
            .header("content-type", "application/json")
            .body(crate::helpers::capture("01-"))
            .send()
            .await
            .unwrap();
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(output.status.success(), "clean exit on SIGTERM: {output:?}");
    let logs =
        String::from_utf8(output.stderr).unwrap() + &String::from_utf8(output.stdout).unwrap();
    assert!(logs.contains("webhook journaled"), "{logs}");
    assert!(logs.contains("webhook rejected"), "{logs}");
    assert!(logs.contains("stopped; journal closed"), "{logs}");
    assert!(
        logs.contains("\"journal\":\"sqlite://"),
        "the start-up line names the journal: {logs}"
    );
    for line in logs.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    assert!(!logs.contains(token), "the credential appears in the logs");
    assert!(
        !logs.contains(wrong),
        "a sent credential appears in the logs"
    );
}

/// `serve` with `config` and `env` (plus a webhook credential and an in-memory journal), which
/// must refuse to start: its exit code 1 and what it said.
fn serve_refusing(config: &str, env: &[(&str, String)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, config).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_token-rotator"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .env("TOKEN_ROTATOR_WEBHOOK_TOKEN", "x")
        .env("TOKEN_ROTATOR_DATABASE_URL", "sqlite::memory:")
        .env_remove("TOKEN_ROTATOR_SLACK_BOT_TOKEN")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn serve_refuses_a_grace_period_shorter_than_gds_ssos_cache() {
    let stderr = serve_refusing(
        "[environments.production]\n[[rules]]\nname = \"all\"\naction = \"rotate\"\n\n[rotation]\ngrace_period = \"1m\"\n",
        &[],
    );
    assert!(
        stderr.contains("rotation.grace_period is 1m, less than 5m"),
        "{stderr}"
    );
    assert!(stderr.contains("--allow-short-grace"), "{stderr}");
}

#[test]
fn serve_refuses_a_handover_without_the_slack_bot_token() {
    // The link is a credential: it goes to its owner as a direct message or nowhere, never to a
    // channel webhook or a log.
    let key = |byte: u8| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode([byte; 32])
    };
    let stderr = serve_refusing(
        "public_url = \"https://rotator.example\"\n[environments.production]\n[synoptic]\n\
         [[schedules]]\nname = \"partner\"\nissuer = \"synoptic\"\nenvironment = \"production\"\n\
         every = \"30d\"\nhandover = { owner = \"U0PARTNER1\" }\n\n[[rules]]\nname = \"all\"\naction = \"rotate\"\n",
        &[
            ("TOKEN_ROTATOR_ENCRYPTION_KEY", key(1)),
            ("TOKEN_ROTATOR_FINGERPRINT_KEY", key(2)),
            (
                "TOKEN_ROTATOR_SLACK_WEBHOOK_URL",
                "https://hooks.slack.example/x".into(),
            ),
        ],
    );
    assert!(
        stderr.contains(
            "schedule \"partner\" hands its token over: set TOKEN_ROTATOR_SLACK_BOT_TOKEN"
        ),
        "{stderr}"
    );
}

/// `token-rotator tokens` against a journal file: first with no inventory, then with one.
#[tokio::test]
async fn tokens_reads_the_last_inventory_from_the_journal() {
    use token_rotator::store::Journal;
    use token_rotator::store::inventory::{self, InventoryRow};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("journal.db").display());
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_token-rotator"))
            .arg("tokens")
            .args(args)
            .env_remove("RUST_LOG")
            .env("TOKEN_ROTATOR_DATABASE_URL", &url)
            .output()
            .expect("the binary runs")
    };
    let journal = Journal::open(&url, Duration::from_secs(5)).await.unwrap();
    let output = run(&[]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().trim(),
        token_rotator::commands::tokens::NONE_TAKEN
    );

    let now = jiff::Timestamp::now();
    let token = |id: &str, api_user: &str, days: i64, newest: bool| InventoryRow {
        environment: String::new(),
        api_user: api_user.into(),
        api_user_name: None,
        application: "Publishing API".into(),
        application_uid: None,
        token_id: id.into(),
        created_at_ms: None,
        expires_at_ms: Some(now.as_millisecond() + days * 86_400_000 + 60_000),
        expired: false,
        newest,
        last8: format!("last8-{id:0>2}"),
        suspended: false,
        retired: false,
        renewed_by: api_user
            .ends_with("@alphagov.co.uk")
            .then(|| "Signon (nightly)".to_owned()),
        taken_at_ms: 0,
    };
    let production = [
        token("11", "publisher@alphagov.co.uk", 3, false),
        token("12", "publisher@alphagov.co.uk", 700, true),
        token("13", "someone@hmrc.gov.uk", 30, true),
    ];
    let db = journal.pool();
    inventory::replace(db, "production", now, &production)
        .await
        .unwrap();
    inventory::replace(
        db,
        "integration",
        now,
        &[token("5", "a@alphagov.co.uk", 1, true)],
    )
    .await
    .unwrap();
    journal.close().await;

    let output = run(&["--environment", "production"]);
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("production: inventory taken ") && lines[0].ends_with("3 token(s)"),
        "{text}"
    );
    assert!(!text.contains("integration"), "{text}");
    // The line taken, a blank line, the header, then the tokens.
    assert_eq!(lines.len(), 6, "{text}");
    assert!(
        lines[3].contains("someone@hmrc.gov.uk") && lines[3].contains("nobody"),
        "{text}"
    );
    assert!(
        lines[4].contains(" 11 ")
            && lines[4].contains("in 3 d (")
            && lines[4].contains("superseded")
            && lines[4].contains("Signon (nightly)"),
        "{text}"
    );
    assert!(
        lines[5].contains(" 12 ") && lines[5].contains(" live "),
        "{text}"
    );

    let output = run(&["-o", "json"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        output.stdout,
        run(&["--json"]).stdout,
        "--json is kept as -o json"
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["inventories"].as_array().unwrap().len(), 2);
    let ids: Vec<&str> = json["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["13", "5", "11", "12"], "{json}");
    assert_eq!(json["tokens"][0]["renewed_by"], serde_json::Value::Null);
    assert_eq!(json["tokens"][2]["state"], "superseded");
}

/// Every form a journal URL carries a credential in (the password beside the user, `password=`
/// or libpq's `sslpassword=` in the query, a URL too broken to parse) reaches no log line or
/// error in clear; the driver is never handed a parameter it would log with its value.
#[test]
fn serve_never_prints_the_journals_password() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("j.db").display().to_string();
    let config = "[environments.production]\n[[rules]]\nname = \"all\"\naction = \"rotate\"\n";
    for (url, says) in [
        (
            format!("sqlite://{file}?password=hunter2"),
            format!("sqlite://{file}?password=REDACTED"),
        ),
        (
            "postgres://rotator:hunter2@db:notaport/j".into(),
            "\"postgres://<unparsable>\" is invalid".into(),
        ),
        (
            "postgres://rotator@127.0.0.1:1/j?sslpassword=hunter2".into(),
            "query parameter \"sslpassword\" is not one the PostgreSQL driver reads".into(),
        ),
        (
            "mysql://rotator:hunter2@db:port/j".into(),
            "\"mysql://<unparsable>\" is not supported".into(),
        ),
    ] {
        let stderr = serve_refusing(config, &[("TOKEN_ROTATOR_DATABASE_URL", url.clone())]);
        assert!(!stderr.contains("hunter2"), "{url}: {stderr}");
        assert!(stderr.contains(&says), "{url}: {stderr}");
    }
}
