use super::*;
use crate::policy::{Action, ActionKind};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(super) const MINIMAL: &str =
    "[environments.test]\n[[rules]]\nname = \"all\"\naction = \"rotate\"\n";

#[test]
fn shipped_default_config_is_valid() {
    let config = Config::from_toml(DEFAULT_CONFIG).expect("config/default.toml parses");
    assert_eq!(config.database_url, "sqlite://token-rotator.db");
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.policy.rules().len(), 5);
    assert_eq!(
        config.engine.modes.get("production"),
        Some(&crate::policy::Mode::Shadow)
    );
    assert_eq!(
        config.engine.modes.get("integration"),
        Some(&crate::policy::Mode::Active)
    );
    let served: Vec<&str> = config.engine.modes.keys().map(String::as_str).collect();
    assert_eq!(served, ["integration", "production", "staging"]);
}

#[test]
fn environments_are_an_allow_list_that_must_name_the_default() {
    let none = "[[rules]]\nname = \"all\"\naction = \"rotate\"\n";
    let problems = Config::from_toml(none).unwrap_err().problems;
    assert!(
        problems[0].message.contains("no environment is served"),
        "{problems:?}"
    );
    let unserved = format!("default_environment = \"prod\"\n{MINIMAL}");
    let problems = Config::from_toml(&unserved).unwrap_err().problems;
    assert!(
        problems[0].message.contains(
            "default_environment \"prod\" is not served: add [environments.prod] (served: test)"
        ),
        "{problems:?}"
    );
    // Listed without a mode: served, active.
    let config = Config::from_toml(MINIMAL).unwrap();
    assert_eq!(
        config.engine.modes.get("test"),
        Some(&crate::policy::Mode::Active)
    );
}

#[test]
fn built_in_defaults_fill_what_the_file_leaves_out() {
    let config = Config::from_toml(MINIMAL).unwrap();
    assert_eq!(config.database_url, "sqlite://token-rotator.db");
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.journal_busy_timeout, Duration::from_secs(5));
    assert_eq!(config.default_environment, None);
}

#[test]
fn environment_wins_over_the_file_and_the_file_over_defaults() {
    let text = format!(
        "database_url = \"sqlite://from-file.db\"\nlisten = \"127.0.0.1:9000\"\n[environments.integration]\n{MINIMAL}"
    );
    let from_file = Config::from_toml_and_env(&text, env(&[])).unwrap();
    assert_eq!(from_file.database_url, "sqlite://from-file.db");

    let overridden = Config::from_toml_and_env(
        &text,
        env(&[
            ("TOKEN_ROTATOR_DATABASE_URL", "sqlite://from-env.db"),
            ("TOKEN_ROTATOR_DEFAULT_ENVIRONMENT", "integration"),
            (
                "TOKEN_ROTATOR_WEBHOOK_TOKEN",
                "not a config key, ignored here",
            ),
            ("UNRELATED", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(overridden.database_url, "sqlite://from-env.db");
    assert_eq!(overridden.listen.to_string(), "127.0.0.1:9000");
    assert_eq!(
        overridden.default_environment.unwrap().as_str(),
        "integration"
    );
}

#[test]
fn a_bad_environment_value_names_the_variable() {
    let err = Config::from_toml_and_env(MINIMAL, env(&[("TOKEN_ROTATOR_LISTEN", "nowhere")]))
        .unwrap_err();
    assert_eq!(
        err.problems[0].location,
        Location::Env("TOKEN_ROTATOR_LISTEN".into())
    );
    assert!(err.problems[0].message.contains("\"nowhere\""), "{err}");
}

#[test]
fn several_semantic_problems_are_all_reported() {
    let text = "\
[[rules]]
name = \"a\"
action = \"manual\"

[[rules]]
name = \"b\"
action = \"explode\"

[[rules]]
name = \"c\"
action = \"rotate\"
duration = \"7d\"

[environments.production]
";
    let err = Config::from_toml(text).unwrap_err();
    let lines: Vec<_> = err
        .problems
        .iter()
        .map(|p| match p.location {
            Location::File { line, .. } => line,
            Location::Env(_) => 0,
        })
        .collect();
    assert_eq!(lines, vec![3, 3, 7, 12], "{err}");
    assert!(err.to_string().contains("needs `owner`"), "{err}");
    assert!(
        err.to_string().contains("unknown action \"explode\""),
        "{err}"
    );
}

#[test]
fn actions_carry_their_fields() {
    let config = Config::builtin();
    let kinds: Vec<_> = config
        .policy
        .rules()
        .iter()
        .map(|r| r.action.kind())
        .collect();
    assert_eq!(
        kinds,
        vec![
            ActionKind::Silence,
            ActionKind::Ignore,
            ActionKind::Manual,
            ActionKind::Manual,
            ActionKind::Rotate,
        ]
    );
    assert_eq!(
        config.policy.rules()[0].action,
        Action::Silence {
            duration: Duration::from_secs(7 * 86400)
        }
    );
}

#[test]
fn the_job_issuer_needs_signons_image_and_takes_cluster_settings() {
    let missing = format!("[signon]\nurl = \"https://signon\"\nissuer = \"job\"\n{MINIMAL}");
    let problems = Config::from_toml(&missing).unwrap_err().problems;
    let said = |needle: &str| problems.iter().any(|p| p.message.contains(needle));
    // Signon refuses ACCESS_TOKEN_GENERATED/REVOKED without an initiator (event_log.rb).
    assert!(said("needs `initiator`"), "{problems:?}");
    let named = format!(
        "[signon]\nurl = \"https://signon\"\nissuer = \"job\"\ninitiator = \"Token Rotator\"\n\
         [signon.job]\nimage = \"signon:1\"\n{MINIMAL}"
    );
    let problems = Config::from_toml(&named).unwrap_err().problems;
    assert!(
        problems[0]
            .message
            .contains("\"Token Rotator\" is not an email address"),
        "{problems:?}"
    );

    // A tag moves; the scripts must run the release whose schema Signon's database has.
    let tagged = format!(
        "[signon]\nurl = \"https://signon\"\nissuer = \"job\"\ninitiator = \"rotator@example.gov.uk\"\n\
         [signon.job]\nimage = \"ghcr.io/alphagov/signon:release\"\n{MINIMAL}"
    );
    let problems = Config::from_toml(&tagged).unwrap_err().problems;
    assert!(
        problems[0].message.contains("not pinned by digest"),
        "{problems:?}"
    );

    let text = format!(
        "[signon]\nurl = \"https://signon\"\nissuer = \"job\"\ninitiator = \"rotator@example.gov.uk\"\n[signon.job]\nimage = \"signon@sha256:0123\"\ndeadline = \"2m\"\n\
         [signon.probes]\n\"Publishing API\" = \"https://probe\"\n\
         [kubernetes]\nnamespace = \"apps\"\ndistribution = \"sync\"\nreloader = false\n\
         [environments.integration]\nsignon_issuer = \"http\"\n{MINIMAL}"
    );
    let config = Config::from_toml(&text).unwrap();
    let signon = config.signon.unwrap();
    assert_eq!(signon.issuer, IssuerMode::Job);
    assert_eq!(signon.issuers.get("integration"), Some(&IssuerMode::Http));
    let job = signon.job.unwrap();
    assert_eq!(
        (job.image.as_deref(), job.namespace.as_str()),
        (Some("signon@sha256:0123"), "apps")
    );
    // The rest of Signon's pod is its sync CronJob's (`[kubernetes] sync_cronjob`).
    assert_eq!(job.service_account, None);
    assert_eq!(job.pod_template, "signon-sync-token-secrets-to-k8s");
    assert_eq!(job.initiator, "rotator@example.gov.uk");
    assert_eq!(job.active_deadline_seconds, 120);
    assert_eq!(config.kubernetes.distribution, Distribution::Sync);
    assert!(!config.kubernetes.reloader);
    assert_eq!(
        config.kubernetes.sync_cronjob,
        "signon-sync-token-secrets-to-k8s"
    );
    assert_eq!(config.engine.probes["Publishing API"], "https://probe");
}

#[test]
fn a_shared_journal_elects_by_advisory_lock_unless_told_to_use_a_lease() {
    let text = format!("database_url = \"postgres://rotator@db:5432/journal\"\n{MINIMAL}");
    let config = Config::from_toml(&text).unwrap();
    assert_eq!(config.leader_election, LeaderElection::Postgres);
    assert_eq!(config.leader_lease, Duration::from_secs(10));

    let text = format!(
        "database_url = \"postgres://rotator@db:5432/journal\"\nleader_election = \"kubernetes\"\n\
         leader_lease = \"30s\"\n{MINIMAL}"
    );
    let config = Config::from_toml(&text).unwrap();
    assert_eq!(
        config.leader_election,
        LeaderElection::Kubernetes {
            lease_name: "token-rotator".into()
        }
    );
    assert_eq!(config.leader_lease, Duration::from_secs(30));
}

#[test]
fn leader_election_problems_are_named() {
    let cases = [
        (
            "database_url = \"postgres://db/j\"\nleader_election = \"zookeeper\"\n",
            "leader_election \"zookeeper\" is not one of",
        ),
        (
            "leader_election = \"kubernetes\"\n",
            "leader_election needs a journal replicas share",
        ),
        (
            "database_url = \"postgres://db/j\"\nleader_lease = \"200ms\"\n",
            "leader_lease must be at least 1s",
        ),
        (
            "database_url = \"mysql://u:hunter2@db/j\"\n",
            "expected sqlite://PATH or postgres://",
        ),
        (
            "database_url = \"mysql://u:hunter2@db:port/j\"\n",
            "database_url \"mysql://<unparsable>\" is not supported",
        ),
        (
            "database_url = \"postgres://u@db/j?sslpassword=hunter2\"\n",
            "query parameter \"sslpassword\" is not one the PostgreSQL driver reads",
        ),
    ];
    for (top, expected) in cases {
        let err = Config::from_toml(&format!("{top}{MINIMAL}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{top}: {err}");
        assert!(!err.contains("hunter2"), "a password in an error: {err}");
    }
}

#[test]
fn debug_output_hides_the_journals_password() {
    let text = format!("database_url = \"postgres://rotator:hunter2@db:5432/journal\"\n{MINIMAL}");
    let config = Config::from_toml(&text).unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(
        debug.contains("postgres://rotator:REDACTED@db:5432/journal"),
        "{debug}"
    );
    assert_eq!(
        config.database_url,
        "postgres://rotator:hunter2@db:5432/journal"
    );
}

#[test]
fn http_bounds_default_and_can_be_set() {
    let config = Config::from_toml(MINIMAL).unwrap();
    assert_eq!(config.http, HttpSettings::default());
    assert_eq!(config.http.header_read_timeout, Duration::from_secs(10));
    let text = format!(
        "{MINIMAL}[http]\nheader_read_timeout = \"5s\"\nidle_timeout = \"30s\"\n\
         max_connections = 100\npublic_max_connections = 10\nmetrics_max_connections = 2\n"
    );
    let http = Config::from_toml(&text).unwrap().http;
    assert_eq!(
        http,
        HttpSettings {
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            max_connections: 100,
            public_max_connections: 10,
            metrics_max_connections: 2,
        }
    );
}

#[test]
fn http_bounds_that_would_break_the_service_are_refused_by_name() {
    for (section, expected) in [
        (
            "public_max_connections = 0",
            "http.public_max_connections must be at least 1",
        ),
        (
            "header_read_timeout = \"0s\"",
            "http.header_read_timeout must be more than 0s",
        ),
        (
            "header_read_timeout = \"soon\"",
            "http.header_read_timeout \"soon\" is not a duration",
        ),
        (
            "idle_timeout = \"2s\"",
            "http.idle_timeout must be at least 10s",
        ),
        (
            "max_connections = 1000000",
            "http.max_connections must be at most 65536",
        ),
        ("keepalive = \"1s\"", "unknown field `keepalive`"),
    ] {
        let err = Config::from_toml(&format!("{MINIMAL}[http]\n{section}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{section}: {err}");
    }
}
