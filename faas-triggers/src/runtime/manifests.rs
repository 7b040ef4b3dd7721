//! `my-fn --manifests`: a function binary prints the Function resources its `#[function]`
//! metadata describes, so `my-fn --manifests | kubectl apply -f -` deploys what the code
//! declares.
//!
//! Each registered function becomes one `Function` (`faas.rs/v1alpha1`): its name (made a valid
//! Kubernetes name), its triggers, its invocation policy (deadline, attempts, max in flight),
//! its scaling hints, and `FAAS_FUNCTION` so the pod's `POST /` calls it. The image is
//! `--image <image>` (or `FAAS_IMAGE`), else `faas.dev/function/<name>`, which the virtual
//! node's function backend serves from its registry. `--namespace <ns>` sets the namespace.
//!
//! The output is a YAML stream whose documents are written as JSON (JSON is YAML), which
//! `kubectl apply -f -` and `faasctl deploy -f -` both read.

use std::collections::BTreeMap;
use std::time::Duration;

use faas_core::{Registry, TriggerSpec};
use serde_json::{Value, json};

/// The flag that asks for the manifests.
pub const MANIFESTS_FLAG: &str = "--manifests";
/// The environment variable naming the image when `--image` does not.
pub const ENV_IMAGE: &str = "FAAS_IMAGE";
/// The image prefix the virtual node's function backend serves: `faas.dev/function/<name>`.
pub const FUNCTION_IMAGE_PREFIX: &str = "faas.dev/function/";

/// What `--manifests` was asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManifestRequest {
    /// The image every Function runs; `faas.dev/function/<name>` when absent.
    pub image: Option<String>,
    /// The namespace of every Function; none (the applier's) when absent.
    pub namespace: Option<String>,
}

impl ManifestRequest {
    /// The request in `args` (the program's arguments, its name first), or `None` when they do
    /// not ask for manifests.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Option<Self> {
        let args: Vec<String> = args.into_iter().skip(1).collect();
        if !args.iter().any(|arg| arg == MANIFESTS_FLAG) {
            return None;
        }
        let value = |flag: &str| {
            args.iter().enumerate().find_map(|(index, arg)| {
                arg.strip_prefix(&format!("{flag}="))
                    .map(str::to_owned)
                    .or_else(|| {
                        (arg == flag)
                            .then(|| args.get(index + 1).cloned())
                            .flatten()
                    })
            })
        };
        Some(ManifestRequest {
            image: value("--image").or_else(|| std::env::var(ENV_IMAGE).ok()),
            namespace: value("--namespace"),
        })
    }
}

/// A Kubernetes name for a function name: lower case, `-` for anything else, at most 63
/// characters, starting and ending with a letter or digit.
pub(crate) fn kubernetes_name(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_matches('-');
    let mut name: String = trimmed.chars().take(63).collect();
    while name.ends_with('-') {
        name.pop();
    }
    if name.is_empty() {
        "function".to_owned()
    } else {
        name
    }
}

/// A Go-style duration: whole seconds as `30s`, anything else in milliseconds.
fn go_duration(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis().max(1))
    }
}

fn trigger(spec: &TriggerSpec) -> Value {
    match spec {
        TriggerSpec::Http { path, methods } if methods.is_empty() => {
            json!({"http": {"path": path}})
        }
        TriggerSpec::Http { path, methods } => json!({"http": {"path": path, "methods": methods}}),
        TriggerSpec::Cron {
            schedule,
            timezone: Some(timezone),
        } => {
            json!({"cron": {"schedule": schedule, "timezone": timezone}})
        }
        TriggerSpec::Cron { schedule, .. } => json!({"cron": {"schedule": schedule}}),
        TriggerSpec::Queue { source, subject } => {
            json!({"queue": {"source": source, "subject": subject}})
        }
        TriggerSpec::Custom { name, config } => json!({"custom": {"name": name, "config": config}}),
        other => json!({"custom": {"name": other.kind()}}),
    }
}

/// The Function resources for every function of `registry`, in name order.
pub fn function_manifests(registry: &Registry, request: &ManifestRequest) -> Vec<Value> {
    let mut functions: Vec<_> = registry.iter().collect();
    functions.sort_by(|a, b| a.name().cmp(b.name()));
    functions
        .iter()
        .map(|function| {
            let meta = function.meta();
            let name = kubernetes_name(function.name());
            let image = request
                .image
                .clone()
                .unwrap_or_else(|| format!("{FUNCTION_IMAGE_PREFIX}{}", function.name()));
            let mut spec = serde_json::Map::new();
            spec.insert("image".into(), json!(image));
            spec.insert(
                "env".into(),
                json!([{"name": super::ENV_FUNCTION, "value": function.name()}]),
            );
            if !meta.triggers.is_empty() {
                spec.insert(
                    "triggers".into(),
                    Value::Array(meta.triggers.iter().map(trigger).collect()),
                );
            }
            let policy = &meta.policy;
            let mut policy_json = serde_json::Map::new();
            if let Some(timeout) = policy.timeout() {
                policy_json.insert("deadline".into(), json!(go_duration(timeout)));
            }
            policy_json.insert("maxAttempts".into(), json!(policy.retry().max_attempts));
            if let Some(max_in_flight) = policy.max_in_flight() {
                policy_json.insert("maxInFlight".into(), json!(max_in_flight));
            }
            spec.insert("policy".into(), Value::Object(policy_json));
            let scaling = &meta.scaling;
            let mut scaling_json = serde_json::Map::new();
            scaling_json.insert("min".into(), json!(scaling.min_replicas));
            if let Some(max) = scaling.max_replicas {
                scaling_json.insert("max".into(), json!(max));
            }
            if let Some(target) = scaling.target_concurrency {
                scaling_json.insert("targetConcurrency".into(), json!(target));
            }
            spec.insert("scaling".into(), Value::Object(scaling_json));
            let mut metadata = serde_json::Map::new();
            metadata.insert("name".into(), json!(name));
            if let Some(namespace) = &request.namespace {
                metadata.insert("namespace".into(), json!(namespace));
            }
            let mut annotations = BTreeMap::new();
            if let Some(description) = &meta.description {
                annotations.insert("faas.rs/description", description.clone());
            }
            if !annotations.is_empty() {
                metadata.insert("annotations".into(), json!(annotations));
            }
            json!({
                "apiVersion": "faas.rs/v1alpha1",
                "kind": "Function",
                "metadata": metadata,
                "spec": spec,
            })
        })
        .collect()
}

/// The manifests as a YAML stream of JSON documents.
pub fn render(manifests: &[Value]) -> String {
    let mut text = String::new();
    for manifest in manifests {
        text.push_str("---\n");
        text.push_str(&serde_json::to_string_pretty(manifest).unwrap_or_default());
        text.push('\n');
    }
    text
}

/// Prints the manifests to stdout when the program's arguments ask for them; returns whether
/// they did (the program then has nothing else to do).
pub fn answer_manifests_flag(registry: &Registry) -> bool {
    let Some(request) = ManifestRequest::from_args(std::env::args()) else {
        return false;
    };
    print!("{}", render(&function_manifests(registry, &request)));
    true
}

#[cfg(test)]
mod tests {
    use faas_core::{FunctionDefinition, InvocationPolicy, ScalingHints};

    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_flag_and_its_options_parse() {
        assert_eq!(ManifestRequest::from_args(args(&["fn"])), None);
        let request =
            ManifestRequest::from_args(args(&["fn", "--manifests", "--image", "r/x:1"])).unwrap();
        assert_eq!(request.image.as_deref(), Some("r/x:1"));
        let request =
            ManifestRequest::from_args(args(&["fn", "--namespace=apps", "--manifests"])).unwrap();
        assert_eq!(request.namespace.as_deref(), Some("apps"));
    }

    #[test]
    fn metadata_becomes_the_function_resource() {
        let registry = Registry::from([FunctionDefinition::from_handler(
            "Resize_Image",
            |b: bytes::Bytes| async move { b },
        )
        .with_description("makes images smaller")
        .with_trigger(TriggerSpec::http("/resize"))
        .with_trigger(TriggerSpec::cron("0 0 * * * *"))
        .with_policy(
            InvocationPolicy::default()
                .with_timeout(Duration::from_millis(1500))
                .with_max_in_flight(8),
        )
        .with_scaling(
            ScalingHints::default()
                .with_min_replicas(1)
                .with_max_replicas(4),
        )]);
        let manifests = function_manifests(&registry, &ManifestRequest::default());
        assert_eq!(manifests.len(), 1);
        let function = &manifests[0];
        assert_eq!(function["metadata"]["name"], "resize-image");
        assert_eq!(function["spec"]["image"], "faas.dev/function/Resize_Image");
        assert_eq!(function["spec"]["env"][0]["value"], "Resize_Image");
        assert_eq!(function["spec"]["triggers"][0]["http"]["path"], "/resize");
        assert_eq!(
            function["spec"]["triggers"][1]["cron"]["schedule"],
            "0 0 * * * *"
        );
        assert_eq!(function["spec"]["policy"]["deadline"], "1500ms");
        assert_eq!(function["spec"]["policy"]["maxInFlight"], 8);
        assert_eq!(function["spec"]["scaling"]["max"], 4);
        assert_eq!(
            function["metadata"]["annotations"]["faas.rs/description"],
            "makes images smaller"
        );
        let text = render(&manifests);
        assert!(text.starts_with("---\n{"));
    }

    #[test]
    fn names_become_kubernetes_names() {
        assert_eq!(kubernetes_name("Hello_World"), "hello-world");
        assert_eq!(kubernetes_name("__x__"), "x");
        assert_eq!(kubernetes_name("!!!"), "function");
        assert_eq!(kubernetes_name(&"a".repeat(80)).len(), 63);
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
    }
}
