//! The `Function` custom resource: what a person (or a function binary's `--manifests`) writes to
//! have a function served on the cluster.
//!
//! `Function` lives in the API group [`GROUP`] (`faas.rs`), version [`VERSION`] (`v1alpha1`),
//! plural `functions`, short name `fn`, and is namespaced. Its [`FunctionSpec`] says what runs
//! (image, command, environment, secrets, resources), what starts it ([`FunctionTrigger`]s), how
//! it is called ([`FunctionPolicy`]), how it scales ([`FunctionScaling`]) and where its pods go
//! ([`Placement`]); its [`FunctionStatus`] carries the `Ready` condition with a reason,
//! `observedGeneration`, replicas and the URL it is served at.
//!
//! The generated CustomResourceDefinition ([`Function::crd`](kube::CustomResourceExt::crd))
//! carries printer columns for `kubectl get functions`, the `status` and `scale` subresources
//! (`spec.replicas`, `status.replicas`, `status.selector`), and validation the API server
//! applies itself: OpenAPI bounds and CEL rules refuse negative replicas, `scaling.min` above
//! `scaling.max`, malformed durations and HTTP paths without a leading `/`, each with a message
//! a person understands.
//!
//! ```
//! use faas_k8s::function::{Function, FunctionScaling, FunctionSpec, FunctionTrigger, Placement};
//! use kube::CustomResourceExt as _;
//!
//! let function = Function::new(
//!     "hello",
//!     FunctionSpec::new("faas.dev/function/hello")
//!         .with_trigger(FunctionTrigger::http("/hello"))
//!         .with_scaling(FunctionScaling::default().with_min(1).with_max(5))
//!         .with_placement(Placement::VirtualNode),
//! );
//! assert_eq!(serde_json::to_value(&function).unwrap()["apiVersion"], "faas.rs/v1alpha1");
//! assert_eq!(Function::crd().metadata.name.as_deref(), Some("functions.faas.rs"));
//! ```

mod spec;
mod status;
mod trigger;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use spec::{
    DEFAULT_DRAIN_TIMEOUT, FUNCTION_PORT, FUNCTION_PORT_NAME, FunctionPolicy, FunctionScaling,
    Placement,
};
pub use status::{
    FunctionStatus, READY_CONDITION, ReadyReason, function_selector, ready_condition,
};
pub use trigger::{
    AmbiguousTrigger, CronTrigger, CustomTrigger, FunctionTrigger, HttpTrigger, QueueTrigger,
};

/// The API group of the project's resources.
pub const GROUP: &str = "faas.rs";
/// The version of the `Function` resource.
pub const VERSION: &str = "v1alpha1";
/// The label on a function's pods (and its Deployment and Service) naming the function.
pub const FUNCTION_LABEL: &str = "faas.rs/function";

/// What a `Function` asks for; see the [module](self) documentation.
// Several printer columns share a type, which the lint takes for a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "faas.rs",
    version = "v1alpha1",
    kind = "Function",
    plural = "functions",
    shortname = "fn",
    category = "faas",
    namespaced,
    status = "FunctionStatus",
    derive = "PartialEq",
    doc = "A function served on the cluster: a Deployment and a Service kept as the spec says.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the function serves calls"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        description = "Why the function is or is not ready"
    ),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        json_path = ".status.replicas",
        description = "Replicas wanted"
    ),
    printcolumn(
        name = "Available",
        type_ = "integer",
        json_path = ".status.readyReplicas",
        description = "Replicas ready to serve"
    ),
    printcolumn(
        name = "Image",
        type_ = "string",
        json_path = ".spec.image",
        priority = 1
    ),
    printcolumn(
        name = "URL",
        type_ = "string",
        json_path = ".status.url",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FunctionSpec {
    /// The container image that serves the function (for the virtual node's function backend,
    /// `faas.dev/function/<name>`).
    #[schemars(length(min = 1))]
    pub image: String,
    /// The command, replacing the image's entrypoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// The arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment variables, as a container takes them (values, or references to ConfigMaps,
    /// Secrets and the downward API).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<k8s_openapi::api::core::v1::EnvVar>,
    /// Whole ConfigMaps or Secrets as environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<k8s_openapi::api::core::v1::EnvFromSource>,
    /// Names of Secrets in the function's namespace whose keys become environment variables.
    /// A Secret that does not exist keeps the function from becoming Ready (reason
    /// `SecretMissing`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Compute resources of the function's container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<k8s_openapi::api::core::v1::ResourceRequirements>,
    /// Ports besides the function's own (8080, named `http`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<k8s_openapi::api::core::v1::ContainerPort>,
    /// What starts the function (at most 64 triggers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub triggers: Vec<FunctionTrigger>,
    /// How the function is called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<FunctionPolicy>,
    /// The replicas wanted; written by `kubectl scale` and the autoscaler through the `scale`
    /// subresource. When absent, `scaling.min` (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
    /// How the function scales.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<FunctionScaling>,
    /// Where the function's pods run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// How long a stopping replica waits for calls in flight (a Go-style duration such as
    /// `30s`); the pod's termination grace period is a little longer. 30 s when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": spec::DURATION_RULE,
        "message": "drainTimeout must be a duration such as 30s, 1m30s or 500ms"
    }]))]
    pub drain_timeout: Option<kube::core::Duration>,
    /// Labels for the function's pods.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub pod_labels: std::collections::BTreeMap<String, String>,
    /// Annotations for the function's pods.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub pod_annotations: std::collections::BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt as _;
    use serde_json::{Value, json};

    use super::*;

    fn crd_json() -> Value {
        serde_json::to_value(Function::crd()).unwrap()
    }

    /// Every `x-kubernetes-validations` rule in the schema, with its path.
    fn rules(value: &Value, path: &str, found: &mut Vec<(String, String, String)>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::Array(list)) = map.get("x-kubernetes-validations") {
                    for rule in list {
                        found.push((
                            path.to_owned(),
                            rule["rule"].as_str().unwrap().to_owned(),
                            rule["message"].as_str().unwrap().to_owned(),
                        ));
                    }
                }
                for (key, child) in map {
                    rules(child, &format!("{path}/{key}"), found);
                }
            }
            Value::Array(list) => list.iter().for_each(|child| rules(child, path, found)),
            _ => {}
        }
    }

    #[test]
    fn the_crd_names_the_resource_as_agreed() {
        let crd = crd_json();
        assert_eq!(crd["metadata"]["name"], "functions.faas.rs");
        assert_eq!(crd["spec"]["group"], GROUP);
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        assert_eq!(crd["spec"]["names"]["kind"], "Function");
        assert_eq!(crd["spec"]["names"]["plural"], "functions");
        assert_eq!(crd["spec"]["names"]["shortNames"], json!(["fn"]));
        let version = &crd["spec"]["versions"][0];
        assert_eq!(version["name"], VERSION);
        assert_eq!(version["subresources"]["status"], json!({}));
        assert_eq!(
            version["subresources"]["scale"],
            json!({
                "specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.replicas",
                "labelSelectorPath": ".status.selector"
            })
        );
        let columns: Vec<&str> = version["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|column| column["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            columns,
            [
                "Ready",
                "Reason",
                "Replicas",
                "Available",
                "Image",
                "URL",
                "Age"
            ]
        );
    }

    #[test]
    fn the_schema_refuses_what_the_issue_lists() {
        let crd = crd_json();
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(
            spec["properties"]["replicas"]["minimum"].as_f64(),
            Some(0.0)
        );
        assert_eq!(
            spec["properties"]["scaling"]["properties"]["min"]["minimum"].as_f64(),
            Some(0.0)
        );
        assert_eq!(spec["required"], json!(["image"]));
        let mut found = Vec::new();
        rules(spec, "spec", &mut found);
        let messages: Vec<&str> = found
            .iter()
            .map(|(_, _, message)| message.as_str())
            .collect();
        for expected in [
            "scaling.min must not be greater than scaling.max",
            "scaling.scaleToZeroGrace must be a duration such as 30s, 1m30s or 500ms",
            "policy.deadline must be a duration such as 10s, 1m30s or 500ms",
            "policy.backoff must be a duration such as 500ms, 2s or 1m",
            "drainTimeout must be a duration such as 30s, 1m30s or 500ms",
            "an HTTP trigger's path must start with /, for example /hello",
            "a trigger sets exactly one of http, cron, queue or custom",
        ] {
            assert!(
                messages.contains(&expected),
                "no rule says {expected:?}: {found:?}"
            );
        }
        // Placement is a plain string enum: structural, no oneOf.
        assert_eq!(
            spec["properties"]["placement"]["enum"],
            json!(["Any", "VirtualNode"])
        );
    }

    #[test]
    fn the_duration_rule_accepts_what_the_operator_parses() {
        // The CEL rule's regular expression, checked against the parser the operator uses.
        let pattern = spec::DURATION_RULE
            .strip_prefix("self.matches('")
            .and_then(|rest| rest.strip_suffix("')"))
            .unwrap();
        assert!(pattern.starts_with('^') && pattern.ends_with('$'));
        for good in ["30s", "1m30s", "500ms", "1h", "1.5s", "2h45m"] {
            let parsed: kube::core::Duration = good.parse().unwrap();
            assert!(!parsed.is_negative(), "{good}");
        }
        for bad in ["soon", "30", "-1s", "1 m"] {
            let parsed = bad.parse::<kube::core::Duration>();
            assert!(parsed.is_err() || bad.starts_with('-'), "{bad}");
        }
    }

    #[test]
    fn a_function_round_trips_through_json() {
        let function = Function::new(
            "f",
            FunctionSpec::new("img")
                .with_env("A", "1")
                .with_trigger(FunctionTrigger::cron("@daily"))
                .with_policy(
                    FunctionPolicy::default()
                        .with_deadline(std::time::Duration::from_secs(10))
                        .with_max_in_flight(4),
                )
                .with_scaling(
                    FunctionScaling::default()
                        .with_min(0)
                        .with_max(3)
                        .with_scale_to_zero_grace(std::time::Duration::from_secs(30)),
                )
                .with_drain_timeout(std::time::Duration::from_secs(5)),
        );
        let value = serde_json::to_value(&function).unwrap();
        assert_eq!(value["spec"]["policy"]["deadline"], "10s");
        assert_eq!(value["spec"]["scaling"]["scaleToZeroGrace"], "30s");
        assert_eq!(value["spec"]["drainTimeout"], "5s");
        let back: Function = serde_json::from_value(value).unwrap();
        assert_eq!(back, function);
        assert_eq!(back.spec.desired_replicas(), 1);
        assert_eq!(back.spec.drain_timeout(), std::time::Duration::from_secs(5));
        assert_eq!(back.spec.placement(), Placement::Any);
    }
}
