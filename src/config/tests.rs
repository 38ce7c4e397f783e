use super::*;
use crate::policy::{Action, ActionKind};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const MINIMAL: &str = "[environments.test]\n[[rules]]\nname = \"all\"\naction = \"rotate\"\n";

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
fn slack_channels_route_by_rule_then_environment_then_default() {
    let text = r##"
[slack]
channel = "#rotations"
approval_timeout = "4h"
[environments.production]
slack_channel = "C0PROD"
mode = "shadow"

[[rules]]
name = "asks"
action = "manual"
owner = "#team"
runbook_url = "https://runbook"
approval = true
approvers = ["U0ALICE", "S0TEAM"]
slack_channel = "C0APPROVALS"
match = { application = "Publishing API" }

[[rules]]
name = "all"
action = "rotate"
"##;
    let config = Config::from_toml(text).unwrap();
    let routing = &config.engine.slack;
    assert_eq!(
        routing.channel(Some("C0APPROVALS"), "production"),
        "C0APPROVALS"
    );
    assert_eq!(routing.channel(None, "production"), "C0PROD");
    assert_eq!(routing.channel(None, "integration"), "#rotations");
    assert_eq!(
        config.engine.approval_timeout,
        Duration::from_secs(4 * 3600)
    );
    assert_eq!(config.slack.api_url, "https://slack.com/api");
    let rule = &config.policy.rules()[0];
    assert_eq!(rule.slack_channel.as_deref(), Some("C0APPROVALS"));
    assert!(matches!(
        &rule.action,
        Action::Manual { approval: true, approvers, .. } if approvers == &["U0ALICE", "S0TEAM"]
    ));
}

#[test]
fn approval_mistakes_are_reported_with_their_place() {
    let rule = |extra: &str| {
        format!(
            "[[rules]]\nname = \"r\"\naction = \"manual\"\nowner = \"o\"\nrunbook_url = \"u\"\n{extra}\n"
        )
    };
    let problems = |text: &str| {
        Config::from_toml(text)
            .unwrap_err()
            .problems
            .into_iter()
            .map(|p| p.message)
            .collect::<Vec<_>>()
    };
    assert!(
        problems(&rule("approval = true"))[0]
            .contains("`approval = true` and `ask = true` need `approvers`")
    );
    assert!(problems(&rule("approvers = [\"U0A\"]"))[0].contains("needs `approval = true`"));
    assert!(
        problems(&rule("approval = true\napprovers = [\"alice\"]"))[0]
            .contains("are not Slack user ids")
    );
    let rotate = "[[rules]]\nname = \"r\"\naction = \"rotate\"\napproval = true\n";
    assert!(problems(rotate)[0].contains("`approval` does not apply to action \"rotate\""));
    let spaced =
        "[slack]\nchannel = \"my channel\"\n[[rules]]\nname = \"r\"\naction = \"rotate\"\n";
    assert!(problems(spaced)[0].contains("is not a Slack channel"));
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
fn schedules_take_every_overlap_window_and_a_file_or_a_handover() {
    let text = format!(
        "public_url = \"https://rotator.example/\"\n[synoptic]\n\
         [[schedules]]\nname = \"dash\"\nissuer = \"synoptic\"\nevery = \"7d\"\n\
         window = \"Mon-Fri 09:00-16:00 Europe/London\"\njitter = \"30m\"\n\
         file = {{ path = \"/var/run/dash/token\", mode = \"0640\", owner = \"1000:1000\" }}\n\
         [[schedules]]\nname = \"partner\"\nissuer = \"synoptic\"\nevery = \"30d\"\noverlap = \"7d\"\n\
         handover = {{ owner = \"U0PARTNER1\" }}\n{MINIMAL}"
    );
    let config = Config::from_toml(&text).unwrap();
    assert_eq!(config.engine.public_url, "https://rotator.example");
    let [dash, partner] = config.schedules.as_slice() else {
        panic!("two schedules")
    };
    assert_eq!(
        dash.schedule.overlap, dash.schedule.every,
        "one period by default"
    );
    assert!(dash.schedule.window.is_some());
    assert_eq!(
        dash.distribution,
        ScheduleDistribution::File {
            path: "/var/run/dash/token".into(),
            mode: 0o640,
            owner: Some((1000, 1000))
        }
    );
    let handover = partner.schedule.handover.as_ref().unwrap();
    assert_eq!(handover.owner, "U0PARTNER1");
    assert_eq!(handover.window, Duration::from_secs(2 * 86400));

    let problems = |extra: &str| {
        let text = format!(
            "[synoptic]\n[[schedules]]\nname = \"x\"\nissuer = \"synoptic\"\n{extra}\n{MINIMAL}"
        );
        Config::from_toml(&text)
            .unwrap_err()
            .problems
            .into_iter()
            .map(|p| p.message)
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        problems("every = \"1d\"\noverlap = \"2d\"\nfile = { path = \"/t\" }")
            .contains("three tokens")
    );
    assert!(problems("every = \"1d\"").contains("say where the token goes"));
    assert!(problems("every = \"1d\"\nfile = { path = \"relative\" }").contains("absolute"));
    assert!(
        problems("every = \"1d\"\nwindow = \"weekdays\"\nfile = { path = \"/t\" }")
            .contains("window")
    );
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
fn handover_links_need_an_https_public_url() {
    let schedule = "[synoptic]\n[[schedules]]\nname = \"partner\"\nissuer = \"synoptic\"\nevery = \"30d\"\n\
                    handover = { owner = \"U0PARTNER1\" }\n";
    let plain = format!("public_url = \"http://rotator.example\"\n{schedule}{MINIMAL}");
    let problems = Config::from_toml(&plain).unwrap_err().problems;
    assert!(
        problems[0]
            .message
            .contains("must be https:// (handover links carry a credential)"),
        "{problems:?}"
    );
    for ok in [
        "https://rotator.example",
        "http://127.0.0.1:8080",
        "http://localhost:8080",
    ] {
        let text = format!("public_url = \"{ok}\"\n{schedule}{MINIMAL}");
        assert!(Config::from_toml(&text).is_ok(), "{ok}");
    }
}

#[test]
fn a_handover_goes_to_one_slack_member() {
    // A handle, a channel or a group cannot receive a direct message: the link would have to
    // be posted where others read it.
    for owner in ["@partner-team", "#partners", "S0GROUP1", "u0lower", "U"] {
        let text = format!(
            "public_url = \"https://rotator.example\"\n[synoptic]\n[[schedules]]\nname = \"partner\"\n\
             issuer = \"synoptic\"\nevery = \"30d\"\nhandover = {{ owner = \"{owner}\" }}\n{MINIMAL}"
        );
        let problems = Config::from_toml(&text).unwrap_err().problems;
        assert!(
            problems[0]
                .message
                .contains("must be a Slack member id (U… or W…"),
            "{owner}: {problems:?}"
        );
    }
}

#[test]
fn an_ask_rule_asks_the_owners_named_for_the_api_user_or_its_domain() {
    let text = r##"
[environments.production]

[owners]
"partner.example" = ["S0PARTNER"]
"bot@partner.example" = ["U0BOB"]

[[rules]]
name = "external-is-asked"
action = "manual"
owner = "#team"
runbook_url = "https://runbook"
ask = true
approvers = ["U0ALICE"]
old_token = "expire"
api_user_domain = "external"

[[rules]]
name = "all"
action = "rotate"
"##;
    let config = Config::from_toml(text).unwrap();
    let asked = |api_user: &str| {
        let labels = crate::domain::Labels::from([
            (
                "alertname".to_owned(),
                "SignonApiUserTokenExpirySoon".to_owned(),
            ),
            ("environment".to_owned(), "production".to_owned()),
            ("api_user".to_owned(), api_user.to_owned()),
            ("application".to_owned(), "Content Store".to_owned()),
        ]);
        match config.policy.decide(&labels).action {
            Action::Manual {
                approvers,
                ask: Some(ask),
                ..
            } => {
                assert_eq!(ask.old_token, crate::policy::OldToken::Expire);
                assert_eq!(ask.handover_window, Duration::from_secs(2 * 86400));
                approvers
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(asked("Bot@Partner.example"), ["U0BOB"], "by email first");
    assert_eq!(
        asked("other@partner.example"),
        ["S0PARTNER"],
        "then by domain"
    );
    assert_eq!(
        asked("someone@elsewhere.example"),
        ["U0ALICE"],
        "else the rule's"
    );
}

#[test]
fn ask_mistakes_are_reported() {
    let problems = |text: &str| {
        Config::from_toml(text)
            .unwrap_err()
            .problems
            .into_iter()
            .map(|p| p.message)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let rule = |extra: &str| {
        format!(
            "[[rules]]\nname = \"r\"\naction = \"manual\"\nowner = \"o\"\nrunbook_url = \"u\"\n{extra}\n"
        )
    };
    assert!(problems(&rule("ask = true")).contains("need `approvers`"));
    assert!(
        problems(&rule("ask = true\napproval = true\napprovers = [\"U0A\"]"))
            .contains("choose one")
    );
    assert!(problems(&rule("old_token = \"expire\"")).contains("`old_token` does not apply"));
    assert!(
        problems("[environments.p]\n[owners]\n\"x.example\" = [\"#team\"]\n[[rules]]\nname = \"a\"\naction = \"rotate\"\n")
            .contains("are not Slack user ids")
    );
}

#[test]
fn the_sweep_runs_at_two_in_london_unless_configured_and_rules_opt_pairs_in() {
    let config = Config::from_toml(MINIMAL).unwrap();
    let sweep = &config.engine.sweep;
    assert!(sweep.enabled);
    assert_eq!(sweep.at, jiff::civil::Time::constant(2, 0, 0, 0));
    assert_eq!(sweep.zone.iana_name(), Some("Europe/London"));

    let set = format!(
        "[sweep]\nenabled = false\nat = \"03:30\"\ntime_zone = \"UTC\"\n{MINIMAL}\nsweep = false\n"
    );
    let config = Config::from_toml(&set).unwrap();
    assert!(!config.engine.sweep.enabled);
    assert_eq!(
        config.engine.sweep.at,
        jiff::civil::Time::constant(3, 30, 0, 0)
    );
    assert_eq!(config.engine.sweep.zone.iana_name(), Some("UTC"));
    assert!(
        !config.policy.rules()[0].sweep,
        "the rule said sweep = false"
    );

    let bad = format!("[sweep]\nat = \"2am\"\ntime_zone = \"Mars/Olympus\"\n{MINIMAL}");
    let problems = Config::from_toml(&bad).unwrap_err().problems;
    let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("sweep.at \"2am\" is not a time of day like \"02:00\"")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("sweep.time_zone \"Mars/Olympus\" is not a time zone")),
        "{messages:?}"
    );
    let unknown = format!("[sweep]\nhour = 2\n{MINIMAL}");
    assert!(Config::from_toml(&unknown).is_err(), "unknown keys refused");

    // Rotated pairs are swept by default; pairs any other rule decides are not.
    let rules = "[environments.test]\n\
        [[rules]]\nname = \"left-alone\"\naction = \"ignore\"\nmatch = { api_user = \"a@x\" }\n\
        [[rules]]\nname = \"opted-in\"\naction = \"ignore\"\nsweep = true\nmatch = { api_user = \"b@x\" }\n\
        [[rules]]\nname = \"rotated\"\naction = \"rotate\"\n";
    let config = Config::from_toml(rules).unwrap();
    let sweeps = |user: &str| {
        let labels: crate::domain::Labels = [("api_user", user), ("environment", "test")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        config.policy.sweeps(&labels)
    };
    assert!(!sweeps("a@x").sweep);
    assert!(sweeps("b@x").sweep);
    let rotated = sweeps("c@x");
    assert!(rotated.sweep);
    assert_eq!(rotated.rule.as_deref(), Some("rotated"));
    assert_eq!(rotated.action, Some(ActionKind::Rotate));
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
