//! Debian's real `kubectl` drives the Kubernetes simulator, so the simulator
//! is checked by a client we did not write: discovery, `get`, `apply --server-side` (with its
//! conflicts and `--force-conflicts`), `create job --from=cronjob/…`, `logs`, `rollout restart`
//! and `rollout status`, each answered as a real API server answers.
//! Outside CI a missing kubectl skips the test loudly; in CI (`CI` set) it is a failure.
//!
//! `--validate=false` on `apply` and `create -f`: kubectl's own schema check needs the server's
//! OpenAPI document, which the simulator does not serve ("failed to download openapi"); what
//! is tested is what the API server refuses, which the simulator does server-side.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;
use tempfile::TempDir;
use token_rotator::clock::{Clock, ManualClock};
use token_rotator::sim::kubernetes::{KubernetesSim, Rollout, SecretUse};

const NAMESPACE: &str = "apps";
const CRONJOB: &str = "signon-sync-token-secrets-to-k8s";

fn binary() -> Option<PathBuf> {
    let found = ["/usr/bin/kubectl", "/usr/local/bin/kubectl"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "kubectl is not installed, but CI must run this test (.ci/run installs kubernetes-client)"
        );
        eprintln!("SKIPPED: kubectl is not installed (apt-get install kubernetes-client)");
    }
    found
}

/// kubectl against one simulator: a kubeconfig with its loopback URL and a bearer token, and
/// its own discovery cache.
struct Kubectl {
    binary: PathBuf,
    dir: TempDir,
}

struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Kubectl {
    fn new(binary: PathBuf, url: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster:\n    server: {url}\n\
             users:\n- name: token-rotator\n  user:\n    token: a-service-account-token\n\
             contexts:\n- name: sim\n  context:\n    cluster: sim\n    user: token-rotator\n    namespace: {NAMESPACE}\n\
             current-context: sim\n"
        );
        std::fs::write(dir.path().join("config"), config).unwrap();
        Self { binary, dir }
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    async fn run(&self, args: &[&str]) -> Ran {
        let dir: &Path = self.dir.path();
        let output = tokio::process::Command::new(&self.binary)
            .arg(format!("--kubeconfig={}", dir.join("config").display()))
            .arg(format!("--cache-dir={}", dir.join("cache").display()))
            .args(args)
            .env("HOME", dir)
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(60), output)
            .await
            .expect("kubectl answered within a minute")
            .unwrap();
        let ran = Ran {
            ok: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        eprintln!(
            "$ kubectl {}\n{}{}(ok: {})",
            args.join(" "),
            ran.stdout,
            ran.stderr,
            ran.ok
        );
        ran
    }

    async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let ran = self.run(&all).await;
        assert!(ran.ok, "{}", ran.stderr);
        serde_json::from_str(&ran.stdout).unwrap()
    }
}

async fn cluster() -> Option<(
    Kubectl,
    Arc<KubernetesSim>,
    Arc<ManualClock>,
    token_rotator::sim::Running,
)> {
    token_rotator::install_crypto_provider();
    let binary = binary()?;
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let sim = KubernetesSim::with_clock(clock.clone() as Arc<dyn Clock>);
    sim.set_runner(Arc::new(|run| Ok(format!("ran {:?}\n", run.command))));
    sim.add_sync_cronjob(NAMESPACE, CRONJOB);
    let running = sim.start().await.unwrap();
    let kubectl = Kubectl::new(binary, &running.url());
    Some((kubectl, sim, clock, running))
}

#[tokio::test]
async fn kubectl_reads_and_applies_secrets_as_from_an_api_server() {
    let Some((kubectl, sim, _clock, _running)) = cluster().await else {
        return;
    };
    sim.put(NAMESPACE, "signon-token-a-b", "bearer_token", "old-token");
    let secret = kubectl
        .json(&["get", "secret", "signon-token-a-b", "--show-managed-fields"])
        .await;
    assert_eq!(secret["data"]["bearer_token"], "b2xkLXRva2Vu");
    assert_eq!(secret["metadata"]["managedFields"][0]["manager"], "signon");

    let applied = |value: &str, name: &str, kind: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {NAMESPACE}\ntype: {kind}\nstringData:\n  bearer_token: {value}\n"
        )
    };
    let same = kubectl.file(
        "same.yaml",
        &applied("old-token", "signon-token-a-b", "Opaque"),
    );
    let ran = kubectl
        .run(&[
            "apply",
            "--validate=false",
            "--server-side",
            "--field-manager=operator",
            "-f",
            same.to_str().unwrap(),
        ])
        .await;
    assert!(
        ran.ok,
        "the same value: co-owned, no conflict: {}",
        ran.stderr
    );

    let new = kubectl.file(
        "new.yaml",
        &applied("new-token", "signon-token-a-b", "Opaque"),
    );
    let ran = kubectl
        .run(&[
            "apply",
            "--validate=false",
            "--server-side",
            "--field-manager=operator",
            "-f",
            new.to_str().unwrap(),
        ])
        .await;
    assert!(!ran.ok);
    assert!(
        ran.stderr
            .contains("Apply failed with 1 conflict: conflict with \"signon\": .data.bearer_token")
            && ran.stderr.contains("--force-conflicts"),
        "{}",
        ran.stderr
    );
    let ran = kubectl
        .run(&[
            "apply",
            "--validate=false",
            "--server-side",
            "--force-conflicts",
            "--field-manager=operator",
            "-f",
            new.to_str().unwrap(),
        ])
        .await;
    assert!(ran.ok, "{}", ran.stderr);
    assert_eq!(
        sim.value(NAMESPACE, "signon-token-a-b", "bearer_token")
            .as_deref(),
        Some("new-token")
    );

    let tls = kubectl.file(
        "tls.yaml",
        &applied("new-token", "signon-token-a-b", "kubernetes.io/tls"),
    );
    let ran = kubectl
        .run(&[
            "apply",
            "--validate=false",
            "--server-side",
            "--field-manager=operator",
            "-f",
            tls.to_str().unwrap(),
        ])
        .await;
    assert!(
        !ran.ok && ran.stderr.contains("field is immutable"),
        "{}",
        ran.stderr
    );

    let bad = kubectl.file("bad.yaml", &applied("x", "Signon_Token", "Opaque"));
    let ran = kubectl
        .run(&[
            "apply",
            "--validate=false",
            "--server-side",
            "--field-manager=operator",
            "-f",
            bad.to_str().unwrap(),
        ])
        .await;
    assert!(
        !ran.ok
            && ran
                .stderr
                .contains("a lowercase RFC 1123 subdomain must consist of"),
        "{}",
        ran.stderr
    );
}

/// `kubectl create job <name> --from=cronjob/…`, created through `kubectl create -f`.
async fn create_job_from_cronjob(kubectl: &Kubectl, name: &str) -> Value {
    let from = format!("--from=cronjob/{CRONJOB}");
    let rendered = kubectl
        .run(&[
            "create",
            "job",
            name,
            &from,
            "--dry-run=client",
            "-o",
            "json",
        ])
        .await;
    assert!(rendered.ok, "{}", rendered.stderr);
    let path = kubectl.file(&format!("{name}.json"), &rendered.stdout);
    let ran = kubectl
        .run(&[
            "create",
            "--validate=false",
            "-f",
            path.to_str().unwrap(),
            "-o",
            "json",
        ])
        .await;
    assert!(ran.ok, "{}", ran.stderr);
    serde_json::from_str(&ran.stdout).unwrap()
}

#[tokio::test]
async fn kubectl_makes_a_job_from_the_cronjob_and_reads_its_log() {
    let Some((kubectl, sim, _clock, _running)) = cluster().await else {
        return;
    };
    // `create job --from` reads the CronJob from the simulator and renders the Job; kubectl's
    // typed client would send it as protobuf, which the simulator does not speak, so the Job
    // it rendered goes through `create -f` (JSON).
    let job = create_job_from_cronjob(&kubectl, "sync-now").await;
    assert_eq!(job["metadata"]["name"], "sync-now");
    let job = kubectl.json(&["get", "job", "sync-now"]).await;
    assert_eq!(
        job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    let uid = job["metadata"]["uid"].as_str().unwrap().to_owned();
    assert_eq!(
        job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        uid
    );
    let job = kubectl.json(&["get", "job", "sync-now"]).await;
    assert!(
        job["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Complete"),
        "{job:#}"
    );
    let ran = kubectl.run(&["logs", "job/sync-now"]).await;
    assert!(
        ran.ok && ran.stdout.contains("kubernetes:sync_token_secrets"),
        "{}",
        ran.stderr
    );
    let pods = kubectl
        .json(&[
            "get",
            "pods",
            "-l",
            &format!("batch.kubernetes.io/controller-uid={uid}"),
        ])
        .await;
    assert_eq!(pods["items"].as_array().unwrap().len(), 1);

    // A pod that cannot start: the log endpoint answers 400 with the kubelet's words.
    sim.delete_secret(NAMESPACE, "signon-mysql");
    create_job_from_cronjob(&kubectl, "sync-again").await;
    let job = kubectl.json(&["get", "job", "sync-again"]).await;
    let uid = job["metadata"]["uid"].as_str().unwrap().to_owned();
    let pods = kubectl
        .json(&[
            "get",
            "pods",
            "-l",
            &format!("batch.kubernetes.io/controller-uid={uid}"),
        ])
        .await;
    let pod = pods["items"][0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        pods["items"][0]["status"]["containerStatuses"][0]["state"]["waiting"]["message"],
        "secret \"signon-mysql\" not found"
    );
    let ran = kubectl.run(&["logs", &pod, "-c", "cron-task"]).await;
    assert!(
        !ran.ok
            && ran.stderr.contains(&format!(
                "container \"cron-task\" in pod \"{pod}\" is waiting to start: CreateContainerConfigError"
            )),
        "{}",
        ran.stderr
    );
    // Names the API server refuses: a Job's pods carry its name as a label value, so at most
    // 63 characters. kubectl words the 422 from the Status' details.
    let long = "x".repeat(64);
    let from = format!("--from=cronjob/{CRONJOB}");
    let rendered = kubectl
        .run(&[
            "create",
            "job",
            &long,
            &from,
            "--dry-run=client",
            "-o",
            "json",
        ])
        .await;
    let path = kubectl.file("long.json", &rendered.stdout);
    let ran = kubectl
        .run(&["create", "--validate=false", "-f", path.to_str().unwrap()])
        .await;
    assert!(
        !ran.ok
            && ran
                .stderr
                .contains(&format!("The Job \"{long}\" is invalid"))
            && ran.stderr.contains("must be no more than 63 characters"),
        "{}",
        ran.stderr
    );
}

#[tokio::test]
async fn kubectl_rollout_status_agrees_with_the_simulated_controller() {
    let Some((kubectl, sim, clock, _running)) = cluster().await else {
        return;
    };
    sim.add_deployment(
        NAMESPACE,
        "frontend",
        "signon-token-a-b",
        SecretUse::Env,
        true,
        Rollout::Finishes,
    );
    sim.add_deployment(
        NAMESPACE,
        "publisher",
        "signon-token-a-b",
        SecretUse::Env,
        true,
        Rollout::Stuck,
    );
    let ran = kubectl.run(&["get", "deployments"]).await;
    assert!(ran.ok && ran.stdout.contains("frontend"), "{}", ran.stderr);

    let ran = kubectl
        .run(&["rollout", "restart", "deployment/frontend"])
        .await;
    assert!(ran.ok && ran.stdout.contains("restarted"), "{}", ran.stderr);
    let ran = kubectl
        .run(&["rollout", "status", "deployment/frontend", "--timeout=30s"])
        .await;
    assert!(
        ran.ok && ran.stdout.contains("successfully rolled out"),
        "{}",
        ran.stderr
    );
    assert_eq!(sim.revision(NAMESPACE, "frontend"), 2);

    let ran = kubectl
        .run(&["rollout", "restart", "deployment/publisher"])
        .await;
    assert!(ran.ok, "{}", ran.stderr);
    // The controller's clock passes the 600 s deadline while kubectl watches.
    let status = kubectl.run(&["rollout", "status", "deployment/publisher", "--timeout=30s"]);
    let later = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        clock.advance(Duration::from_secs(601));
    };
    let (ran, ()) = tokio::join!(status, later);
    assert!(
        !ran.ok
            && ran
                .stderr
                .contains("deployment \"publisher\" exceeded its progress deadline"),
        "{}",
        ran.stderr
    );
}
