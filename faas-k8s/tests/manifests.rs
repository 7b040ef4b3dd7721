//! What a function binary prints for `--manifests` is a valid `Function` resource.

use std::time::Duration;

use faas_core::{FunctionDefinition, InvocationPolicy, Registry, ScalingHints, TriggerSpec};
use faas_k8s::function::{Function, FunctionTrigger};
use faas_triggers::manifests::{ManifestRequest, function_manifests, render};

fn registry() -> Registry {
    Registry::from([
        FunctionDefinition::from_handler("hello", |name: String| async move {
            format!("hello, {name}")
        })
        .with_trigger(TriggerSpec::http("/hello"))
        .with_trigger(TriggerSpec::queue("nats", "greetings"))
        .with_policy(InvocationPolicy::default().with_timeout(Duration::from_secs(5)))
        .with_scaling(
            ScalingHints::default()
                .with_min_replicas(0)
                .with_max_replicas(3),
        ),
        FunctionDefinition::from_handler("tick", || async {})
            .with_trigger(TriggerSpec::cron("0 */5 * * * *")),
    ])
}

#[test]
fn manifests_deserialize_into_functions() {
    let request =
        ManifestRequest::from_args(["fn", "--manifests", "--namespace", "apps"].map(String::from))
            .expect("asked for manifests");
    let manifests = function_manifests(&registry(), &request);
    let functions: Vec<Function> = manifests
        .into_iter()
        .map(|value| serde_json::from_value(value).expect("a Function"))
        .collect();
    let hello = &functions[0];
    assert_eq!(hello.metadata.name.as_deref(), Some("hello"));
    assert_eq!(hello.metadata.namespace.as_deref(), Some("apps"));
    assert_eq!(hello.spec.image, "faas.dev/function/hello");
    assert_eq!(
        hello.spec.triggers,
        [
            FunctionTrigger::http("/hello"),
            FunctionTrigger::queue("nats", "greetings")
        ]
    );
    let deadline = hello
        .spec
        .policy
        .as_ref()
        .and_then(|p| p.deadline)
        .expect("a deadline");
    assert_eq!(Duration::from(deadline), Duration::from_secs(5));
    let scaling = hello.spec.scaling.as_ref().expect("scaling");
    assert_eq!((scaling.min, scaling.max), (Some(0), Some(3)));
    assert_eq!(
        functions[1].spec.triggers,
        [FunctionTrigger::cron("0 */5 * * * *")]
    );
}

#[test]
fn the_printed_stream_reads_back_as_yaml() {
    let text = render(&function_manifests(
        &registry(),
        &ManifestRequest::default(),
    ));
    let functions: Vec<Function> = serde_saphyr::from_multiple(&text).expect("a YAML stream");
    assert_eq!(functions.len(), 2);
    assert_eq!(functions[1].metadata.name.as_deref(), Some("tick"));
}
