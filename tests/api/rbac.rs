//! The shipped RBAC Roles, held against every request the Kubernetes simulator received in the
//! full paths, by the verb the API server authorises: everything asked for is allowed, and
//! nothing is granted that was not asked for.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use token_rotator::adapters::kubernetes::Cluster;
use token_rotator::adapters::kubernetes::lease::LeaseWrite;
use token_rotator::config::{Distribution, IssuerMode};
use token_rotator::engine::Phase;
use token_rotator::sim::kubernetes::{ApiRequest, KubernetesSim, Rollout};

use crate::cluster::{options, rotate, world};
use crate::world::{NAMESPACE, Sims, WorldOptions};

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

fn role_in(path: &str) -> Vec<Rule> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
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

/// Both ways: every request (by the verb the API server authorises, which the simulator
/// records: an apply that creates is `create` as well as `patch`) is allowed by a rule, and
/// every verb a rule grants was used.
fn hold(rules: &[Rule], requests: &BTreeSet<ApiRequest>) {
    for rule in rules {
        for field in [&rule.groups, &rule.resources, &rule.verbs, &rule.names] {
            assert!(!field.iter().any(|v| v == "*"), "no wildcard");
        }
    }
    let allows = |rule: &Rule, r: &ApiRequest| {
        r.namespace == NAMESPACE
            && rule.groups.contains(&r.group)
            && rule.resources.contains(&r.resource)
            && rule.verbs.contains(&r.verb)
            && (rule.names.is_empty() || r.name.as_ref().is_some_and(|n| rule.names.contains(n)))
    };
    for request in requests {
        assert!(
            rules.iter().any(|rule| allows(rule, request)),
            "the Role does not allow {request:?}"
        );
    }
    for rule in rules {
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

#[derive(Debug)]
enum Setup {
    AsIs,
    Adopt,
    NoSecret,
}

/// The full paths: Jobs with apply, Jobs with the sync CronJob and a rollback, HTTP with our
/// own restarts, an adoption, and a first token whose Secret the apply creates; each ends
/// `done`. Returns each run's cluster, with every request it received.
pub(crate) async fn full_paths() -> Vec<Arc<KubernetesSim>> {
    let runs = [
        (options(IssuerMode::Job, Distribution::Apply), Setup::AsIs),
        (options(IssuerMode::Job, Distribution::Sync), Setup::AsIs),
        (
            WorldOptions {
                reloader: false,
                ..options(IssuerMode::Http, Distribution::Apply)
            },
            Setup::AsIs,
        ),
        (options(IssuerMode::Job, Distribution::Sync), Setup::Adopt),
        (
            options(IssuerMode::Http, Distribution::Apply),
            Setup::NoSecret,
        ),
    ];
    let mut clusters = Vec::new();
    for (options, setup) in runs {
        let (world, _) = world(options, Rollout::Finishes).await;
        // The shipped admission policies in force: every write below must pass them.
        crate::admission_policy::enforce(&world.kubernetes);
        match setup {
            Setup::AsIs => {}
            Setup::Adopt => {
                world
                    .signon
                    .add_token(USER, APP, Duration::from_secs(730 * 86400));
            }
            Setup::NoSecret => {
                let secret = world.secret_name(USER, APP);
                world.kubernetes.delete_secret(NAMESPACE, &secret);
            }
        }
        let row = rotate(&world).await;
        assert_eq!(row.phase, Phase::Done.as_str(), "{setup:?}: {row:#?}");
        clusters.push(Arc::clone(&world.kubernetes));
    }
    clusters
}

#[tokio::test]
async fn the_shipped_role_allows_every_request_made_and_grants_nothing_unused() {
    let rules = role_in("deploy/kubernetes/base/rbac.yaml");
    let requests: BTreeSet<ApiRequest> = full_paths()
        .await
        .iter()
        .flat_map(|cluster| cluster.requests())
        .collect();
    hold(&rules, &requests);
}

/// Leader election through a Lease: what an election asks (read, create when missing, renew
/// and release with the resourceVersion read), against the component's Role.
#[tokio::test]
async fn the_leader_election_role_allows_what_an_election_asks_and_nothing_more() {
    let rules = role_in("deploy/kubernetes/components/kubernetes-leader-election/rbac.yaml");
    let sims = Sims::start().await;
    let env = sims.production();
    let cluster =
        Cluster::for_url(&env.kubernetes_url(), NAMESPACE, Duration::from_secs(1)).unwrap();
    let name = "token-rotator";
    assert!(cluster.read_lease(name).await.unwrap().is_none());
    let LeaseWrite::Written(held) = cluster
        .write_lease(name, None, Some("replica-a"), 15)
        .await
        .unwrap()
    else {
        panic!("created")
    };
    let LeaseWrite::Written(held) = cluster
        .write_lease(name, Some(&held), Some("replica-a"), 15)
        .await
        .unwrap()
    else {
        panic!("renewed")
    };
    let read = cluster.read_lease(name).await.unwrap().unwrap();
    assert_eq!(
        read.spec.unwrap().holder_identity.as_deref(),
        Some("replica-a")
    );
    assert!(matches!(
        cluster
            .write_lease(name, Some(&held), None, 15)
            .await
            .unwrap(),
        LeaseWrite::Written(_)
    ));
    let requests: BTreeSet<ApiRequest> = env.kubernetes.requests().into_iter().collect();
    hold(&rules, &requests);
}
