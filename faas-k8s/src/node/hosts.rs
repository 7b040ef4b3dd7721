//! A pod's host identity as a kubelet gives it: its hostname and the `/etc/hosts` it manages.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Pod;

/// The cluster domain of the names in `/etc/hosts`.
const CLUSTER_DOMAIN: &str = "cluster.local";

/// A hostname is at most this long; a longer pod name is cut, as a kubelet cuts it.
const MAX_HOSTNAME: usize = 63;

/// The pod's hostname: `spec.hostname`, else its name (cut to 63 bytes, without a trailing `-`
/// or `.`).
pub(crate) fn hostname(pod: &Pod) -> String {
    if let Some(name) = pod
        .spec
        .as_ref()
        .and_then(|s| s.hostname.as_deref())
        .filter(|h| !h.is_empty())
    {
        return name.to_owned();
    }
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let cut = &name[..name.len().min(MAX_HOSTNAME)];
    cut.trim_end_matches(['-', '.']).to_owned()
}

/// The kubelet-managed `/etc/hosts` of the pod: localhost, the pod's own address under its
/// hostname (and its fully qualified name with `spec.subdomain`), then `spec.hostAliases`.
/// `None` for a `hostNetwork` pod, which sees the node's own file.
pub(crate) fn hosts_file(pod: &Pod, pod_ip: Option<IpAddr>) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if spec.host_network == Some(true) {
        return None;
    }
    let mut out = String::from(
        "# Kubernetes-managed hosts file.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n",
    );
    let name = hostname(pod);
    if let Some(ip) = pod_ip {
        match spec.subdomain.as_deref().filter(|s| !s.is_empty()) {
            Some(subdomain) => {
                let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
                out.push_str(&format!(
                    "{ip}\t{name}.{subdomain}.{namespace}.svc.{CLUSTER_DOMAIN}\t{name}\n"
                ));
            }
            None => out.push_str(&format!("{ip}\t{name}\n")),
        }
    }
    let aliases = spec.host_aliases.as_deref().unwrap_or_default();
    if !aliases.is_empty() {
        out.push_str("\n# Entries added by HostAliases.\n");
        for alias in aliases {
            let names = alias.hostnames.as_deref().unwrap_or_default();
            out.push_str(&format!("{}\t{}\n", alias.ip, names.join("\t")));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{HostAlias, PodSpec};
    use kube::api::ObjectMeta;

    use super::*;

    fn pod(name: &str, spec: PodSpec) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("shop".into()),
                ..Default::default()
            },
            spec: Some(spec),
            status: None,
        }
    }

    #[test]
    fn hostname_is_the_spec_hostname_or_the_cut_pod_name() {
        assert_eq!(hostname(&pod("web-1", PodSpec::default())), "web-1");
        let named = PodSpec {
            hostname: Some("db".into()),
            ..Default::default()
        };
        assert_eq!(hostname(&pod("web-1", named)), "db");
        let long = format!("{}-x", "a".repeat(62));
        assert_eq!(hostname(&pod(&long, PodSpec::default())), "a".repeat(62));
    }

    #[test]
    fn hosts_file_names_the_pod_and_its_aliases() {
        let spec = PodSpec {
            hostname: Some("db-0".into()),
            subdomain: Some("db".into()),
            host_aliases: Some(vec![HostAlias {
                ip: "10.1.2.3".into(),
                hostnames: Some(vec!["foo.local".into(), "bar.local".into()]),
            }]),
            ..Default::default()
        };
        let hosts = hosts_file(&pod("db-0", spec), Some("10.244.1.7".parse().unwrap())).unwrap();
        assert!(hosts.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(hosts.contains("10.244.1.7\tdb-0.db.shop.svc.cluster.local\tdb-0\n"));
        assert!(
            hosts.ends_with("# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n")
        );
        let host_network = PodSpec {
            host_network: Some(true),
            ..Default::default()
        };
        assert_eq!(hosts_file(&pod("h", host_network), None), None);
    }
}
