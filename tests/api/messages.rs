//! Every terminal message of every provider/distributor pair, rendered with the real adapters'
//! words and compared with the golden files in `tests/golden/messages/` (rewrite them with
//! `TOKEN_ROTATOR_BLESS=1` after a deliberate change, and read the diff). Beside the comparison,
//! the rules a person reading Slack relies on: no provider's name for another's token, no
//! "Secret" for a file, no "Nothing to do." after a rotation that did something, no empty
//! `**`, and the rotation id only on the messages that ask a person to act.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use secrecy::SecretString;
use token_rotator::adapters::gitlab::{self, GitLabClient, GitLabSettings};
use token_rotator::adapters::kubernetes::Cluster;
use token_rotator::adapters::signon::SignonClient;
use token_rotator::adapters::synoptic::scheduled;
use token_rotator::adapters::{Observer, TokenInfo, TokenListing, Upstreams};
use token_rotator::clock::{Clock, ManualClock};
use token_rotator::config::{
    Distribution, IssuerMode, KubernetesSettings, ScheduleDistribution, ScheduleSettings,
    SynopticSettings,
};
use token_rotator::domain::{ApiUser, Application, Environment, Target};
use token_rotator::engine::message::{self, Words};
use token_rotator::engine::{EngineSettings, Handover, Phase, Schedule, shadow};
use token_rotator::store::rotations::{NewRotation, RotationRow};

use crate::world::job_template;

/// The phases a rotation can end in, each with a reason like the one the engine journals for it.
const ENDINGS: &[(Phase, &str)] = &[
    // Done's reason is the pair's own (`Pair::done`).
    (Phase::Done, ""),
    (
        Phase::RolledBack,
        "verification failed: HTTP 401; the old token is back in place; new token 42 revoked",
    ),
    (
        Phase::Failed,
        "HTTP 503 (will retry); gave up after 5 attempts",
    ),
    (
        Phase::Cancelled,
        "the alert resolved before anything changed",
    ),
    (Phase::Manual, "rule manual-humans"),
    (Phase::Ignored, "rule sso-push"),
    (
        Phase::Silenced,
        "silence 5f1e extended in Alertmanager until 2026-12-12 09:00 UTC",
    ),
    (Phase::Unroutable, "missing or empty label: application"),
    (
        Phase::Rejected,
        "rejected by Ada Lovelace at 09:00 UTC; nothing was changed",
    ),
];

struct Pair {
    name: &'static str,
    issuer: &'static str,
    target: Target,
    up: Upstreams,
    /// Whether the placement is a Kubernetes Secret (the only place "Secret" may be said).
    secret: bool,
    schedule: Option<Schedule>,
    /// What became of the old token, as the engine says it for this issuer and schedule.
    done: &'static str,
}

fn target(environment: &str, api_user: &str, application: &str) -> Target {
    Target {
        environment: Environment::parse(environment).unwrap(),
        api_user: ApiUser::parse(api_user).unwrap(),
        application: Application::parse(application).unwrap(),
    }
}

fn signon(issuer: IssuerMode, distribution: Distribution) -> Upstreams {
    let timeout = Duration::from_secs(1);
    // Neither is called: the words need the adapters, not their servers.
    let signon = SignonClient::new("http://127.0.0.1:9", "admin".into(), timeout);
    let cluster = Cluster::for_url("http://127.0.0.1:9", "apps", timeout).unwrap();
    let kube = KubernetesSettings {
        url: None,
        namespace: "apps".into(),
        timeout,
        distribution,
        sync_cronjob: "signon-sync-token-secrets-to-k8s".into(),
        reloader: true,
        max_jobs: 4,
    };
    Upstreams::build(signon, cluster, issuer, Some(&job_template()), &kube).unwrap()
}

fn synoptic(
    distribution: ScheduleDistribution,
    handover: Option<Handover>,
) -> (Upstreams, Schedule) {
    let settings = ScheduleSettings {
        issuer: token_rotator::config::ScheduleIssuer::Synoptic,
        schedule: Schedule {
            name: "weather".into(),
            api_user: "weather".into(),
            environment: "production".into(),
            application: "weather-dashboard".into(),
            every: Duration::from_secs(7 * 86400),
            overlap: Duration::from_secs(7 * 86400),
            window: None,
            jitter: Duration::ZERO,
            disable_old: false,
            handover,
        },
        distribution,
    };
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(Timestamp::UNIX_EPOCH));
    let upstreams = scheduled::build(
        &settings.distribution,
        &SynopticSettings::at("http://127.0.0.1:9"),
        SecretString::from("key"),
        // Fixed keys: the golden files hold what is rendered, token names included.
        &token_rotator::secrets::Keys::new([1; 32], [2; 32]),
        Observer::default(),
        clock,
    );
    (upstreams, settings.schedule)
}

fn pairs() -> Vec<Pair> {
    token_rotator::install_crypto_provider();
    let signon_target = target(
        "production",
        "short-url-manager@alphagov.co.uk",
        "Publishing API",
    );
    let synoptic_target = target("production", "weather", "weather-dashboard");
    let (file, file_schedule) = synoptic(
        ScheduleDistribution::File {
            path: "/var/run/weather/token".into(),
            mode: 0o600,
            owner: None,
        },
        None,
    );
    let (handed, handed_schedule) = synoptic(
        ScheduleDistribution::Handover,
        Some(Handover {
            owner: "U0OWNER".into(),
            window: Duration::from_secs(2 * 86400),
        }),
    );
    let gitlab = GitLabClient::new(
        &GitLabSettings {
            url: "http://127.0.0.1:9".into(),
            timeout: Duration::from_secs(1),
            max_lifetime: gitlab::DEFAULT_MAX_LIFETIME,
            time_zone: jiff::tz::TimeZone::UTC,
            tokens_dir: Some("/var/run/gitlab-tokens".into()),
            environments: vec!["ops".into()],
        },
        SecretString::from("glpat-x"),
        Arc::new(ManualClock::new(Timestamp::UNIX_EPOCH)),
    );
    let gitlab_target = target("ops", "project:42", "ci-bot");
    let gitlab_schedule = Schedule {
        name: "ci-bot".into(),
        environment: "ops".into(),
        api_user: "project:42".into(),
        application: "ci-bot".into(),
        every: Duration::from_secs(30 * 86400),
        overlap: Duration::from_secs(30 * 86400),
        window: None,
        jitter: Duration::ZERO,
        disable_old: false,
        handover: None,
    };
    vec![
        Pair {
            name: "gitlab+token-dir",
            issuer: "GitLab",
            target: gitlab_target.clone(),
            up: gitlab::environment(gitlab.clone(), "/var/run/gitlab-tokens"),
            secret: false,
            schedule: None,
            done: "old token 41 revoked by GitLab's rotation",
        },
        Pair {
            name: "gitlab+file",
            issuer: "GitLab",
            target: gitlab_target,
            up: gitlab::scheduled(
                gitlab,
                &ScheduleDistribution::File {
                    path: "/etc/ci/gitlab.token".into(),
                    mode: 0o600,
                    owner: None,
                },
            ),
            secret: false,
            schedule: Some(gitlab_schedule),
            done: "old token 41 revoked by GitLab's rotation",
        },
        Pair {
            name: "signon-http+secret-apply",
            issuer: "Signon",
            target: signon_target.clone(),
            up: signon(IssuerMode::Http, Distribution::Apply),
            secret: true,
            schedule: None,
            done: "old token 41 (…Q7Ww9xYz) revoked",
        },
        Pair {
            name: "signon-job+secret-sync",
            issuer: "Signon",
            target: signon_target,
            up: signon(IssuerMode::Job, Distribution::Sync),
            secret: true,
            schedule: None,
            done: "old token 41 (…Q7Ww9xYz) revoked",
        },
        Pair {
            name: "synoptic+file",
            issuer: "Synoptic",
            target: synoptic_target.clone(),
            up: file,
            secret: false,
            schedule: Some(file_schedule),
            done: "old token 41 (…Q7Ww9xYz) expires by itself",
        },
        Pair {
            name: "synoptic+handover",
            issuer: "Synoptic",
            target: synoptic_target,
            up: handed,
            secret: false,
            schedule: Some(handed_schedule),
            done: "old token 41 (…Q7Ww9xYz) expires by itself",
        },
    ]
}

/// The listing the issuer would give: one live token, about to expire.
fn listing(target: &Target) -> TokenListing {
    TokenListing {
        // Signon names the API user; the others call the owner by the alert's own words.
        api_user_name: if target.api_user.as_str().contains('@') {
            "Short URL Manager".into()
        } else {
            target.api_user.to_string()
        },
        application_uid: "uid-publishing-api".into(),
        application_name: target.application.to_string(),
        tokens: vec![TokenInfo {
            id: "41".into(),
            expires_at: "2026-12-10T09:00:00Z".parse().unwrap(),
            last8: "Q7Ww9xYz".into(),
        }],
        resolved: None,
    }
}

fn at(text: &str) -> i64 {
    text.parse::<Timestamp>().unwrap().as_millisecond()
}

/// A row at the end of a rotation through `pair`, as the journal would hold it.
fn row(pair: &Pair, phase: Phase, placement: &str) -> RotationRow {
    let unroutable = phase == Phase::Unroutable;
    let now: Timestamp = "2026-12-05T09:00:00Z".parse().unwrap();
    let new = NewRotation {
        id: "01939a7e-0000-7000-8000-000000000001".into(),
        environment: pair.target.environment.to_string(),
        api_user: pair.target.api_user.to_string(),
        // An unroutable alert may lack its application: the message must not show `**`.
        application: if unroutable {
            String::new()
        } else {
            pair.target.application.to_string()
        },
        action: "rotate".into(),
        rule_name: Some("internal-api-users".into()),
        action_detail: Some(
            r#"{"owner":"@platform-oncall","runbook_url":"https://docs.publishing.service.gov.uk/manual/alerts/signon-api-user-token-expires-soon.html"}"#
                .into(),
        ),
        // The row as the engine holds it when it writes the ending: still in the phase it ends.
        phase: match phase {
            Phase::Done => Phase::Revoked,
            Phase::RolledBack => Phase::RollingBack,
            Phase::Failed => Phase::Distributed,
            Phase::Cancelled | Phase::PlannedOnly => Phase::Planned,
            Phase::Rejected => Phase::AwaitingApproval,
            decided_at_intake => decided_at_intake,
        }
        .as_str(),
        trigger: "alertmanager:4c1a".into(),
        alertname: Some("TokenExpirySoon".into()),
        mode: "active",
        next_attempt_at: None,
        outcome: None,
        reason: String::new(),
        thread: None,
    };
    let mut row = new.preview(now - Duration::from_secs(95));
    if matches!(phase, Phase::Done | Phase::RolledBack | Phase::Failed) {
        row.secret_name = Some(placement.to_owned());
        row.old_token_id = Some("41".into());
        row.old_token_last8 = Some("Q7Ww9xYz".into());
        row.old_token_expires_at_ms = Some(at("2026-12-10T09:00:00Z"));
        row.new_token_id = Some("42".into());
        row.new_token_last4 = Some("k3Rb".into());
        row.new_token_expires_at_ms = Some(at("2028-12-04T09:00:00Z"));
    }
    row
}

/// One pair's messages as text: each ending's headline and, where there is one, its second line.
fn render(pair: &Pair) -> (String, Vec<(Phase, serde_json::Value)>) {
    let now_ms = "2026-12-05T09:00:00Z"
        .parse::<Timestamp>()
        .unwrap()
        .as_millisecond();
    let listing = listing(&pair.target);
    let placement = pair.up.distributor.placement(&listing);
    let mut out = format!("# {}\n", pair.name);
    let mut messages = Vec::new();
    for (phase, why) in ENDINGS {
        let row = row(pair, *phase, &placement.name);
        // Decided at intake, these have no upstreams (see `Engine::words`).
        let words = if matches!(
            phase,
            Phase::Manual
                | Phase::Ignored
                | Phase::Silenced
                | Phase::Unroutable
                | Phase::Rejected
                | Phase::Cancelled
        ) {
            Words::default()
        } else {
            Words::of(&pair.up, &row)
        };
        let why = if *phase == Phase::Done {
            pair.done
        } else {
            why
        };
        let message = message::outcome(&row, *phase, why, now_ms, &words);
        out.push_str(&format!("\n## {phase}\n{}\n", blocks_text(&message)));
        messages.push((*phase, message));
    }
    let settings = EngineSettings::default();
    let steps = shadow::steps(
        &pair.up,
        &pair.target,
        &listing,
        &placement,
        &settings,
        pair.schedule.as_ref(),
        "01939a7e-0000-7000-8000-000000000002",
    );
    let plan = shadow::Plan {
        steps,
        findings: vec![format!(
            "{} holds token 41 (…Q7Ww9xYz) expiring 2026-12-10T09:00:00Z",
            pair.up.distributor.describe(&placement)
        )],
        feasible: true,
    };
    let plan_row = row(pair, Phase::PlannedOnly, &placement.name);
    let batch = message::shadow_batch(&[(plan_row, plan.summary())]);
    out.push_str(&format!("\n## planned_only\n{}\n", blocks_text(&batch)));
    messages.push((Phase::PlannedOnly, batch));
    (out, messages)
}

/// The text of every block, one per line, as Slack shows them.
fn blocks_text(message: &serde_json::Value) -> String {
    message["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| match b["type"].as_str() {
            Some("context") => format!("> {}", b["elements"][0]["text"].as_str().unwrap()),
            _ => b["text"]["text"].as_str().unwrap().to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/messages")
        .join(format!("{name}.txt"))
}

#[tokio::test]
async fn every_ending_of_every_provider_reads_right_and_matches_its_golden_file() {
    let bless = std::env::var_os("TOKEN_ROTATOR_BLESS").is_some();
    let mut stale = Vec::new();
    for pair in pairs() {
        let (text, messages) = render(&pair);
        for (phase, message) in &messages {
            let all = format!("{}\n{}", message["text"], blocks_text(message));
            let at = format!("{} {phase}: {all}", pair.name);
            for other in ["Signon", "Synoptic", "GitLab"] {
                if other != pair.issuer {
                    assert!(!all.contains(other), "another issuer named: {at}");
                }
            }
            if !pair.secret {
                assert!(
                    !all.contains("Secret"),
                    "a Secret where there is none: {at}"
                );
            }
            assert!(!all.contains("**"), "an empty bold label: {at}");
            assert!(
                !all.contains("unknown"),
                "an unknown shown as a value: {at}"
            );
            assert!(
                !all.contains("`?`") && !all.contains("…?"),
                "a missing value: {at}"
            );
            let asks = matches!(
                phase,
                Phase::Failed
                    | Phase::RolledBack
                    | Phase::Manual
                    | Phase::Rejected
                    | Phase::Unroutable
            );
            // The thread's parent names the delivery; only a message asking a person to act
            // carries the rotation id (to act on it with), and no message repeats the parent.
            let ids = all.matches("rotation `").count();
            if *phase != Phase::PlannedOnly {
                assert_eq!(ids, usize::from(asks), "rotation id chrome: {at}");
            }
            assert!(
                !all.contains(":key: *token-rotator*"),
                "parent chrome: {at}"
            );
            if !asks {
                assert!(
                    !all.contains("Nothing to do."),
                    "nothing to do after doing: {at}"
                );
            }
        }
        let (done, _) = &messages[0];
        assert_eq!(*done, Phase::Done);
        assert!(
            messages[0].1["text"]
                .as_str()
                .unwrap()
                .contains(&format!("from {}", pair.issuer)),
            "{}: the done message names its issuer",
            pair.name
        );
        let path = golden(pair.name);
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(format!("{}:\n{text}", path.display()));
        }
    }
    assert!(
        stale.is_empty(),
        "messages differ from their golden files (TOKEN_ROTATOR_BLESS=1 rewrites them):\n{}",
        stale.join("\n")
    );
}
