//! The shipped RBAC Role, held against every request the Kubernetes simulator received in the
//! full paths: everything asked for is allowed, and nothing is granted that was not asked for.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use token_rotator::config::{Distribution, IssuerMode};
use token_rotator::engine::Phase;
use token_rotator::sim::kubernetes::{ApiRequest, Rollout};

use crate::cluster::{options, rotate, world};
use crate::world::{NAMESPACE, WorldOptions};

const USER: &str = "short-url-manager@alphagov.co.uk";
const APP: &str = "Publishing API";

/// One rule of a Role.
struct Rule {
    groups: Vec<String>,
    resources: Vec<String>,
    verbs: Vec<String>,
    names: Vec<String>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn shipped_role() -> Vec<Rule> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/base/rbac.yaml");
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(&std::fs::read_to_string(path).unwrap()).unwrap();
    let role = documents
        .iter()
        .find(|d| d["kind"] == "Role")
        .expect("a Role");
    assert_eq!(
        role["metadata"]["namespace"], NAMESPACE,
        "namespaced to Signon's apps"
    );
    assert!(
        !documents
            .iter()
            .any(|d| d["kind"] == "ClusterRole" || d["kind"] == "ClusterRoleBinding")
    );
    role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| Rule {
            groups: strings(&r["apiGroups"]),
            resources: strings(&r["resources"]),
            verbs: strings(&r["verbs"]),
            names: strings(&r["resourceNames"]),
        })
        .collect()
}

#[tokio::test]
async fn the_shipped_role_allows_every_request_made_and_grants_nothing_unused() {
    let rules = shipped_role();
    for rule in &rules {
        for field in [&rule.groups, &rule.resources, &rule.verbs, &rule.names] {
            assert!(!field.iter().any(|v| v == "*"), "no wildcard");
        }
    }
    // The full paths: Jobs with apply, Jobs with the sync CronJob and a rollback, HTTP with
    // our own restarts, an adoption.
    let mut requests = BTreeSet::new();
    let runs = [
        (options(IssuerMode::Job, Distribution::Apply), false),
        (options(IssuerMode::Job, Distribution::Sync), false),
        (
            WorldOptions {
                reloader: false,
                ..options(IssuerMode::Http, Distribution::Apply)
            },
            false,
        ),
        (options(IssuerMode::Job, Distribution::Sync), true),
    ];
    for (options, adopt) in runs {
        let (world, _) = world(options, Rollout::Finishes).await;
        if adopt {
            world
                .signon
                .add_token(USER, APP, Duration::from_secs(730 * 86400));
        }
        assert_eq!(rotate(&world).await.phase, Phase::Done.as_str());
        requests.extend(world.kubernetes.requests());
    }
    let allows = |rule: &Rule, r: &ApiRequest| {
        r.namespace == NAMESPACE
            && rule.groups.contains(&r.group)
            && rule.resources.contains(&r.resource)
            && rule.verbs.contains(&r.verb)
            && (rule.names.is_empty() || r.name.as_ref().is_some_and(|n| rule.names.contains(n)))
    };
    for request in &requests {
        assert!(
            rules.iter().any(|rule| allows(rule, request)),
            "the Role does not allow {request:?}"
        );
    }
    for rule in &rules {
        for verb in &rule.verbs {
            for resource in &rule.resources {
                let used = requests.iter().any(|r| {
                    &r.verb == verb && &r.resource == resource && rule.groups.contains(&r.group)
                });
                assert!(
                    used,
                    "the Role grants {verb} {resource}, which no request used"
                );
            }
        }
    }
}
