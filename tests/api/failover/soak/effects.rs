//! What the soak's rotations did, counted where it happened: at the simulators (tokens minted
//! and revoked at Signon, values written to Secrets at the Kubernetes API) and in the shared
//! journal (each target's rotations and how they ended); and the replicas' logs searched for
//! every token value.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sqlx::Connection;
use token_rotator::adapters::kubernetes::TOKEN_KEY;
use token_rotator::domain::parameterize::secret_name;
use token_rotator::phase::Phase;

use super::super::pair::Pair;
use crate::world::NAMESPACE;

const APP: &str = "Publishing API";

/// One rotation as the journal holds it.
#[derive(Debug, sqlx::FromRow)]
pub struct Row {
    pub api_user: String,
    /// What started it: `<source>:<fingerprint>` for an alert, `schedule:<name>` on a schedule.
    pub trigger: String,
    /// Why it started, as its first journal entry says (a scheduled rotation's names its due
    /// time: "scheduled: every …, due <when>").
    pub reason: Option<String>,
    pub phase: String,
    pub outcome: Option<String>,
    pub new_token_id: Option<String>,
}

/// The journal's rotations.
pub async fn rotations(db_url: &str) -> Vec<Row> {
    let mut conn = sqlx::PgConnection::connect(db_url).await.unwrap();
    let rows = sqlx::query_as(
        "SELECT api_user, trigger, phase, outcome, new_token_id, \
         (SELECT reason FROM audit WHERE rotation_id = r.id ORDER BY id LIMIT 1) AS reason \
         FROM rotations r",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    rows
}

/// Whether nothing more will happen to `row`.
pub fn ended(row: &Row) -> bool {
    Phase::parse(&row.phase).is_some_and(Phase::is_terminal)
}

/// Asserts `row` of `target` ended, saying why unless done, and counts it by its phase.
pub fn count_ended(by_phase: &mut BTreeMap<String, usize>, target: &str, row: &Row) {
    assert!(ended(row), "{target}: rotation not ended: {row:?}");
    *by_phase.entry(row.phase.clone()).or_default() += 1;
    if row.phase != "done" {
        assert!(
            row.outcome.as_deref().is_some_and(|o| !o.is_empty()),
            "{target}: ended {} without saying why",
            row.phase
        );
    }
}

/// Side effects over every target.
#[derive(Debug, Default)]
pub struct Tally {
    pub rotations: usize,
    pub by_phase: BTreeMap<String, usize>,
    pub mints: usize,
    pub revokes: usize,
    /// Revoke requests that found their token revoked already: harmless (Signon changes
    /// nothing) but a step taken twice, which only a kill between Signon's answer and the
    /// journal's commit may cause.
    pub revokes_repeated: usize,
    pub secret_writes: usize,
    /// Writes of a value the Secret was given already (the same kind of repeat), by whom.
    pub writes_repeated: Vec<String>,
    /// The duplicates the run must not have: a second mint for a target, a Secret given two
    /// different new tokens, a second rotation for one alert.
    pub duplicates: Vec<String>,
}

/// Counts what each target's rotation did, and asserts what must hold of each whatever the
/// faults: it ended (saying why when not done), and its Secret holds a live token.
pub fn tally(pair: &Pair, users: &[String], rows: &[Row]) -> Tally {
    let mut tally = Tally::default();
    let tokens = pair.signon.tokens();
    let admissions = pair.kubernetes.admissions();
    for user in users {
        let theirs: Vec<&Row> = rows.iter().filter(|r| r.api_user == *user).collect();
        tally.rotations += theirs.len();
        if theirs.len() != 1 {
            tally
                .duplicates
                .push(format!("{user}: {} rotations", theirs.len()));
        }
        for row in &theirs {
            count_ended(&mut tally.by_phase, user, row);
        }
        let minted: Vec<_> = tokens
            .iter()
            .filter(|t| t.api_user == *user && t.idempotency_key.is_some())
            .collect();
        tally.mints += minted.len();
        if minted.len() > 1 {
            tally
                .duplicates
                .push(format!("{user}: {} tokens minted", minted.len()));
        }
        for row in theirs.iter().filter(|r| r.phase == "done") {
            let id = minted.first().map(|t| t.id.to_string());
            assert_eq!(row.new_token_id, id, "{user}: the journal's new token");
        }
        for token in tokens.iter().filter(|t| t.api_user == *user) {
            tally.revokes += usize::from(token.revokes > 0);
            tally.revokes_repeated += token.revokes.saturating_sub(1) as usize;
        }
        let secret = secret_name(&pair.signon.user_name(user), APP);
        let written: Vec<String> = admissions
            .iter()
            .filter(|a| a.resource == "secrets" && a.name == secret)
            .filter_map(|a| a.object["data"][TOKEN_KEY].as_str())
            .map(|v| String::from_utf8(STANDARD.decode(v).unwrap()).unwrap())
            .collect();
        tally.secret_writes += written.len();
        let distinct: BTreeSet<&String> = written.iter().collect();
        if written.len() > distinct.len() {
            tally.writes_repeated.push(format!(
                "{user}: {} writes of {} values",
                written.len(),
                distinct.len()
            ));
        }
        let seeded: BTreeSet<&str> = tokens
            .iter()
            .filter(|t| t.api_user == *user && t.idempotency_key.is_none())
            .map(|t| t.value.as_str())
            .collect();
        let new: BTreeSet<&str> = written
            .iter()
            .map(String::as_str)
            .filter(|v| !seeded.contains(v))
            .collect();
        if new.len() > 1 {
            tally.duplicates.push(format!(
                "{user}: its Secret was given {} new tokens",
                new.len()
            ));
        }
        // A rotation that ended well wrote its new token and nothing else (only a roll-back
        // writes the old one back).
        let done = theirs.iter().any(|r| r.phase == "done");
        if done && written.iter().any(|v| minted.iter().all(|t| t.value != *v)) {
            tally.duplicates.push(format!(
                "{user}: done, but its Secret was also written with a token it did not mint"
            ));
        }
        let in_use = pair
            .kubernetes
            .value(NAMESPACE, &secret, TOKEN_KEY)
            .unwrap();
        assert!(
            pair.signon.is_live(&in_use),
            "{user}'s Secret holds a dead token: {theirs:?}"
        );
    }
    tally
}

/// No token value (nor its base64), and neither credential, is in the replicas' logs or what
/// Slack was sent.
pub fn assert_no_secret_in_logs(pair: &Pair, logs: &[std::path::PathBuf], more: Vec<String>) {
    // As text, so the search is std's (optimised even in a debug build) over megabytes of log.
    let text: String = logs
        .iter()
        .map(|path| String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned())
        .collect();
    let slack = serde_json::to_string(&pair.slack.messages()).unwrap();
    assert!(
        text.contains("phase changed"),
        "the replicas' logs were captured"
    );
    // Each token as it is and as a Secret's `data` carries it (base64).
    let mut secrets: Vec<String> = pair
        .signon
        .tokens()
        .into_iter()
        .flat_map(|t| [STANDARD.encode(&t.value), t.value])
        .collect();
    secrets.extend(more);
    secrets.push(crate::world::ADMIN_TOKEN.to_owned());
    secrets.push(crate::process::WEBHOOK_TOKEN.to_owned());
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret is in a replica's log"
        );
        assert!(
            !slack.contains(secret.as_str()),
            "a secret is in a Slack message"
        );
    }
}

/// How many times each alert, as Alertmanager sent it (fingerprint and status), is in the
/// journal.
pub async fn journaled(db_url: &str) -> std::collections::HashMap<(String, bool), i64> {
    let mut conn = sqlx::PgConnection::connect(db_url).await.unwrap();
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT fingerprint, status, count(*) FROM alerts GROUP BY 1, 2")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    let mut counts = std::collections::HashMap::new();
    for (stored, status, n) in rows {
        // The journal keys an alert by Alertmanager's fingerprint and a suffix of its own.
        let sent = stored.split_once(':').map_or(stored.as_str(), |(f, _)| f);
        *counts
            .entry((sent.to_owned(), status == "resolved"))
            .or_insert(0) += n;
    }
    counts
}

/// The journal's rotations once all `expected` have ended, no Slack notice is left to send and
/// no scheduled target is due for `quiet` (for the caller to stop the replicas with nothing
/// under way).
pub async fn until_ended(
    db_url: &str,
    expected: usize,
    within: Duration,
    quiet: Duration,
) -> Vec<Row> {
    let deadline = Instant::now() + within;
    loop {
        let rows = rotations(db_url).await;
        let unsent = unsent_notices(db_url).await;
        let due_soon = next_due(db_url).await.is_some_and(|due| {
            due < jiff::Timestamp::now().as_millisecond() + quiet.as_millis() as i64
        });
        if rows.len() >= expected && rows.iter().all(ended) && unsent == 0 && !due_soon {
            return rows;
        }
        if Instant::now() > deadline {
            let stuck: Vec<_> = rows.iter().filter(|r| !ended(r)).collect();
            panic!(
                "after {within:?}: {} of {expected} rotations journaled, {unsent} Slack notices \
                 unsent, not ended: {stuck:#?}",
                rows.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The earliest due time of a scheduled target (Unix ms), if there are any.
async fn next_due(db_url: &str) -> Option<i64> {
    let mut conn = sqlx::PgConnection::connect(db_url).await.unwrap();
    let (due,): (Option<i64>,) = sqlx::query_as("SELECT min(next_due_at_ms) FROM schedules")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    due
}

/// Slack notices the journal still has to send.
async fn unsent_notices(db_url: &str) -> i64 {
    let mut conn = sqlx::PgConnection::connect(db_url).await.unwrap();
    let (n,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM notifications WHERE delivered_at_ms IS NULL")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    n
}
