//! The Kubernetes manifests keep each listener where it belongs: `/metrics` on `metrics_listen`
//! (Service `token-rotator`, the ServiceMonitor, Prometheus alone in the NetworkPolicy), the
//! public edge on `public_listen` (Service `token-rotator-public`, the ingress controller alone),
//! and neither exposed through the other's Service.

use std::path::Path;

use serde_json::Value;
use token_rotator::config::Config;

fn documents(path: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    serde_saphyr::from_multiple(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn port_of(ports: &Value, name: &str) -> Option<u64> {
    ports
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
}

#[test]
fn metrics_and_the_public_edge_have_ports_of_their_own_in_every_manifest() {
    let deployment = &documents("deploy/kubernetes/base/deployment.yaml")[0];
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let ports = &container["ports"];
    let listen: u64 = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "TOKEN_ROTATOR_LISTEN")
        .and_then(|e| e["value"].as_str())
        .and_then(|v| v.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("the Deployment sets TOKEN_ROTATOR_LISTEN");
    assert_eq!(port_of(ports, "http"), Some(listen));
    for config in [
        "deploy/kubernetes/base/config.toml",
        "deploy/kubernetes/overlays/production/config.toml",
        "deploy/kubernetes/overlays/integration/config.toml",
    ] {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(config)).unwrap();
        let config_of = Config::from_toml(&text).unwrap_or_else(|e| panic!("{config}: {e}"));
        let metrics = config_of.metrics_listen.expect(config).port();
        let public = config_of.public_listen.expect(config).port();
        assert_eq!(
            port_of(ports, "metrics"),
            Some(u64::from(metrics)),
            "{config}"
        );
        assert_eq!(
            port_of(ports, "public"),
            Some(u64::from(public)),
            "{config}"
        );
        assert!(
            metrics != public && u64::from(metrics) != listen,
            "{config}"
        );
    }
    let metrics = port_of(ports, "metrics").unwrap();
    let public = port_of(ports, "public").unwrap();

    // Services: the internal one has no public port, the public one nothing else.
    let services = documents("deploy/kubernetes/base/service.yaml");
    let targets = |name: &str| -> Vec<String> {
        let service = services
            .iter()
            .find(|s| s["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no Service {name}"));
        service["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["targetPort"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(targets("token-rotator"), ["http", "metrics"]);
    assert_eq!(targets("token-rotator-public"), ["public"]);

    // Prometheus scrapes the metrics port, at /metrics.
    let monitor = &documents("deploy/kubernetes/base/servicemonitor.yaml")[0];
    let endpoints = monitor["spec"]["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0]["port"], "metrics");
    assert_eq!(endpoints[0]["path"], "/metrics");

    // Each port admits only who needs it: Alertmanager the webhook, Prometheus the metrics, the
    // ingress controller the public edge.
    let policy = &documents("deploy/kubernetes/base/networkpolicy.yaml")[0];
    let mut admitted: Vec<(u64, String)> = Vec::new();
    for rule in policy["spec"]["ingress"].as_array().unwrap() {
        let from = &rule["from"][0];
        let who = from["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            .as_str()
            .or(from["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"].as_str())
            .unwrap()
            .to_owned();
        assert_eq!(rule["from"].as_array().unwrap().len(), 1, "{rule}");
        for port in rule["ports"].as_array().unwrap() {
            admitted.push((port["port"].as_u64().unwrap(), who.clone()));
        }
    }
    admitted.sort();
    let mut expected = vec![
        (listen, "alertmanager".to_owned()),
        (metrics, "prometheus".to_owned()),
        (public, "ingress-nginx".to_owned()),
    ];
    expected.sort();
    assert_eq!(admitted, expected);
}
