//! The soak's scheduled targets: GitLab project access tokens, each rotated into its own file
//! every period as `[[schedules]]` configures it, beside the alert-driven rotations, through the
//! same faults and failovers. GitLab's rotate revokes the old token as it makes the new one
//! (the simulator, `src/sim/gitlab/tokens.rs`), so a lost answer leaves an orphan the rotation
//! must find and rotate again, and rotating a revoked token revokes its whole family: a step
//! taken twice shows as a file holding a dead token.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use token_rotator::clock::{Clock, SystemClock};
use token_rotator::sim::Running;
use token_rotator::sim::gitlab::{GitLabSim, Owner};

use super::effects::{Row, count_ended};

/// The token token-rotator authenticates to GitLab with (`TOKEN_ROTATOR_GITLAB_TOKEN`).
pub const GITLAB_TOKEN: &str = "glpat-soak-maintainer";
/// Each target's token, by name, in its own project.
const TOKEN_NAME: &str = "deploy-bot";

struct Target {
    schedule: String,
    owner: Owner,
    file: PathBuf,
}

pub struct Scheduled {
    pub sim: Arc<GitLabSim>,
    every: Duration,
    targets: Vec<Target>,
    started: Instant,
    server: Running,
    _dir: tempfile::TempDir,
}

/// What the scheduled targets' rotations did.
#[derive(Debug, Default)]
pub struct Tally {
    pub rotations: usize,
    pub by_phase: BTreeMap<String, usize>,
    /// Tokens GitLab made by rotating.
    pub gitlab_rotations: usize,
    /// Of those, the ones no rotation journaled: a rotate whose answer was lost (a fault, or a
    /// kill before the journal's commit), found and rotated again by the next attempt.
    pub orphans: usize,
    /// What must not happen: one due time rotated twice, one new token journaled by two
    /// rotations.
    pub duplicates: Vec<String>,
}

impl Scheduled {
    /// `count` projects with a live token each, written to its file; rotated every `every`,
    /// spread over the first period by a jitter of one period.
    pub async fn start(count: usize, every: Duration) -> Self {
        let sim = GitLabSim::new(GITLAB_TOKEN, Arc::new(SystemClock) as Arc<dyn Clock>);
        let dir = tempfile::tempdir().unwrap();
        let targets = (0..count)
            .map(|i| {
                let owner = sim.add_project(700 + i as u64, &format!("soak/app-{i}"));
                let value = sim.add_token(owner.clone(), TOKEN_NAME, 30);
                let file = dir.path().join(format!("app-{i}.token"));
                std::fs::write(&file, value).unwrap();
                Target {
                    schedule: format!("soak-app-{i}"),
                    owner,
                    file,
                }
            })
            .collect();
        let server = sim.start().await.unwrap();
        Self {
            sim,
            every,
            targets,
            started: Instant::now(),
            server,
            _dir: dir,
        }
    }

    pub fn count(&self) -> usize {
        self.targets.len()
    }

    /// The config's part for these targets: an active environment of their own, GitLab (giving
    /// up after `timeout`, as the other upstreams) and one `[[schedules]]` each.
    pub fn config(&self, timeout: &str) -> String {
        let url = self.server.url();
        let every = format!("{}s", self.every.as_secs());
        let mut text = format!(
            "[environments.ops]\nmode = \"active\"\n[gitlab]\nurl = \"{url}\"\ntimeout = \"{timeout}\"\n"
        );
        for (i, target) in self.targets.iter().enumerate() {
            text.push_str(&format!(
                "[[schedules]]\nname = \"{}\"\nissuer = \"gitlab\"\nenvironment = \"ops\"\n\
                 owner = \"project:soak/app-{i}\"\ntoken = \"{TOKEN_NAME}\"\nevery = \"{every}\"\n\
                 jitter = \"{every}\"\nfile = {{ path = \"{}\" }}\n",
                target.schedule,
                target.file.display()
            ));
        }
        text
    }

    /// Every token value GitLab made, and the credential: none may be logged.
    pub fn secrets(&self) -> Vec<String> {
        let mut values: Vec<String> = self.sim.tokens().into_iter().map(|t| t.value).collect();
        values.push(GITLAB_TOKEN.to_owned());
        values
    }

    /// Counts what each target's rotations did, and asserts what must hold of each whatever
    /// the faults: each was rotated, every rotation ended (saying why when not done), no more
    /// rotations than due times have passed, and GitLab holds one live token of the target's,
    /// the one in its file.
    pub fn tally(&self, rows: &[Row]) -> Tally {
        let mut tally = Tally::default();
        // The first due time is within a period of the start; one more every period.
        let due_times =
            (self.started.elapsed().as_secs_f64() / self.every.as_secs_f64()) as usize + 1;
        for target in &self.targets {
            let name = &target.schedule;
            let theirs: Vec<&Row> = rows
                .iter()
                .filter(|r| r.trigger == format!("schedule:{name}"))
                .collect();
            assert!(!theirs.is_empty(), "{name}: never rotated");
            assert!(
                theirs.len() <= due_times,
                "{name}: {} rotations in {due_times} due times",
                theirs.len()
            );
            tally.rotations += theirs.len();
            let mut seen_dues = BTreeSet::new();
            let mut journaled = BTreeSet::new();
            for row in &theirs {
                count_ended(&mut tally.by_phase, name, row);
                let due = row.reason.clone().unwrap_or_default();
                if !seen_dues.insert(due.clone()) {
                    tally
                        .duplicates
                        .push(format!("{name}: two rotations for one due time ({due})"));
                }
                if let Some(id) = &row.new_token_id
                    && !journaled.insert(id.clone())
                {
                    tally
                        .duplicates
                        .push(format!("{name}: token {id} journaled by two rotations"));
                }
            }
            let family = crate::gitlab::family(&self.sim, &target.owner, TOKEN_NAME);
            for id in &journaled {
                assert!(
                    family.iter().any(|t| t.id.to_string() == *id),
                    "{name}: journaled token {id} is not one GitLab made"
                );
            }
            let made = family.iter().filter(|t| t.previous.is_some()).count();
            tally.gitlab_rotations += made;
            tally.orphans += made.saturating_sub(journaled.len());
            let live: Vec<&str> = family
                .iter()
                .filter(|t| !t.revoked)
                .map(|t| t.value.as_str())
                .collect();
            let in_file = std::fs::read_to_string(&target.file).unwrap();
            assert_eq!(
                live,
                vec![in_file.as_str()],
                "{name}: GitLab's one live token is the one in the file"
            );
        }
        tally
    }
}
