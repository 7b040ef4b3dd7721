//! The objects a `Function` becomes: a Deployment and a Service, both named after it.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvFromSource, EnvVar, EnvVarSource, HTTPGetAction,
    ObjectFieldSelector, PodSpec, PodTemplateSpec, Probe, SecretEnvSource, Service, ServicePort,
    ServiceSpec, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource as _, ResourceExt as _};

use crate::function::{FUNCTION_LABEL, FUNCTION_PORT, FUNCTION_PORT_NAME, Function, Placement};
use crate::node::PROVIDER_TAINT_KEY;

/// The label that says which program manages an object.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`] on the objects the operator writes.
pub const MANAGED_BY: &str = "faas-operator";
/// The annotation on a Function's Deployment and Service that names the Function generation
/// they were written for: a spec change makes them differ from what the operator would write,
/// so the operator applies them again (and server-side apply removes what the Function no
/// longer sets, which a comparison that tolerates extra fields cannot see).
pub const FUNCTION_GENERATION_ANNOTATION: &str = "faas.rs/function-generation";
/// The name of the function's container in its pods.
pub const CONTAINER_NAME: &str = "function";
/// The label a virtual node carries, selected by functions placed on it.
pub const VIRTUAL_NODE_SELECTOR: (&str, &str) = ("type", "virtual-kubelet");
/// Seconds a pod is given beyond the drain timeout before it is killed.
const TERMINATION_MARGIN_SECS: i64 = 5;

/// The labels on a function's Deployment, Service and pods' selector.
pub fn selector_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(FUNCTION_LABEL.to_owned(), name.to_owned())])
}

fn object_labels(name: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(name);
    labels.insert(MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned());
    labels
}

fn owner_reference(function: &Function) -> Option<OwnerReference> {
    function.controller_owner_ref(&())
}

fn metadata(function: &Function) -> ObjectMeta {
    ObjectMeta {
        name: function.metadata.name.clone(),
        namespace: function.metadata.namespace.clone(),
        labels: Some(object_labels(&function.name_unchecked())),
        annotations: function.metadata.generation.map(|generation| {
            BTreeMap::from([(
                FUNCTION_GENERATION_ANNOTATION.to_owned(),
                generation.to_string(),
            )])
        }),
        owner_references: owner_reference(function).map(|owner| vec![owner]),
        ..ObjectMeta::default()
    }
}

/// Whole seconds, rounded up.
fn ceil_secs(duration: std::time::Duration) -> i64 {
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    i64::try_from(secs).unwrap_or(i64::MAX)
}

fn env(function: &Function) -> Vec<EnvVar> {
    let spec = &function.spec;
    let mut env = vec![EnvVar {
        name: faas_triggers::ENV_POD_IP.to_owned(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "status.podIP".to_owned(),
                api_version: None,
            }),
            ..EnvVarSource::default()
        }),
    }];
    let literal = |name: &str, value: String| EnvVar {
        name: name.to_owned(),
        value: Some(value),
        value_from: None,
    };
    env.push(literal(faas_triggers::ENV_PORT, FUNCTION_PORT.to_string()));
    env.push(literal(
        faas_triggers::ENV_DRAIN_TIMEOUT,
        format!("{}ms", spec.drain_timeout().as_millis()),
    ));
    if let Some(deadline) = spec.policy.as_ref().and_then(|policy| policy.deadline) {
        let deadline = std::time::Duration::from(deadline);
        env.push(literal(
            faas_triggers::ENV_TIMEOUT,
            format!("{}ms", deadline.as_millis()),
        ));
    }
    // The function's own variables come last, so they can override the defaults above.
    env.extend(
        spec.env
            .iter()
            .filter(|var| var.name != faas_triggers::ENV_POD_IP)
            .cloned(),
    );
    // A variable the user sets replaces the operator's default of the same name.
    let mut seen = std::collections::BTreeSet::new();
    let mut deduplicated: Vec<EnvVar> = env
        .into_iter()
        .rev()
        .filter(|var| seen.insert(var.name.clone()))
        .collect();
    deduplicated.reverse();
    deduplicated
}

fn env_from(function: &Function) -> Option<Vec<EnvFromSource>> {
    let spec = &function.spec;
    let list: Vec<EnvFromSource> = spec
        .env_from
        .iter()
        .cloned()
        .chain(spec.secrets.iter().map(|secret| EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: secret.clone(),
                optional: None,
            }),
            ..EnvFromSource::default()
        }))
        .collect();
    (!list.is_empty()).then_some(list)
}

fn probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String(FUNCTION_PORT_NAME.to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

fn container(function: &Function) -> Container {
    let spec = &function.spec;
    let mut ports = vec![ContainerPort {
        name: Some(FUNCTION_PORT_NAME.to_owned()),
        container_port: FUNCTION_PORT,
        protocol: Some("TCP".to_owned()),
        ..ContainerPort::default()
    }];
    ports.extend(
        spec.ports
            .iter()
            .filter(|port| port.container_port != FUNCTION_PORT)
            .cloned(),
    );
    let non_empty = |list: &Vec<String>| (!list.is_empty()).then(|| list.clone());
    Container {
        name: CONTAINER_NAME.to_owned(),
        image: Some(spec.image.clone()),
        command: non_empty(&spec.command),
        args: non_empty(&spec.args),
        env: Some(env(function)),
        env_from: env_from(function),
        ports: Some(ports),
        resources: spec.resources.clone(),
        readiness_probe: Some(probe(faas_triggers::http::READY_PATH, 1, 3)),
        liveness_probe: Some(probe(faas_triggers::http::HEALTH_PATH, 10, 3)),
        ..Container::default()
    }
}

fn pod_template(function: &Function) -> PodTemplateSpec {
    let spec = &function.spec;
    let name = function.name_unchecked();
    let mut labels = spec.pod_labels.clone();
    labels.extend(selector_labels(&name));
    let node_selector = match spec.placement() {
        Placement::VirtualNode => Some(BTreeMap::from([(
            VIRTUAL_NODE_SELECTOR.0.to_owned(),
            VIRTUAL_NODE_SELECTOR.1.to_owned(),
        )])),
        Placement::Any => None,
    };
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels),
            annotations: (!spec.pod_annotations.is_empty()).then(|| spec.pod_annotations.clone()),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container(function)],
            termination_grace_period_seconds: Some(
                ceil_secs(spec.drain_timeout()) + TERMINATION_MARGIN_SECS,
            ),
            tolerations: Some(vec![Toleration {
                key: Some(PROVIDER_TAINT_KEY.to_owned()),
                operator: Some("Exists".to_owned()),
                effect: Some("NoSchedule".to_owned()),
                ..Toleration::default()
            }]),
            node_selector,
            ..PodSpec::default()
        }),
    }
}

/// The Deployment `function` asks for: its replicas, a rolling update that never drops below
/// the wanted replicas, and one pod template running the function runtime.
pub fn deployment(function: &Function) -> Deployment {
    let name = function.name_unchecked();
    Deployment {
        metadata: metadata(function),
        spec: DeploymentSpec {
            replicas: Some(function.spec.desired_replicas()),
            selector: LabelSelector {
                match_labels: Some(selector_labels(&name)),
                match_expressions: None,
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: pod_template(function),
            ..DeploymentSpec::default()
        },
        status: None,
    }
}

/// The Service `function` asks for: port 8080 named `http` to the pods' `http` port.
pub fn service(function: &Function) -> Service {
    let name = function.name_unchecked();
    Service {
        metadata: metadata(function),
        spec: Some(ServiceSpec {
            selector: Some(selector_labels(&name)),
            ports: Some(vec![ServicePort {
                name: Some(FUNCTION_PORT_NAME.to_owned()),
                port: FUNCTION_PORT,
                target_port: Some(IntOrString::String(FUNCTION_PORT_NAME.to_owned())),
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// Where a function is served inside the cluster.
pub fn function_url(function: &Function) -> String {
    format!(
        "http://{}.{}.svc:{FUNCTION_PORT}/",
        function.name_unchecked(),
        function.metadata.namespace.as_deref().unwrap_or("default")
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::function::{FunctionPolicy, FunctionSpec};

    fn function(spec: FunctionSpec) -> Function {
        let mut function = Function::new("hello", spec);
        function.metadata.namespace = Some("team".into());
        function.metadata.uid = Some("u-1".into());
        function
    }

    #[test]
    fn the_deployment_runs_the_function_runtime() {
        let function = function(
            FunctionSpec::new("faas.dev/function/hello")
                .with_env("GREETING", "hi")
                .with_env("PORT", "8080")
                .with_secret("creds")
                .with_policy(FunctionPolicy::default().with_deadline(Duration::from_secs(3)))
                .with_drain_timeout(Duration::from_millis(2500))
                .with_placement(Placement::VirtualNode)
                .with_pod_label("team", "a"),
        );
        let mut function = function;
        function.metadata.generation = Some(4);
        let deployment = deployment(&function);
        assert_eq!(
            deployment
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(FUNCTION_GENERATION_ANNOTATION))
                .map(String::as_str),
            Some("4"),
            "the objects name the generation they were written for"
        );
        let owner = &deployment.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(owner.kind, "Function");
        assert_eq!(owner.controller, Some(true));
        let spec = deployment.spec;
        assert_eq!(spec.replicas, Some(1));
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.termination_grace_period_seconds, Some(8));
        assert_eq!(
            pod.node_selector.unwrap()["type"],
            "virtual-kubelet",
            "placed on the virtual node"
        );
        assert_eq!(
            pod.tolerations.unwrap()[0].key.as_deref(),
            Some(PROVIDER_TAINT_KEY)
        );
        let labels = spec.template.metadata.unwrap().labels.unwrap();
        assert_eq!(labels[FUNCTION_LABEL], "hello");
        assert_eq!(labels["team"], "a");
        let container = &pod.containers[0];
        let env = container.env.as_ref().unwrap();
        let names: Vec<&str> = env.iter().map(|var| var.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "POD_IP",
                "FAAS_DRAIN_TIMEOUT",
                "FAAS_TIMEOUT",
                "GREETING",
                "PORT"
            ]
        );
        assert_eq!(
            env[0]
                .value_from
                .as_ref()
                .unwrap()
                .field_ref
                .as_ref()
                .unwrap()
                .field_path,
            "status.podIP"
        );
        assert_eq!(env[1].value.as_deref(), Some("2500ms"));
        assert_eq!(env[2].value.as_deref(), Some("3000ms"));
        assert_eq!(
            container.env_from.as_ref().unwrap()[0]
                .secret_ref
                .as_ref()
                .unwrap()
                .name,
            "creds"
        );
        let readiness = container.readiness_probe.as_ref().unwrap();
        assert_eq!(
            readiness.http_get.as_ref().unwrap().path.as_deref(),
            Some("/_/ready")
        );
        let liveness = container.liveness_probe.as_ref().unwrap();
        assert_eq!(
            liveness.http_get.as_ref().unwrap().path.as_deref(),
            Some("/_/health")
        );
    }

    #[test]
    fn the_service_selects_the_pods_on_port_http() {
        let service = service(&function(FunctionSpec::new("img")));
        let spec = service.spec.unwrap();
        assert_eq!(spec.selector.unwrap()[FUNCTION_LABEL], "hello");
        let port = &spec.ports.unwrap()[0];
        assert_eq!((port.name.as_deref(), port.port), (Some("http"), 8080));
        assert_eq!(
            function_url(&function(FunctionSpec::new("img"))),
            "http://hello.team.svc:8080/"
        );
    }
}
