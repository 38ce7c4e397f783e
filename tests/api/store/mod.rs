//! The journal's contract, one suite run on both databases: each test body below is written once
//! and `store_suite!` runs it on SQLite (a file) and on PostgreSQL (a fresh database).

mod engine;
mod intake;
mod upkeep;

use std::time::Duration;

use jiff::Timestamp;
use token_rotator::config::Config;
use token_rotator::intake::{WebhookPayload, route};
use token_rotator::store::Journal;
use token_rotator::store::outbox::{Notice, NoticeKind};
use token_rotator::store::rotations::{self, NewRotation, Transition};

use crate::helpers::alert_body;
use crate::postgres;
use engine::*;
use intake::*;
use upkeep::*;

/// A journal on one of the two databases, and what keeps that database alive.
pub struct Backend {
    pub url: String,
    _keep: Keep,
}

enum Keep {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Postgres(#[allow(dead_code)] postgres::TestDatabase),
}

pub async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    Backend {
        url: format!("sqlite://{}", dir.path().join("journal.db").display()),
        _keep: Keep::Dir(dir),
    }
}

pub async fn postgres() -> Backend {
    let db = postgres::database().await;
    Backend {
        url: db.url.clone(),
        _keep: Keep::Postgres(db),
    }
}

impl Backend {
    pub async fn open(&self) -> Journal {
        Journal::open(&self.url, Duration::from_secs(5))
            .await
            .unwrap()
    }
}

macro_rules! store_suite {
    ($($test:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::sqlite().await).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::postgres().await).await;
                }
            )*
        }
    };
}

store_suite!(
    ha_duplicates_are_one_alert,
    two_writers_racing_on_one_alert_journal_it_once,
    one_active_rotation_per_target,
    a_phase_moves_only_from_the_phase_read,
    fields_retries_and_waits_round_trip,
    the_outbox_delivers_and_gives_up,
    a_thread_cursor_never_goes_back,
    a_schedule_starts_once_per_due_time,
    a_handover_is_collected_once,
    the_snapshot_and_last_alerts_read_both_dialects,
    retention_prunes_what_finished_long_ago_but_a_targets_last_done,
    rekey_reseals_with_the_new_key_what_the_old_one_sealed,
    alerts_taken_in_together_each_leave_the_queue_and_audit_in_order,
    the_token_inventory_is_replaced_whole_per_environment,
    a_sweep_day_is_claimed_once_and_its_revoke_is_refused_beside_a_rotation,
);

pub(super) fn delivery(body: &[u8]) -> token_rotator::intake::Delivery {
    let config = Config::builtin();
    route(WebhookPayload::parse(body).unwrap(), &config.routes())
}

pub(super) fn labels(api_user: &str) -> Vec<(&'static str, String)> {
    vec![
        ("alertname", "SignonApiUserTokenExpirySoon".into()),
        ("environment", "production".into()),
        ("api_user", api_user.into()),
        ("application", "publisher".into()),
    ]
}

pub(super) fn body_for(fingerprint: &str, api_user: &str) -> Vec<u8> {
    let labels = labels(api_user);
    let pairs: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
    alert_body(fingerprint, &pairs)
}

pub(super) fn ms(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap()
}

pub(super) fn new_rotation(id: &str, api_user: &str, phase: &'static str) -> NewRotation {
    NewRotation {
        id: id.into(),
        environment: "production".into(),
        api_user: api_user.into(),
        application: "publisher".into(),
        action: "rotate".into(),
        rule_name: Some("default".into()),
        action_detail: None,
        phase,
        trigger: "cli".into(),
        alertname: None,
        mode: "active",
        next_attempt_at: Some(ms(1_000)),
        outcome: None,
        reason: "test".into(),
        thread: None,
    }
}

/// Starts `new` at `at_ms`, or fails the test.
pub(super) async fn start(db: &token_rotator::store::Db, new: NewRotation, at_ms: i64) {
    rotations::start(db, &new, None, ms(at_ms), &[])
        .await
        .unwrap();
}

pub(super) fn step(from: &'static str, to: &'static str, next: Option<i64>) -> Transition {
    Transition {
        from,
        to,
        reason: format!("{from} to {to}"),
        trigger: "test".into(),
        next_attempt_at: next.map(ms),
        fields: vec![],
        notify: vec![Notice::new(
            NoticeKind::Outcome,
            serde_json::json!({"text": to}),
        )],
    }
}
