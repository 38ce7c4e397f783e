//! The GitLab simulator's own rules, over HTTP, each as `src/sim/gitlab/` cites it: pages and
//! their headers, `state`, owners by id or encoded path, and token families.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::Value;
use token_rotator::clock::SystemClock;
use token_rotator::sim::gitlab::GitLabSim;

use super::GITLAB_TOKEN;

struct Sim {
    sim: Arc<GitLabSim>,
    running: token_rotator::sim::Running,
    http: reqwest::Client,
}

async fn sim() -> Sim {
    token_rotator::install_crypto_provider();
    let sim = GitLabSim::new(GITLAB_TOKEN, Arc::new(SystemClock));
    sim.add_project(42, "platform/ci");
    let running = sim.start().await.unwrap();
    Sim {
        sim,
        running,
        http: reqwest::Client::new(),
    }
}

impl Sim {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.running.url()))
            .header("PRIVATE-TOKEN", GITLAB_TOKEN)
            .send()
            .await
            .unwrap()
    }

    async fn rotate(&self, as_token: &str, id: u64) -> StatusCode {
        self.http
            .post(format!(
                "{}/api/v4/projects/42/access_tokens/{id}/rotate",
                self.running.url()
            ))
            .header("PRIVATE-TOKEN", as_token)
            .send()
            .await
            .unwrap()
            .status()
    }

    fn id_of(&self, value: &str) -> u64 {
        self.sim
            .tokens()
            .iter()
            .find(|t| t.value == value)
            .unwrap()
            .id
    }

    fn revoked(&self, value: &str) -> bool {
        self.sim
            .tokens()
            .iter()
            .find(|t| t.value == value)
            .unwrap()
            .revoked
    }
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response.headers()[name].to_str().unwrap()
}

#[tokio::test]
async fn lists_come_twenty_a_page_at_most_a_hundred_oldest_first_with_gitlabs_headers() {
    let s = sim().await;
    let owner = token_rotator::sim::gitlab::Owner::Project("42".into());
    for _ in 0..40 {
        s.sim.add_revoked(owner.clone(), "ci-bot");
    }
    for _ in 0..5 {
        s.sim.add_token(owner.clone(), "ci-bot", 10);
    }
    let first = s.get("/api/v4/projects/42/access_tokens").await;
    assert_eq!(header(&first, "x-per-page"), "20");
    assert_eq!(header(&first, "x-page"), "1");
    assert_eq!(header(&first, "x-next-page"), "2");
    assert_eq!(header(&first, "x-prev-page"), "");
    assert_eq!(header(&first, "x-total"), "45");
    assert_eq!(header(&first, "x-total-pages"), "3");
    let link = header(&first, "link").to_owned();
    assert!(
        link.contains("page=2") && link.contains("rel=\"next\""),
        "{link}"
    );
    let page: Vec<Value> = first.json().await.unwrap();
    assert_eq!(page.len(), 20);
    assert!(
        page.iter().all(|t| t["revoked"] == true),
        "oldest first: the revoked ones"
    );

    let last = s.get("/api/v4/projects/42/access_tokens?page=3").await;
    assert_eq!(header(&last, "x-next-page"), "");
    assert_eq!(last.json::<Vec<Value>>().await.unwrap().len(), 5);

    let big = s
        .get("/api/v4/projects/42/access_tokens?per_page=500")
        .await;
    assert_eq!(header(&big, "x-per-page"), "100", "at most 100 a page");
    assert_eq!(big.json::<Vec<Value>>().await.unwrap().len(), 45);

    let active = s
        .get("/api/v4/projects/42/access_tokens?state=active")
        .await;
    let active: Vec<Value> = active.json().await.unwrap();
    assert_eq!(active.len(), 5);
    assert!(active.iter().all(|t| t["active"] == true));
    let inactive = s
        .get("/api/v4/projects/42/access_tokens?state=inactive&per_page=100")
        .await;
    assert_eq!(inactive.json::<Vec<Value>>().await.unwrap().len(), 40);
    let bad = s
        .get("/api/v4/projects/42/access_tokens?state=revoked")
        .await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn owners_are_found_by_id_or_encoded_full_path_and_nothing_else() {
    let s = sim().await;
    for path in [
        "/api/v4/projects/42",
        "/api/v4/projects/platform%2Fci",
        "/api/v4/projects/Platform%2FCI",
    ] {
        let found = s.get(path).await;
        assert_eq!(found.status(), 200, "{path}");
        assert_eq!(found.json::<Value>().await.unwrap()["id"], 42);
    }
    for path in [
        "/api/v4/projects/platform/ci",
        "/api/v4/projects/ci",
        "/api/v4/projects/43",
        "/api/v4/groups/platform",
    ] {
        assert_eq!(s.get(path).await.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn rotating_a_revoked_token_revokes_its_family_and_a_delete_revokes_one_token() {
    let s = sim().await;
    let owner = token_rotator::sim::gitlab::Owner::Project("42".into());
    let first = s.sim.add_token(owner.clone(), "ci-bot", 20);
    let first_id = s.id_of(&first);
    assert_eq!(s.rotate(GITLAB_TOKEN, first_id).await, 200);
    let second = s.sim.tokens().last().unwrap().value.clone();
    assert!(!s.revoked(&second));
    // The rotated token again: refused, and the live token of its family is revoked.
    assert_eq!(s.rotate(GITLAB_TOKEN, first_id).await, 400);
    assert!(s.revoked(&second), "reuse revoked the family");

    // Authenticating with a revoked token on a rotation endpoint: 401, and its family too.
    let third = s.sim.add_token(owner.clone(), "web-bot", 20);
    let third_id = s.id_of(&third);
    assert_eq!(s.rotate(GITLAB_TOKEN, third_id).await, 200);
    let fourth = s.sim.tokens().last().unwrap().value.clone();
    assert_eq!(s.rotate(&third, third_id).await, 401);
    assert!(
        s.revoked(&fourth),
        "a revoked token's use revoked its family"
    );

    // A delete revokes that token and no other.
    let fifth = s.sim.add_token(owner.clone(), "pages-bot", 20);
    let fifth_id = s.id_of(&fifth);
    assert_eq!(s.rotate(GITLAB_TOKEN, fifth_id).await, 200);
    let sixth = s.sim.tokens().last().unwrap().value.clone();
    let deleted = s
        .http
        .delete(format!(
            "{}/api/v4/projects/platform%2Fci/access_tokens/{fifth_id}",
            s.running.url()
        ))
        .header("PRIVATE-TOKEN", GITLAB_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert!(!s.revoked(&sixth), "revoking is not reuse");
}

#[tokio::test]
async fn a_token_whose_date_is_today_no_longer_works() {
    let s = sim().await;
    let owner = token_rotator::sim::gitlab::Owner::Project("42".into());
    let today = s.sim.add_token(owner, "ci-bot", 0);
    assert!(!s.sim.is_live(&today), "it expired at 00:00 UTC");
    let me = s
        .http
        .get(format!(
            "{}/api/v4/personal_access_tokens/self",
            s.running.url()
        ))
        .header("PRIVATE-TOKEN", &today)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);
}
