//! The shipped ValidatingAdmissionPolicy (`deploy/kubernetes/base/admission-policy.yaml`),
//! evaluated with a CEL interpreter as the API server would: against every write the Kubernetes
//! simulator received in the full rotation paths (each must be admitted), and against the writes
//! someone holding token-rotator's ServiceAccount token could make with the same RBAC (each must
//! be denied, with the policy's message).
//!
//! As the API server does (kubernetes.io/docs/reference/access-authn-authz/
//! validating-admission-policy/): a write is judged only if a `resourceRules` entry and every
//! `matchConditions` expression match; `variables` are there under `variables.<name>` (computed
//! lazily there; here, one that cannot be computed for this object is left out, so an
//! expression that needs it errs); an expression that errs counts as a denial
//! (`failurePolicy: Fail`).

use serde_json::{Value, json};
use token_rotator::sim::kubernetes::Admission;

use crate::rbac::full_paths;
use crate::world::NAMESPACE;

const SERVICE_ACCOUNT: &str = "system:serviceaccount:token-rotator:token-rotator";

struct Rule {
    groups: Vec<String>,
    resources: Vec<String>,
    operations: Vec<String>,
}

struct Policy {
    rules: Vec<Rule>,
    conditions: Vec<cel::Program>,
    variables: Vec<(String, cel::Program)>,
    validations: Vec<(String, cel::Program)>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

fn compile(expression: &Value) -> cel::Program {
    let text = expression.as_str().expect("an expression");
    cel::Program::compile(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn shipped() -> Policy {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/kubernetes/base/admission-policy.yaml");
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(&std::fs::read_to_string(path).unwrap()).unwrap();
    let binding = documents
        .iter()
        .find(|d| d["kind"] == "ValidatingAdmissionPolicyBinding")
        .expect("a binding: a policy without one does nothing");
    assert_eq!(binding["spec"]["validationActions"], json!(["Deny"]));
    assert_eq!(
        binding["spec"]["matchResources"]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        NAMESPACE
    );
    let policy = &documents
        .iter()
        .find(|d| d["kind"] == "ValidatingAdmissionPolicy")
        .expect("a policy")["spec"];
    assert_eq!(
        binding["spec"]["policyName"],
        "token-rotator-least-privilege"
    );
    assert_eq!(policy["failurePolicy"], "Fail");
    let list = |key: &str| policy[key].as_array().cloned().unwrap_or_default();
    Policy {
        rules: policy["matchConstraints"]["resourceRules"]
            .as_array()
            .expect("matchConstraints.resourceRules")
            .iter()
            .map(|r| Rule {
                groups: strings(&r["apiGroups"]),
                resources: strings(&r["resources"]),
                operations: strings(&r["operations"]),
            })
            .collect(),
        conditions: list("matchConditions")
            .iter()
            .map(|c| compile(&c["expression"]))
            .collect(),
        variables: list("variables")
            .iter()
            .map(|v| {
                (
                    v["name"].as_str().unwrap().to_owned(),
                    compile(&v["expression"]),
                )
            })
            .collect(),
        validations: list("validations")
            .iter()
            .map(|v| {
                let message = v["message"].as_str().unwrap_or_default().to_owned();
                (message, compile(&v["expression"]))
            })
            .collect(),
    }
}

/// What the API server answers the write `a` made by `user`: `Ok` (admitted, or not this
/// policy's business) or the denial's message.
/// The first container of a Job's or a Deployment's pod template.
fn container(w: &mut Admission) -> &mut Value {
    &mut w.object["spec"]["template"]["spec"]["containers"][0]
}

fn admit(policy: &Policy, a: &Admission, user: &str) -> Result<(), String> {
    let matched = policy.rules.iter().any(|r| {
        r.groups.contains(&a.group)
            && r.resources.contains(&a.resource)
            && r.operations.iter().any(|o| o == a.operation)
    });
    if !matched {
        return Ok(());
    }
    let request = json!({
        "operation": a.operation,
        "userInfo": {"username": user},
        "resource": {"group": a.group, "version": "v1", "resource": a.resource},
        "namespace": a.namespace,
        "name": a.name,
    });
    let mut context = cel::Context::default();
    for (name, value) in [
        ("request", request),
        ("object", a.object.clone()),
        ("oldObject", a.old_object.clone()),
    ] {
        context.add_variable_from_value(name, cel::to_value(value).unwrap());
    }
    for condition in &policy.conditions {
        match condition.execute(&context) {
            Ok(cel::Value::Bool(true)) => {}
            Ok(cel::Value::Bool(false)) => return Ok(()),
            other => return Err(format!("a match condition erred: {other:?}")),
        }
    }
    let mut variables = serde_json::Map::new();
    for (name, program) in &policy.variables {
        context.add_variable_from_value("variables", cel::to_value(&variables).unwrap());
        if let Ok(value) = program.execute(&context) {
            variables.insert(name.clone(), value.json().unwrap());
        }
    }
    context.add_variable_from_value("variables", cel::to_value(&variables).unwrap());
    for (message, program) in &policy.validations {
        match program.execute(&context) {
            Ok(cel::Value::Bool(true)) => {}
            Ok(cel::Value::Bool(false)) => return Err(message.clone()),
            other => return Err(format!("erred ({other:?}): {message}")),
        }
    }
    Ok(())
}

#[tokio::test]
async fn the_policy_admits_every_write_of_the_full_paths_and_denies_any_other() {
    let policy = shipped();
    let writes: Vec<Admission> = full_paths()
        .await
        .iter()
        .flat_map(|cluster| cluster.admissions())
        .collect();
    for write in &writes {
        assert_eq!(
            admit(&policy, write, SERVICE_ACCOUNT),
            Ok(()),
            "{} {}/{}: {:#}",
            write.operation,
            write.resource,
            write.name,
            write.object
        );
    }
    // Not vacuous: each kind of write token-rotator makes is among them.
    let find = |resource: &str, operation: &str, what: &dyn Fn(&Admission) -> bool| {
        writes
            .iter()
            .find(|w| w.resource == resource && w.operation == operation && what(w))
            .unwrap_or_else(|| panic!("no {operation} of {resource} in the full paths"))
            .clone()
    };
    let command = |w: &Admission| w.object["spec"]["template"]["spec"]["containers"][0].clone();
    let secret = find("secrets", "UPDATE", &|_| true);
    find("secrets", "CREATE", &|_| true);
    let script = find("jobs", "CREATE", &|w| command(w)["command"][0] == "rails");
    let sync = find("jobs", "CREATE", &|w| {
        command(w)["command"] == json!(["rake"])
    });
    let restart = find("deployments", "UPDATE", &|_| true);

    // What the ServiceAccount's RBAC would let anyone holding its token do, and this forbids.
    let denied = |mut w: Admission, change: &dyn Fn(&mut Admission), why: &str| {
        change(&mut w);
        let answer = admit(&policy, &w, SERVICE_ACCOUNT);
        assert!(
            answer.as_ref().is_err_and(|m| m.contains(why)),
            "{why}: {answer:?} for {:#}",
            w.object
        );
        // The same write by anyone else is not this policy's business.
        assert_eq!(
            admit(&policy, &w, "system:serviceaccount:argocd:argocd"),
            Ok(())
        );
    };
    let only_tokens = "writes only signon-token-* Secrets";
    denied(
        secret.clone(),
        &|w| w.object["metadata"]["name"] = json!("signon-app-publishing-api"),
        only_tokens,
    );
    denied(
        secret.clone(),
        &|w| {
            w.operation = "DELETE";
            w.object = Value::Null;
        },
        only_tokens,
    );
    denied(
        script.clone(),
        &|w| w.operation = "UPDATE",
        "only creates Jobs",
    );
    let image = "run Signon's own image";
    denied(
        script.clone(),
        &|w| container(w)["image"] = json!("busybox:1.36"),
        image,
    );
    denied(
        script.clone(),
        &|w| {
            let signon = container(w)["image"].as_str().unwrap().to_owned();
            let (repository, _) = signon.split_once(':').unwrap();
            container(w)["image"] = json!(format!("{repository}-debug:latest"));
        },
        image,
    );
    denied(
        script.clone(),
        &|w| {
            let sidecar = json!([{"name": "x", "image": "busybox:1.36"}]);
            w.object["spec"]["template"]["spec"]["initContainers"] = sidecar;
        },
        image,
    );
    let as_signon_runs = "run as Signon's pods do";
    denied(
        script.clone(),
        &|w| container(w)["securityContext"]["privileged"] = json!(true),
        as_signon_runs,
    );
    denied(
        script.clone(),
        &|w| container(w)["securityContext"]["readOnlyRootFilesystem"] = json!(false),
        as_signon_runs,
    );
    denied(
        sync.clone(),
        &|w| w.object["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] = json!(false),
        as_signon_runs,
    );
    denied(
        script.clone(),
        &|w| w.object["spec"]["template"]["spec"]["serviceAccountName"] = json!("token-rotator"),
        as_signon_runs,
    );
    let what_runs = "run one of its scripts";
    denied(
        script.clone(),
        &|w| {
            container(w)["command"] = json!([
                "rails",
                "runner",
                "puts Doorkeeper::AccessToken.pluck(:token)"
            ]);
        },
        what_runs,
    );
    denied(
        script.clone(),
        &|w| w.object["spec"]["template"]["spec"]["volumes"] = json!([]),
        what_runs,
    );
    denied(
        script.clone(),
        &|w| {
            let env = container(w)["env"].as_array_mut().unwrap();
            env.push(json!({"name": "RUBYOPT", "value": "-r/tmp/evil.rb"}));
        },
        "may not set RUBYOPT",
    );
    denied(
        sync.clone(),
        &|w| container(w)["args"] = json!(["db:seed"]),
        what_runs,
    );
    denied(
        sync.clone(),
        &|w| w.object["metadata"]["ownerReferences"] = json!([]),
        what_runs,
    );
    let restart_only = "only by its restart annotation";
    denied(
        restart.clone(),
        &|w| container(w)["image"] = json!("busybox:1.36"),
        restart_only,
    );
    denied(
        restart.clone(),
        &|w| w.object["spec"]["replicas"] = json!(0),
        restart_only,
    );
    denied(
        restart.clone(),
        &|w| {
            let annotations = &mut w.object["spec"]["template"]["metadata"]["annotations"];
            annotations["sidecar.istio.io/inject"] = json!("false");
        },
        restart_only,
    );
    denied(
        restart,
        &|w| {
            w.operation = "DELETE";
            w.object = Value::Null;
        },
        restart_only,
    );
}
