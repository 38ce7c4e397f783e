//! The Job made in Signon's own pod: the sync CronJob's `jobTemplate` with our scripts, the
//! initiator and token-rotator's labels added (`[signon.job]`).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{SCRIPTS_MOUNT, labels};

/// How to run our scripts in Signon's pod (`[signon.job]`): the pod spec comes from Signon's
/// sync CronJob; these are what token-rotator adds or overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTemplate {
    /// The CronJob whose `jobTemplate` is Signon's pod as GOV.UK's chart renders it
    /// (`charts/generic-govuk-app/templates/cron-task.yaml`): `[kubernetes] sync_cronjob`.
    pub pod_template: String,
    /// Overrides the template's image (pinned by digest); `None`: the image Signon runs now.
    pub image: Option<String>,
    /// Where Signon runs (its ServiceAccount and Secrets are there): GOV.UK's `apps`.
    pub namespace: String,
    /// Overrides the template's `serviceAccountName`.
    pub service_account: Option<String>,
    /// Holds `deploy/signon/*.rb`, mounted at `/token-rotator`.
    pub scripts_config_map: String,
    pub ttl_seconds_after_finished: i32,
    pub active_deadline_seconds: i64,
    /// Override the template's resources (its own are Signon's web container's).
    pub cpu: Option<String>,
    pub memory: Option<String>,
    /// `[signon] initiator`: the email of the Signon user the scripts act as, an API user made
    /// for token-rotator (never suspended for inactivity). Signon's `EventLog` refuses
    /// `ACCESS_TOKEN_GENERATED` and `ACCESS_TOKEN_REVOKED` without an initiator
    /// (`app/models/event_log.rb`).
    pub initiator: String,
}

/// The container of a pod template that runs the app: the chart's `cron-task`, else the first.
fn main_container(spec: &Value) -> Option<usize> {
    let containers = spec["containers"].as_array()?;
    containers
        .iter()
        .position(|c| c["name"] == "cron-task")
        .or((!containers.is_empty()).then_some(0))
}

impl JobTemplate {
    /// `rails runner /token-rotator/<script>.rb` in the pod of `cronjob`'s `jobTemplate`, with
    /// `env` added, labelled for `rotation_id`. Everything Rails needs to boot (image, `env`,
    /// `envFrom`, volumes such as the writable `/tmp`, securityContext, nodeSelector,
    /// tolerations, ServiceAccount, resources) is the template's.
    pub fn script_job(
        &self,
        cronjob: &Value,
        name: &str,
        script: &str,
        rotation_id: &str,
        env: &[(&str, String)],
    ) -> Result<Value, String> {
        let template = &cronjob["spec"]["jobTemplate"]["spec"]["template"];
        let mut spec = template["spec"].clone();
        let index = main_container(&spec).ok_or_else(|| {
            format!(
                "cronjob/{} has no container in its jobTemplate",
                self.pod_template
            )
        })?;
        let mut container = spec["containers"][index].take();
        if let Some(image) = &self.image {
            container["image"] = json!(image);
        }
        container["command"] = json!(["rails", "runner", format!("{SCRIPTS_MOUNT}/{script}.rb")]);
        if let Some(object) = container.as_object_mut() {
            object.remove("args");
        }
        // The template's own variables first, ours last (a later duplicate wins in a container).
        let ours: BTreeSet<&str> = env.iter().map(|(k, _)| *k).collect();
        let mut vars: Vec<Value> = container["env"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| !v["name"].as_str().is_some_and(|n| ours.contains(n)))
            .collect();
        vars.extend(env.iter().map(|(k, v)| json!({"name": k, "value": v})));
        container["env"] = json!(vars);
        if let Some(cpu) = &self.cpu {
            container["resources"]["requests"]["cpu"] = json!(cpu);
        }
        if let Some(memory) = &self.memory {
            container["resources"]["requests"]["memory"] = json!(memory);
            container["resources"]["limits"]["memory"] = json!(memory);
        }
        push(
            &mut container["volumeMounts"],
            json!({"name": "token-rotator-scripts", "mountPath": SCRIPTS_MOUNT, "readOnly": true}),
        );
        // One container: sidecars of the cron task have nothing to do for a script.
        spec["containers"] = json!([container]);
        push(
            &mut spec["volumes"],
            json!({"name": "token-rotator-scripts",
                   "configMap": {"name": self.scripts_config_map}}),
        );
        spec["restartPolicy"] = json!("Never");
        // Only a mint that applies the Secret itself talks to the API server (Signon's
        // Kubernetes client, lib/kubernetes/client.rb, reads the mounted token); every other
        // script reads and writes Signon's database alone, so its pod gets no token to lose.
        // The admission policy token-rotator-jobs holds every other Job to `false`.
        if !writes_secret(script, env) {
            spec["automountServiceAccountToken"] = json!(false);
        }
        if let Some(account) = &self.service_account {
            spec["serviceAccountName"] = json!(account);
        }
        let ours = labels(script, rotation_id);
        let mut pod_labels = template["metadata"]["labels"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        pod_labels.extend(ours.as_object().cloned().unwrap_or_default());
        Ok(json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": self.namespace, "labels": ours},
            "spec": {
                "backoffLimit": 0,
                "ttlSecondsAfterFinished": self.ttl_seconds_after_finished,
                "activeDeadlineSeconds": self.active_deadline_seconds,
                "template": {"metadata": {"labels": pod_labels}, "spec": spec},
            },
        }))
    }
}

/// `mint.rb` applies Secret `signon-token-…` itself when TR_WRITE_SECRET is "true".
fn writes_secret(script: &str, env: &[(&str, String)]) -> bool {
    script == "mint"
        && env
            .iter()
            .any(|(k, v)| *k == "TR_WRITE_SECRET" && v == "true")
}

fn push(list: &mut Value, item: Value) {
    match list.as_array_mut() {
        Some(items) => items.push(item),
        None => *list = json!([item]),
    }
}
