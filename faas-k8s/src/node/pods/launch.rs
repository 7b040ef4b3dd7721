//! Turns a Pod into the resolved [`PodLaunch`] a backend runs.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Container, Pod, Service};

use super::super::backend::MountLaunch;
use super::super::backend::{Capacity, ContainerLaunch, ContainerResources, PodKey, PodLaunch};
use super::super::env::{ConfigError, ConfigSource, EnvContext, resolve_env};
use super::super::expand::expand_all;
use super::super::hosts::{hostname, hosts_file};
use super::super::quantity::parse_milli;
use super::super::service_env::{service_env, visible_services};
use super::super::volumes::resolve_volumes;

/// Where a container writes its termination message unless its spec says otherwise.
const DEFAULT_TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";

/// The key of a pod object.
pub(crate) fn pod_key(pod: &Pod) -> PodKey {
    PodKey::new(
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
        pod.metadata.uid.clone().unwrap_or_default(),
    )
}

/// Resolves every container of `pod`: environment (with the variables of `services`, the
/// cluster's Services), `$(VAR)` in command and args, ports; and, with `volumes`, the files of its
/// volumes.
pub(crate) async fn build_launch(
    pod: &Pod,
    pod_ip: Option<IpAddr>,
    host_ip: IpAddr,
    allocatable: &Capacity,
    services: &[&Service],
    source: &dyn ConfigSource,
    volumes: bool,
) -> Result<PodLaunch, ConfigError> {
    let spec = pod
        .spec
        .as_ref()
        .ok_or_else(|| ConfigError("the pod has no spec".to_owned()))?;
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let links = spec.enable_service_links != Some(false);
    let service_env = service_env(&visible_services(
        services.iter().copied(),
        namespace,
        links,
    ));
    let ctx = EnvContext {
        pod,
        pod_ip,
        host_ip,
        allocatable,
        service_env: &service_env,
    };
    let mut containers = Vec::with_capacity(spec.containers.len());
    for container in &spec.containers {
        containers.push(container_launch(&ctx, container, source).await?);
    }
    let mut init_containers = Vec::new();
    for container in spec.init_containers.iter().flatten() {
        init_containers.push(container_launch(&ctx, container, source).await?);
    }
    let volumes = if volumes {
        resolve_volumes(&ctx, source).await?
    } else {
        Vec::new()
    };
    Ok(PodLaunch::new(pod_key(pod), containers)
        .with_volumes(volumes)
        .with_fs_group(fs_group(pod))
        .with_init_containers(init_containers)
        .with_host_identity(hostname(pod), hosts_file(pod, pod_ip))
        .with_labels(pod.metadata.labels.clone().unwrap_or_default())
        .with_annotations(pod.metadata.annotations.clone().unwrap_or_default()))
}

/// Resolves the pod's volumes again (to bring a running pod's files up to date).
pub(crate) async fn build_volumes(
    pod: &Pod,
    pod_ip: Option<IpAddr>,
    host_ip: IpAddr,
    allocatable: &Capacity,
    source: &dyn ConfigSource,
) -> Result<PodLaunch, ConfigError> {
    let ctx = EnvContext {
        pod,
        pod_ip,
        host_ip,
        allocatable,
        service_env: &[],
    };
    let volumes = resolve_volumes(&ctx, source).await?;
    Ok(PodLaunch::new(pod_key(pod), Vec::new())
        .with_volumes(volumes)
        .with_fs_group(fs_group(pod))
        .with_labels(pod.metadata.labels.clone().unwrap_or_default())
        .with_annotations(pod.metadata.annotations.clone().unwrap_or_default()))
}

/// Resolves one container: environment, `$(VAR)` in command and args, ports, termination message.
async fn container_launch(
    ctx: &EnvContext<'_>,
    container: &Container,
    source: &dyn ConfigSource,
) -> Result<ContainerLaunch, ConfigError> {
    let env = resolve_env(ctx, container, source).await?;
    let command = expand_all(container.command.as_deref().unwrap_or_default(), &env);
    let args = expand_all(container.args.as_deref().unwrap_or_default(), &env);
    let ports = container
        .ports
        .iter()
        .flatten()
        .filter_map(|p| u16::try_from(p.container_port).ok())
        .collect();
    // The container's security context over the pod's, field by field, as a kubelet merges them.
    let pod_context = ctx
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.as_ref());
    let own = container.security_context.as_ref();
    let id = |own: Option<i64>, pod: Option<i64>| own.or(pod).and_then(|v| u32::try_from(v).ok());
    let user = id(
        own.and_then(|c| c.run_as_user),
        pod_context.and_then(|c| c.run_as_user),
    );
    let group = id(
        own.and_then(|c| c.run_as_group),
        pod_context.and_then(|c| c.run_as_group),
    );
    // fsGroup first, then supplementalGroups, as the kubelet gives them.
    let groups = fs_group(ctx.pod)
        .into_iter()
        .chain(
            pod_context
                .and_then(|c| c.supplemental_groups.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|g| u32::try_from(*g).ok()),
        )
        .fold(Vec::new(), |mut groups, g| {
            if !groups.contains(&g) {
                groups.push(g);
            }
            groups
        });
    Ok(
        ContainerLaunch::new(&container.name, container.image.clone().unwrap_or_default())
            .with_identity(user, group)
            .with_supplemental_groups(groups)
            .with_resources(container_resources(container))
            .with_sidecar(container.restart_policy.as_deref() == Some("Always"))
            .with_stdin(
                container.stdin == Some(true),
                container.stdin_once == Some(true),
            )
            .with_tty(container.tty == Some(true))
            .with_command(command)
            .with_args(args)
            .with_env(env)
            .with_working_dir(container.working_dir.clone())
            .with_ports(ports)
            .with_termination_message(
                Some(
                    container
                        .termination_message_path
                        .clone()
                        .unwrap_or_else(|| DEFAULT_TERMINATION_MESSAGE_PATH.to_owned()),
                ),
                container.termination_message_policy.as_deref() == Some("FallbackToLogsOnError"),
            )
            .with_mounts(
                container
                    .volume_mounts
                    .iter()
                    .flatten()
                    .map(|m| {
                        MountLaunch::new(&m.name, &m.mount_path)
                            .with_sub_path(m.sub_path.clone().filter(|s| !s.is_empty()))
                            .read_only(m.read_only == Some(true))
                    })
                    .collect(),
            ),
    )
}

/// The pod's `securityContext.fsGroup`.
fn fs_group(pod: &Pod) -> Option<u32> {
    let context = pod.spec.as_ref()?.security_context.as_ref()?;
    u32::try_from(context.fs_group?).ok()
}

/// The container's CPU and memory requests and limits in plain units (a quantity that does not
/// parse, which the API server never stores, counts as unset).
fn container_resources(container: &Container) -> ContainerResources {
    let resources = container.resources.as_ref();
    let read = |limits: bool, name: &str| {
        let set = resources.and_then(|r| {
            if limits {
                r.limits.as_ref()
            } else {
                r.requests.as_ref()
            }
        });
        let milli = parse_milli(&set?.get(name)?.0)?;
        u64::try_from(milli).ok()
    };
    ContainerResources::default()
        .with_memory_limit(read(true, "memory").map(|milli| milli.div_ceil(1000)))
        .with_cpu(read(false, "cpu"), read(true, "cpu"))
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVar, PodSpec, Secret};
    use kube::api::ObjectMeta;

    use super::*;

    struct Empty;

    #[async_trait]
    impl ConfigSource for Empty {
        async fn config_map(&self, _: &str, _: &str) -> Result<Option<ConfigMap>, String> {
            Ok(None)
        }
        async fn secret(&self, _: &str, _: &str) -> Result<Option<Secret>, String> {
            Ok(None)
        }
    }

    #[tokio::test]
    async fn command_and_args_are_expanded_against_the_resolved_env() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                uid: Some("u".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "app".into(),
                    image: Some("local/app".into()),
                    command: Some(vec!["serve".into()]),
                    args: Some(vec![
                        "--port=$(PORT)".into(),
                        "$(UNSET)".into(),
                        "$$(PORT)".into(),
                    ]),
                    env: Some(vec![EnvVar {
                        name: "PORT".into(),
                        value: Some("8080".into()),
                        value_from: None,
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: None,
        };
        let launch = build_launch(
            &pod,
            None,
            "127.0.0.1".parse().unwrap(),
            &Capacity::default(),
            &[],
            &Empty,
            true,
        )
        .await
        .unwrap();
        assert_eq!(launch.key, PodKey::new("ns", "p", "u"));
        let c = &launch.containers[0];
        assert_eq!(c.command, ["serve"]);
        assert_eq!(c.args, ["--port=8080", "$(UNSET)", "$(PORT)"]);
        assert_eq!(c.env, [("PORT".to_owned(), "8080".to_owned())]);
    }
}
