//! A container's environment, resolved as a kubelet resolves it.
//!
//! `envFrom` sources come first (ConfigMaps and Secrets, each key with its prefix), then every `env`
//! entry in order: a literal value (with `$(VAR)` references to the variables defined before it),
//! a ConfigMap or Secret key, a downward API field (`metadata.name`, `status.podIP`, ...) or a
//! resource field (`limits.cpu`, ...). A later definition of a name replaces the earlier one in
//! place. A missing, non-optional ConfigMap, Secret or key is a [`ConfigError`], which the node
//! reports as the container's `CreateContainerConfigError`.

use std::collections::HashMap;
use std::net::IpAddr;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVarSource, Pod, Secret};
use kube::Api;

use super::backend::Capacity;
use super::expand::expand;
use super::quantity::{divide_ceil, parse_milli};

/// Why a container's configuration could not be resolved: the message of its
/// `CreateContainerConfigError`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ConfigError(pub(crate) String);

/// Where ConfigMaps and Secrets come from (the API server, or a map in tests).
#[async_trait]
pub(crate) trait ConfigSource: Send + Sync {
    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>, String>;
    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, String>;

    /// A token of the service account `account`, bound to `pod` (TokenRequest).
    async fn service_account_token(
        &self,
        pod: &Pod,
        account: &str,
        audience: Option<&str>,
        expiration_seconds: i64,
    ) -> Result<String, String> {
        let _ = (pod, audience, expiration_seconds);
        Err(format!(
            "no token of service account {account:?} can be requested here"
        ))
    }
}

#[async_trait]
impl ConfigSource for kube::Client {
    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>, String> {
        Api::<ConfigMap>::namespaced(self.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(|e| format!("reading configmap {namespace}/{name}: {e}"))
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, String> {
        Api::<Secret>::namespaced(self.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(|e| format!("reading secret {namespace}/{name}: {e}"))
    }

    async fn service_account_token(
        &self,
        pod: &Pod,
        account: &str,
        audience: Option<&str>,
        expiration_seconds: i64,
    ) -> Result<String, String> {
        use k8s_openapi::api::authentication::v1::{
            BoundObjectReference, TokenRequest, TokenRequestSpec,
        };
        use k8s_openapi::api::core::v1::ServiceAccount;
        let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: audience.map(|a| vec![a.to_owned()]),
                expiration_seconds: Some(expiration_seconds),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".to_owned()),
                    kind: Some("Pod".to_owned()),
                    name: pod.metadata.name.clone(),
                    uid: pod.metadata.uid.clone(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let answer: TokenRequest = Api::<ServiceAccount>::namespaced(self.clone(), namespace)
            .create_subresource(
                "token",
                account,
                &kube::api::PostParams::default(),
                &request,
            )
            .await
            .map_err(|e| {
                format!("requesting a token of service account {namespace}/{account}: {e}")
            })?;
        answer
            .status
            .and_then(|s| s.token)
            .ok_or_else(|| format!("the token request for {namespace}/{account} returned no token"))
    }
}

/// What the downward API can see besides the pod itself.
#[derive(Clone, Debug)]
pub(crate) struct EnvContext<'a> {
    pub(crate) pod: &'a Pod,
    pub(crate) pod_ip: Option<IpAddr>,
    pub(crate) host_ip: IpAddr,
    /// Limits default to the node's allocatable resources, as on a kubelet.
    pub(crate) allocatable: &'a Capacity,
    /// The Service variables of the pod ([`service_env`](super::service_env)): defined first,
    /// so `$(VAR)` sees them and the container's own definitions win.
    pub(crate) service_env: &'a [(String, String)],
}

/// Reads each ConfigMap and Secret once per resolution.
struct Cache<'s> {
    source: &'s dyn ConfigSource,
    namespace: String,
    config_maps: HashMap<String, Option<ConfigMap>>,
    secrets: HashMap<String, Option<Secret>>,
}

impl Cache<'_> {
    async fn config_map(&mut self, name: &str) -> Result<Option<&ConfigMap>, ConfigError> {
        if !self.config_maps.contains_key(name) {
            let found = self
                .source
                .config_map(&self.namespace, name)
                .await
                .map_err(ConfigError)?;
            self.config_maps.insert(name.to_owned(), found);
        }
        Ok(self.config_maps[name].as_ref())
    }

    async fn secret(&mut self, name: &str) -> Result<Option<&Secret>, ConfigError> {
        if !self.secrets.contains_key(name) {
            let found = self
                .source
                .secret(&self.namespace, name)
                .await
                .map_err(ConfigError)?;
            self.secrets.insert(name.to_owned(), found);
        }
        Ok(self.secrets[name].as_ref())
    }
}

/// The environment being built: ordered, a redefinition replaces in place.
#[derive(Default)]
struct Env(Vec<(String, String)>);

impl Env {
    fn set(&mut self, name: String, value: String) {
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A kubelet accepts any printable ASCII name without `=` for variables from `envFrom`.
fn is_env_var_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'=')
}

fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .cloned()
        })
}

/// Resolves `container`'s environment.
pub(crate) async fn resolve_env(
    ctx: &EnvContext<'_>,
    container: &Container,
    source: &dyn ConfigSource,
) -> Result<Vec<(String, String)>, ConfigError> {
    let namespace = ctx.pod.metadata.namespace.clone().unwrap_or_default();
    let mut cache = Cache {
        source,
        namespace: namespace.clone(),
        config_maps: HashMap::new(),
        secrets: HashMap::new(),
    };
    let mut env = Env::default();
    for (name, value) in ctx.service_env {
        env.set(name.clone(), value.clone());
    }

    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or("");
        if let Some(cm_ref) = &from.config_map_ref {
            match cache.config_map(&cm_ref.name).await? {
                Some(cm) => {
                    for (k, v) in cm.data.iter().flatten() {
                        let name = format!("{prefix}{k}");
                        if is_env_var_name(&name) {
                            env.set(name, v.clone());
                        }
                    }
                }
                None if cm_ref.optional == Some(true) => {}
                None => {
                    return Err(ConfigError(format!(
                        "configmap {:?} not found",
                        cm_ref.name
                    )));
                }
            }
        }
        if let Some(secret_ref) = &from.secret_ref {
            match cache.secret(&secret_ref.name).await? {
                Some(secret) => {
                    for (k, v) in secret.data.iter().flatten() {
                        let name = format!("{prefix}{k}");
                        if is_env_var_name(&name) {
                            env.set(name, String::from_utf8_lossy(&v.0).into_owned());
                        }
                    }
                }
                None if secret_ref.optional == Some(true) => {}
                None => {
                    return Err(ConfigError(format!(
                        "secret {:?} not found",
                        secret_ref.name
                    )));
                }
            }
        }
    }

    for var in container.env.iter().flatten() {
        let value = match &var.value_from {
            None => Some(expand(var.value.as_deref().unwrap_or(""), |name| {
                env.get(name)
            })),
            Some(from) => value_from(ctx, container, from, &namespace, &mut cache).await?,
        };
        if let Some(value) = value {
            env.set(var.name.clone(), value);
        }
    }
    Ok(env.0)
}

/// The value of one `valueFrom`; `None` when an optional source is missing (the variable is skipped).
async fn value_from(
    ctx: &EnvContext<'_>,
    container: &Container,
    from: &EnvVarSource,
    namespace: &str,
    cache: &mut Cache<'_>,
) -> Result<Option<String>, ConfigError> {
    if let Some(field) = &from.field_ref {
        return field_value(ctx, &field.field_path).map(Some);
    }
    if let Some(resource) = &from.resource_field_ref {
        return resource_value(
            ctx,
            container,
            resource.container_name.as_deref(),
            &resource.resource,
            resource.divisor.as_ref().map(|q| q.0.as_str()),
        )
        .map(Some);
    }
    if let Some(sel) = &from.config_map_key_ref {
        let optional = sel.optional == Some(true);
        return match cache.config_map(&sel.name).await? {
            Some(cm) => {
                let value = cm.data.as_ref().and_then(|d| d.get(&sel.key)).cloned();
                match value {
                    Some(v) => Ok(Some(v)),
                    None if optional => Ok(None),
                    None => Err(ConfigError(format!(
                        "couldn't find key {} in ConfigMap {namespace}/{}",
                        sel.key, sel.name
                    ))),
                }
            }
            None if optional => Ok(None),
            None => Err(ConfigError(format!("configmap {:?} not found", sel.name))),
        };
    }
    if let Some(sel) = &from.secret_key_ref {
        let optional = sel.optional == Some(true);
        return match cache.secret(&sel.name).await? {
            Some(secret) => match secret_value(secret, &sel.key) {
                Some(v) => Ok(Some(v)),
                None if optional => Ok(None),
                None => Err(ConfigError(format!(
                    "couldn't find key {} in Secret {namespace}/{}",
                    sel.key, sel.name
                ))),
            },
            None if optional => Ok(None),
            None => Err(ConfigError(format!("secret {:?} not found", sel.name))),
        };
    }
    if from.file_key_ref.is_some() {
        return Err(ConfigError(
            "env from a file (fileKeyRef) is not supported by this node".to_owned(),
        ));
    }
    Err(ConfigError(
        "an env valueFrom names no source (fieldRef, resourceFieldRef, configMapKeyRef or secretKeyRef)"
            .to_owned(),
    ))
}

/// Renders a label or annotation map as the downward API does: `key="value"` lines, sorted.
fn format_map(map: Option<&std::collections::BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A downward API `fieldRef`.
pub(crate) fn field_value(ctx: &EnvContext<'_>, path: &str) -> Result<String, ConfigError> {
    let meta = &ctx.pod.metadata;
    let spec = ctx.pod.spec.as_ref();
    let subscript = |prefix: &str| -> Option<String> {
        let rest = path.strip_prefix(prefix)?.strip_prefix('[')?;
        let rest = rest.strip_suffix(']')?;
        let key = rest
            .strip_prefix('\'')
            .and_then(|r| r.strip_suffix('\''))
            .or_else(|| rest.strip_prefix('"').and_then(|r| r.strip_suffix('"')))?;
        Some(key.to_owned())
    };
    let value = match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(meta.labels.as_ref()),
        "metadata.annotations" => format_map(meta.annotations.as_ref()),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => ctx.host_ip.to_string(),
        "status.podIP" | "status.podIPs" => ctx.pod_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        _ => {
            if let Some(key) = subscript("metadata.labels") {
                meta.labels
                    .as_ref()
                    .and_then(|l| l.get(&key))
                    .cloned()
                    .unwrap_or_default()
            } else if let Some(key) = subscript("metadata.annotations") {
                meta.annotations
                    .as_ref()
                    .and_then(|a| a.get(&key))
                    .cloned()
                    .unwrap_or_default()
            } else {
                return Err(ConfigError(format!(
                    "unsupported downward API field path {path:?}"
                )));
            }
        }
    };
    Ok(value)
}

/// A downward API `resourceFieldRef`: limits default to the node's allocatable, requests to zero
/// (cpu requests default to the limit when only a limit is set, as the API server defaults them).
fn resource_value(
    ctx: &EnvContext<'_>,
    container: &Container,
    container_name: Option<&str>,
    resource: &str,
    divisor: Option<&str>,
) -> Result<String, ConfigError> {
    let target = match container_name.filter(|n| !n.is_empty()) {
        Some(name) if name != container.name => ctx
            .pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .find(|c| c.name == name)
            .ok_or_else(|| ConfigError(format!("resourceFieldRef names no container {name:?}")))?,
        _ => container,
    };
    let (kind, name) = resource.split_once('.').ok_or_else(|| {
        ConfigError(format!(
            "unsupported resourceFieldRef resource {resource:?}"
        ))
    })?;
    let resources = target.resources.as_ref();
    let declared = |which: &str| {
        resources
            .and_then(|r| match which {
                "limits" => r.limits.as_ref(),
                _ => r.requests.as_ref(),
            })
            .and_then(|m| m.get(name))
            .map(|q| q.0.clone())
    };
    let allocatable = match name {
        "cpu" => Some(ctx.allocatable.cpu.clone()),
        "memory" => Some(ctx.allocatable.memory.clone()),
        "ephemeral-storage" => None,
        _ => {
            return Err(ConfigError(format!(
                "unsupported resourceFieldRef resource {resource:?}"
            )));
        }
    };
    let quantity = match kind {
        "limits" => declared("limits").or(allocatable),
        "requests" => declared("requests").or_else(|| declared("limits")),
        _ => {
            return Err(ConfigError(format!(
                "unsupported resourceFieldRef resource {resource:?}"
            )));
        }
    }
    .unwrap_or_else(|| "0".to_owned());
    let value = parse_milli(&quantity)
        .ok_or_else(|| ConfigError(format!("invalid quantity {quantity:?} for {resource}")))?;
    let divisor_text = divisor.unwrap_or("1");
    let divisor = parse_milli(divisor_text)
        .ok_or_else(|| ConfigError(format!("invalid divisor {divisor_text:?}")))?;
    // The API server stores an omitted divisor as "0"; a kubelet reads a zero divisor as 1.
    let divisor = if divisor == 0 { 1000 } else { divisor };
    let result = divide_ceil(value, divisor)
        .ok_or_else(|| ConfigError(format!("invalid divisor {divisor_text:?}")))?;
    Ok(result.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::{
        ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVar, ObjectFieldSelector,
        PodSpec, ResourceFieldSelector, ResourceRequirements, SecretEnvSource, SecretKeySelector,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use kube::api::ObjectMeta;

    use super::*;

    #[derive(Default)]
    struct Store {
        config_maps: BTreeMap<String, ConfigMap>,
        secrets: BTreeMap<String, Secret>,
    }

    #[async_trait]
    impl ConfigSource for Store {
        async fn config_map(&self, _ns: &str, name: &str) -> Result<Option<ConfigMap>, String> {
            Ok(self.config_maps.get(name).cloned())
        }
        async fn secret(&self, _ns: &str, name: &str) -> Result<Option<Secret>, String> {
            Ok(self.secrets.get(name).cloned())
        }
    }

    fn store() -> Store {
        let mut store = Store::default();
        store.config_maps.insert(
            "settings".into(),
            ConfigMap {
                data: Some(BTreeMap::from([
                    ("GREETING".into(), "hello".into()),
                    ("LEVEL".into(), "debug".into()),
                    ("bad=name".into(), "x".into()),
                ])),
                ..Default::default()
            },
        );
        store.secrets.insert(
            "creds".into(),
            Secret {
                data: Some(BTreeMap::from([(
                    "password".into(),
                    ByteString(b"s3cret".to_vec()),
                )])),
                ..Default::default()
            },
        );
        store
    }

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-1".into()),
                namespace: Some("shop".into()),
                uid: Some("u-1".into()),
                labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("vnode".into()),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn var(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        }
    }

    fn var_from(name: &str, from: EnvVarSource) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: None,
            value_from: Some(from),
        }
    }

    fn field(path: &str) -> EnvVarSource {
        EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: path.into(),
            }),
            ..Default::default()
        }
    }

    async fn resolve(
        container: &Container,
        store: &Store,
    ) -> Result<Vec<(String, String)>, ConfigError> {
        let pod = pod();
        let capacity = Capacity::new("4", "8Gi", 110);
        let ctx = EnvContext {
            pod: &pod,
            pod_ip: Some("127.1.0.9".parse().unwrap()),
            host_ip: "127.0.0.1".parse().unwrap(),
            allocatable: &capacity,
            service_env: &[],
        };
        resolve_env(&ctx, container, store).await
    }

    fn get<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    #[tokio::test]
    async fn env_from_then_env_in_order_with_expansion() {
        let container = Container {
            name: "app".into(),
            env_from: Some(vec![
                EnvFromSource {
                    config_map_ref: Some(ConfigMapEnvSource {
                        name: "settings".into(),
                        optional: None,
                    }),
                    prefix: Some("CFG_".into()),
                    secret_ref: None,
                },
                EnvFromSource {
                    config_map_ref: None,
                    prefix: None,
                    secret_ref: Some(SecretEnvSource {
                        name: "creds".into(),
                        optional: None,
                    }),
                },
            ]),
            env: Some(vec![
                var("PORT", "8080"),
                var("URL", "http://$(MY_IP):$(PORT)/$(CFG_GREETING)"),
                var_from("MY_IP", field("status.podIP")),
                var("CFG_LEVEL", "info"),
            ]),
            ..Default::default()
        };
        let env = resolve(&container, &store()).await.unwrap();
        let names: Vec<_> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "CFG_GREETING",
                "CFG_LEVEL",
                "password",
                "PORT",
                "URL",
                "MY_IP"
            ]
        );
        // MY_IP is defined after URL, so it is not expanded there (as a kubelet does).
        assert_eq!(get(&env, "URL"), Some("http://$(MY_IP):8080/hello"));
        assert_eq!(get(&env, "CFG_LEVEL"), Some("info"));
        assert_eq!(get(&env, "password"), Some("s3cret"));
        assert_eq!(get(&env, "MY_IP"), Some("127.1.0.9"));
    }

    #[tokio::test]
    async fn key_refs_and_downward_api() {
        let container = Container {
            name: "app".into(),
            env: Some(vec![
                var_from(
                    "PASSWORD",
                    EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            name: "creds".into(),
                            key: "password".into(),
                            optional: None,
                        }),
                        ..Default::default()
                    },
                ),
                var_from(
                    "GREETING",
                    EnvVarSource {
                        config_map_key_ref: Some(ConfigMapKeySelector {
                            name: "settings".into(),
                            key: "GREETING".into(),
                            optional: None,
                        }),
                        ..Default::default()
                    },
                ),
                var_from("POD_NAME", field("metadata.name")),
                var_from("POD_NAMESPACE", field("metadata.namespace")),
                var_from("APP", field("metadata.labels['app']")),
                var_from("NODE", field("spec.nodeName")),
                var_from("HOST_IP", field("status.hostIP")),
            ]),
            ..Default::default()
        };
        let env = resolve(&container, &store()).await.unwrap();
        assert_eq!(get(&env, "PASSWORD"), Some("s3cret"));
        assert_eq!(get(&env, "GREETING"), Some("hello"));
        assert_eq!(get(&env, "POD_NAME"), Some("web-1"));
        assert_eq!(get(&env, "POD_NAMESPACE"), Some("shop"));
        assert_eq!(get(&env, "APP"), Some("web"));
        assert_eq!(get(&env, "NODE"), Some("vnode"));
        assert_eq!(get(&env, "HOST_IP"), Some("127.0.0.1"));
    }

    #[tokio::test]
    async fn missing_sources_are_config_errors_unless_optional() {
        let missing_secret = Container {
            name: "app".into(),
            env: Some(vec![var_from(
                "PASSWORD",
                EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: "nope".into(),
                        key: "password".into(),
                        optional: None,
                    }),
                    ..Default::default()
                },
            )]),
            ..Default::default()
        };
        let err = resolve(&missing_secret, &store()).await.unwrap_err();
        assert_eq!(err, ConfigError("secret \"nope\" not found".into()));

        let missing_key = Container {
            name: "app".into(),
            env: Some(vec![var_from(
                "X",
                EnvVarSource {
                    config_map_key_ref: Some(ConfigMapKeySelector {
                        name: "settings".into(),
                        key: "ABSENT".into(),
                        optional: None,
                    }),
                    ..Default::default()
                },
            )]),
            ..Default::default()
        };
        let err = resolve(&missing_key, &store()).await.unwrap_err();
        assert_eq!(
            err,
            ConfigError("couldn't find key ABSENT in ConfigMap shop/settings".into())
        );

        let optional = Container {
            name: "app".into(),
            env_from: Some(vec![EnvFromSource {
                config_map_ref: Some(ConfigMapEnvSource {
                    name: "absent".into(),
                    optional: Some(true),
                }),
                prefix: None,
                secret_ref: None,
            }]),
            env: Some(vec![var_from(
                "P",
                EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: "nope".into(),
                        key: "k".into(),
                        optional: Some(true),
                    }),
                    ..Default::default()
                },
            )]),
            ..Default::default()
        };
        assert_eq!(resolve(&optional, &store()).await.unwrap(), vec![]);
    }

    #[tokio::test]
    async fn resource_fields_use_limits_then_allocatable() {
        let resource = |res: &str, divisor: Option<&str>| EnvVarSource {
            resource_field_ref: Some(ResourceFieldSelector {
                container_name: None,
                divisor: divisor.map(|d| Quantity(d.into())),
                resource: res.into(),
            }),
            ..Default::default()
        };
        let container = Container {
            name: "app".into(),
            resources: Some(ResourceRequirements {
                limits: Some(BTreeMap::from([("memory".into(), Quantity("64Mi".into()))])),
                requests: Some(BTreeMap::from([("cpu".into(), Quantity("250m".into()))])),
                ..Default::default()
            }),
            env: Some(vec![
                var_from("MEM", resource("limits.memory", Some("1Mi"))),
                var_from("CPU_LIMIT", resource("limits.cpu", None)),
                var_from("CPU_REQ_MILLI", resource("requests.cpu", Some("1m"))),
                var_from("CPU_REQ", resource("requests.cpu", None)),
                // As the API server stores an omitted divisor.
                var_from("MEM_BYTES", resource("limits.memory", Some("0"))),
                var_from("CPU_REQ_ZERO", resource("requests.cpu", Some("0"))),
            ]),
            ..Default::default()
        };
        let env = resolve(&container, &store()).await.unwrap();
        assert_eq!(get(&env, "MEM"), Some("64"));
        assert_eq!(get(&env, "CPU_LIMIT"), Some("4"));
        assert_eq!(get(&env, "CPU_REQ_MILLI"), Some("250"));
        assert_eq!(get(&env, "CPU_REQ"), Some("1"));
        assert_eq!(get(&env, "MEM_BYTES"), Some("67108864"));
        assert_eq!(get(&env, "CPU_REQ_ZERO"), Some("1"));
    }

    #[test]
    fn unsupported_field_paths_are_named() {
        let pod = pod();
        let capacity = Capacity::default();
        let ctx = EnvContext {
            pod: &pod,
            pod_ip: None,
            host_ip: "127.0.0.1".parse().unwrap(),
            allocatable: &capacity,
            service_env: &[],
        };
        let err = field_value(&ctx, "spec.whatever").unwrap_err();
        assert!(err.0.contains("spec.whatever"));
        assert_eq!(field_value(&ctx, "status.podIP").unwrap(), "");
    }
}
