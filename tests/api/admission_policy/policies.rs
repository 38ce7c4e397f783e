//! The shipped policies and bindings as the API server reads them, and their judgement of one
//! write (see the parent module for the rules followed).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use token_rotator::sim::kubernetes::{Admission, Denial};

use crate::world::NAMESPACE;

struct Rule {
    groups: Vec<String>,
    resources: Vec<String>,
    operations: Vec<String>,
}

/// One policy with the binding that puts it in force.
pub(crate) struct Policy {
    pub(crate) name: String,
    binding: String,
    rules: Vec<Rule>,
    /// The binding's `objectSelector.matchLabels`.
    selector: BTreeMap<String, String>,
    /// The binding's `paramRef` (namespace, name): a CronJob (`paramKind`).
    param: Option<(String, String)>,
    conditions: Vec<cel::Program>,
    variables: Vec<(String, cel::Program)>,
    validations: Vec<(String, String, cel::Program)>,
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

pub(crate) fn documents() -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/kubernetes/base/admission-policy.yaml");
    serde_saphyr::from_multiple(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Each shipped policy with its binding, in the file's order.
pub(crate) fn shipped() -> Vec<Policy> {
    let documents = documents();
    let bindings: Vec<&Value> = documents
        .iter()
        .filter(|d| d["kind"] == "ValidatingAdmissionPolicyBinding")
        .collect();
    let policies: Vec<&Value> = documents
        .iter()
        .filter(|d| d["kind"] == "ValidatingAdmissionPolicy")
        .collect();
    assert_eq!(bindings.len(), policies.len(), "one binding a policy");
    policies
        .iter()
        .map(|policy| {
            let name = policy["metadata"]["name"].as_str().unwrap().to_owned();
            let binding = bindings
                .iter()
                .find(|b| b["spec"]["policyName"] == name.as_str())
                .unwrap_or_else(|| {
                    panic!("{name} has no binding: a policy without one does nothing")
                });
            let bound = &binding["spec"];
            assert_eq!(bound["validationActions"], json!(["Deny"]));
            let resources = &bound["matchResources"];
            assert_eq!(
                resources["namespaceSelector"],
                json!({"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}})
            );
            assert!(resources["objectSelector"]["matchExpressions"].is_null());
            let spec = &policy["spec"];
            assert_eq!(spec["failurePolicy"], "Fail");
            let param = match &bound["paramRef"] {
                Value::Null => None,
                reference => {
                    assert_eq!(
                        spec["paramKind"],
                        json!({"apiVersion": "batch/v1", "kind": "CronJob"})
                    );
                    assert_eq!(reference["parameterNotFoundAction"], "Deny");
                    Some((
                        reference["namespace"].as_str().unwrap().to_owned(),
                        reference["name"].as_str().unwrap().to_owned(),
                    ))
                }
            };
            let list = |key: &str| spec[key].as_array().cloned().unwrap_or_default();
            Policy {
                binding: binding["metadata"]["name"].as_str().unwrap().to_owned(),
                rules: spec["matchConstraints"]["resourceRules"]
                    .as_array()
                    .expect("matchConstraints.resourceRules")
                    .iter()
                    .map(|r| Rule {
                        groups: strings(&r["apiGroups"]),
                        resources: strings(&r["resources"]),
                        operations: strings(&r["operations"]),
                    })
                    .collect(),
                selector: serde_json::from_value(
                    resources["objectSelector"]["matchLabels"].clone(),
                )
                .unwrap_or_default(),
                param,
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
                        assert!(
                            v["reason"].is_null(),
                            "a denial is 422 Invalid, the default"
                        );
                        let message = v["message"].as_str().unwrap_or_default().to_owned();
                        let text = v["expression"].as_str().unwrap().to_owned();
                        (message, text, compile(&v["expression"]))
                    })
                    .collect(),
                name,
            }
        })
        .collect()
}

/// Whether `selector` selects `object`'s labels (for an update, either version's).
fn selects(selector: &BTreeMap<String, String>, a: &Admission) -> bool {
    [&a.object, &a.old_object].iter().any(|o| {
        !o.is_null()
            && selector
                .iter()
                .all(|(k, v)| o["metadata"]["labels"][k].as_str() == Some(v.as_str()))
    })
}

impl Policy {
    /// This policy's answer to the write `a` by `user`, with the CronJob `params` finds.
    fn judge(
        &self,
        a: &Admission,
        user: &str,
        params: &dyn Fn(&str, &str) -> Option<Value>,
    ) -> Option<String> {
        let matched = self.rules.iter().any(|r| {
            r.groups.contains(&a.group)
                && r.resources.contains(&a.resource)
                && r.operations.iter().any(|o| o == a.operation)
        });
        if !matched || a.namespace != NAMESPACE || !selects(&self.selector, a) {
            return None;
        }
        let param = match &self.param {
            None => Value::Null,
            Some((namespace, name)) => match params(namespace, name) {
                Some(cronjob) => cronjob,
                None => {
                    return Some(
                        "failed to configure binding: no params found for policy binding with \
                         `Deny` parameterNotFoundAction"
                            .into(),
                    );
                }
            },
        };
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
            ("params", param),
        ] {
            context.add_variable_from_value(name, cel::to_value(value).unwrap());
        }
        for condition in &self.conditions {
            match condition.execute(&context) {
                Ok(cel::Value::Bool(true)) => {}
                Ok(cel::Value::Bool(false)) => return None,
                other => return Some(format!("a match condition erred: {other:?}")),
            }
        }
        let mut variables = serde_json::Map::new();
        for (name, program) in &self.variables {
            context.add_variable_from_value("variables", cel::to_value(&variables).unwrap());
            if let Ok(value) = program.execute(&context) {
                variables.insert(name.clone(), value.json().unwrap());
            }
        }
        context.add_variable_from_value("variables", cel::to_value(&variables).unwrap());
        for (message, text, program) in &self.validations {
            match program.execute(&context) {
                Ok(cel::Value::Bool(true)) => {}
                Ok(cel::Value::Bool(false)) => return Some(message.clone()),
                // The API server's words (dispatcher's validator: "expression '%v' resulted in
                // error: %v").
                other => {
                    return Some(format!("expression '{text}' resulted in error: {other:?}"));
                }
            }
        }
        None
    }
}

/// Every policy's denial of the write `a` by `user` (the API server answers the first).
pub(crate) fn denials(
    policies: &[Policy],
    a: &Admission,
    user: &str,
    params: &dyn Fn(&str, &str) -> Option<Value>,
) -> Vec<Denial> {
    policies
        .iter()
        .filter_map(|p| {
            p.judge(a, user, params).map(|message| Denial {
                policy: p.name.clone(),
                binding: p.binding.clone(),
                message,
            })
        })
        .collect()
}
