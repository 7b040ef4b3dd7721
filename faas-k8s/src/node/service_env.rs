//! Service environment variables, as a kubelet sets them for `enableServiceLinks`.
//!
//! For every Service of the pod's namespace that has a cluster IP (and for the `kubernetes`
//! Service of `default`, always), a container gets `{NAME}_SERVICE_HOST`, `{NAME}_SERVICE_PORT`
//! (and `{NAME}_SERVICE_PORT_{PORT_NAME}` per named port), plus the docker-link style
//! `{NAME}_PORT`, `{NAME}_PORT_{port}_{PROTO}` with its `_PROTO`, `_PORT` and `_ADDR`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;

/// The namespace and name of the Service every pod hears of, service links or not.
const MASTER_SERVICE: (&str, &str) = ("default", "kubernetes");

/// The Services a pod of `namespace` hears of, by name: the `kubernetes` Service, and with
/// `service_links` those of its namespace (which win over a `kubernetes` of its own).
pub(crate) fn visible_services<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    namespace: &str,
    service_links: bool,
) -> Vec<&'a Service> {
    let mut by_name: BTreeMap<&str, &Service> = BTreeMap::new();
    for service in services {
        let (Some(ns), Some(name)) = (
            service.metadata.namespace.as_deref(),
            service.metadata.name.as_deref(),
        ) else {
            continue;
        };
        if ns == namespace && service_links {
            by_name.insert(name, service);
        } else if (ns, name) == MASTER_SERVICE {
            by_name.entry(name).or_insert(service);
        }
    }
    by_name.into_values().collect()
}

/// The variables of `services`, in a stable order.
pub(crate) fn service_env(services: &[&Service]) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for service in services {
        let Some(spec) = service.spec.as_ref() else {
            continue;
        };
        let Some(ip) = spec
            .cluster_ip
            .as_deref()
            .filter(|ip| !ip.is_empty() && *ip != "None")
        else {
            continue;
        };
        let prefix = variable_name(service.metadata.name.as_deref().unwrap_or_default());
        let ports = spec.ports.as_deref().unwrap_or_default();
        env.push((format!("{prefix}_SERVICE_HOST"), ip.to_owned()));
        if let Some(first) = ports.first() {
            env.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
        }
        for port in ports {
            if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
                env.push((
                    format!("{prefix}_SERVICE_PORT_{}", variable_name(name)),
                    port.port.to_string(),
                ));
            }
        }
        let host = match ip.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => ip.to_owned(),
        };
        for (i, port) in ports.iter().enumerate() {
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            let lower = protocol.to_lowercase();
            let url = format!("{lower}://{host}:{}", port.port);
            if i == 0 {
                env.push((format!("{prefix}_PORT"), url.clone()));
            }
            let link = format!("{prefix}_PORT_{}_{}", port.port, protocol.to_uppercase());
            env.push((format!("{link}_PROTO"), lower));
            env.push((format!("{link}_PORT"), port.port.to_string()));
            env.push((format!("{link}_ADDR"), ip.to_owned()));
            env.push((link, url));
        }
    }
    env
}

/// `my-service` becomes `MY_SERVICE`.
fn variable_name(name: &str) -> String {
    name.to_uppercase().replace('-', "_")
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
    use kube::api::ObjectMeta;

    use super::*;

    fn service(ns: &str, name: &str, ip: &str, ports: &[(Option<&str>, i32, &str)]) -> Service {
        Service {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some(ip.into()),
                ports: Some(
                    ports
                        .iter()
                        .map(|(name, port, protocol)| ServicePort {
                            name: name.map(str::to_owned),
                            port: *port,
                            protocol: Some((*protocol).into()),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn get<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn variables_follow_the_kubelet() {
        let web = service(
            "app",
            "web-front",
            "10.96.0.20",
            &[(Some("http"), 80, "TCP"), (Some("dns"), 53, "UDP")],
        );
        let env = service_env(&[&web]);
        assert_eq!(get(&env, "WEB_FRONT_SERVICE_HOST"), Some("10.96.0.20"));
        assert_eq!(get(&env, "WEB_FRONT_SERVICE_PORT"), Some("80"));
        assert_eq!(get(&env, "WEB_FRONT_SERVICE_PORT_HTTP"), Some("80"));
        assert_eq!(get(&env, "WEB_FRONT_SERVICE_PORT_DNS"), Some("53"));
        assert_eq!(get(&env, "WEB_FRONT_PORT"), Some("tcp://10.96.0.20:80"));
        assert_eq!(
            get(&env, "WEB_FRONT_PORT_53_UDP"),
            Some("udp://10.96.0.20:53")
        );
        assert_eq!(get(&env, "WEB_FRONT_PORT_53_UDP_PROTO"), Some("udp"));
        assert_eq!(get(&env, "WEB_FRONT_PORT_53_UDP_PORT"), Some("53"));
        assert_eq!(get(&env, "WEB_FRONT_PORT_53_UDP_ADDR"), Some("10.96.0.20"));
    }

    #[test]
    fn headless_services_and_other_namespaces_are_left_out() {
        let all = [
            service("app", "web", "10.96.0.20", &[(None, 80, "TCP")]),
            service("app", "headless", "None", &[(None, 80, "TCP")]),
            service("other", "db", "10.96.0.30", &[(None, 5432, "TCP")]),
            service(
                "default",
                "kubernetes",
                "10.96.0.1",
                &[(Some("https"), 443, "TCP")],
            ),
        ];
        let visible = visible_services(&all, "app", true);
        let env = service_env(&visible);
        assert!(get(&env, "WEB_SERVICE_HOST").is_some());
        assert!(get(&env, "HEADLESS_SERVICE_HOST").is_none());
        assert!(get(&env, "DB_SERVICE_HOST").is_none());
        assert_eq!(get(&env, "KUBERNETES_SERVICE_HOST"), Some("10.96.0.1"));
        let no_links = visible_services(&all, "app", false);
        let env = service_env(&no_links);
        assert!(get(&env, "WEB_SERVICE_HOST").is_none());
        assert_eq!(get(&env, "KUBERNETES_SERVICE_PORT_HTTPS"), Some("443"));
    }
}
