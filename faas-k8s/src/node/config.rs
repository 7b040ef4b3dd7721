//! How a virtual node presents itself and paces its work: [`NodeConfig`] and its builder.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::backend::Capacity;
use crate::error::{Error, Result};

/// The taint key every virtual node carries unless configured otherwise; pods must tolerate it.
pub const PROVIDER_TAINT_KEY: &str = "virtual-kubelet.io/provider";

/// A taint the node registers with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeTaint {
    /// The taint key.
    pub key: String,
    /// The taint value (may be empty).
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

impl NodeTaint {
    /// A taint from its parts.
    pub fn new(
        key: impl Into<String>,
        value: impl Into<String>,
        effect: impl Into<String>,
    ) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
            effect: effect.into(),
        }
    }
}

/// One entry of the Node's `status.addresses`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAddress {
    /// `InternalIP`, `ExternalIP`, `Hostname`, ...
    pub kind: String,
    /// The address.
    pub address: String,
}

/// Where the kubelet API finds its serving certificate and the CA that signs client certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeletTls {
    /// PEM file with the serving certificate (and its chain).
    pub cert: PathBuf,
    /// PEM file with the serving certificate's private key.
    pub key: PathBuf,
    /// PEM file with the CA that signs the client certificates to accept (the cluster CA).
    pub client_ca: PathBuf,
}

/// The configuration of a [`VirtualNode`](super::VirtualNode). Build it with [`NodeConfig::builder`].
///
/// ```
/// use std::time::Duration;
/// use faas_k8s::node::NodeConfig;
///
/// let config = NodeConfig::builder("vnode-1")
///     .label("topology.kubernetes.io/zone", "local")
///     .restart_backoff(Duration::from_millis(200), Duration::from_secs(2))
///     .build()
///     .unwrap();
/// assert_eq!(config.name(), "vnode-1");
/// assert_eq!(config.labels()["type"], "virtual-kubelet");
/// ```
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) taints: Vec<NodeTaint>,
    pub(crate) addresses: Vec<NodeAddress>,
    pub(crate) pod_cidr: Option<String>,
    pub(crate) capacity: Option<Capacity>,
    pub(crate) kubelet_port: u16,
    pub(crate) kubelet_bind: Option<SocketAddr>,
    pub(crate) kubelet_tls: Option<KubeletTls>,
    pub(crate) lease_duration: Duration,
    pub(crate) lease_renew_interval: Duration,
    pub(crate) status_update_interval: Duration,
    pub(crate) backoff_base: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) config_retry_interval: Duration,
    pub(crate) volume_sync_interval: Duration,
    pub(crate) max_api_requests: usize,
}

/// How many requests the node's pod workers have in flight at once by default (see
/// [`NodeConfigBuilder::max_api_requests`]).
pub const DEFAULT_MAX_API_REQUESTS: usize = 32;

impl NodeConfig {
    /// Starts a configuration for the node called `name`.
    pub fn builder(name: impl Into<String>) -> NodeConfigBuilder {
        NodeConfigBuilder::new(name.into())
    }

    /// The Node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The labels the Node registers with.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }

    /// The taints the Node registers with.
    pub fn taints(&self) -> &[NodeTaint] {
        &self.taints
    }

    /// The Node's addresses; the first `InternalIP` is the pods' `hostIP`.
    pub fn addresses(&self) -> &[NodeAddress] {
        &self.addresses
    }

    /// The Node's `spec.podCIDR`, if set.
    pub fn pod_cidr(&self) -> Option<&str> {
        self.pod_cidr.as_deref()
    }

    /// The capacity advertised instead of the backend's, if set.
    pub fn capacity(&self) -> Option<&Capacity> {
        self.capacity.as_ref()
    }

    /// The port advertised as `daemonEndpoints.kubeletEndpoint`.
    pub fn kubelet_port(&self) -> u16 {
        self.kubelet_port
    }

    /// Where the kubelet API listens: the configured address, else the host IP on the kubelet port.
    pub fn kubelet_bind(&self) -> SocketAddr {
        self.kubelet_bind
            .unwrap_or_else(|| SocketAddr::new(self.host_ip(), self.kubelet_port))
    }

    /// The TLS material of the kubelet API; without it the API is not served.
    pub fn kubelet_tls(&self) -> Option<&KubeletTls> {
        self.kubelet_tls.as_ref()
    }

    /// How long the Lease is valid after each renewal.
    pub fn lease_duration(&self) -> Duration {
        self.lease_duration
    }

    /// How often the Lease is renewed.
    pub fn lease_renew_interval(&self) -> Duration {
        self.lease_renew_interval
    }

    /// How often the Node's status (conditions, heartbeats) is written when nothing changed.
    pub fn status_update_interval(&self) -> Duration {
        self.status_update_interval
    }

    /// The first restart delay of a crashing container; it doubles up to [`Self::backoff_max`].
    pub fn backoff_base(&self) -> Duration {
        self.backoff_base
    }

    /// The longest restart delay.
    pub fn backoff_max(&self) -> Duration {
        self.backoff_max
    }

    /// How often a pod whose configuration cannot be resolved (a missing Secret) is retried.
    pub fn config_retry_interval(&self) -> Duration {
        self.config_retry_interval
    }

    /// How often the files of a running pod's volumes are brought up to date (ConfigMaps,
    /// Secrets, the downward API, service account tokens).
    pub fn volume_sync_interval(&self) -> Duration {
        self.volume_sync_interval
    }

    /// How many requests to the API server the pod workers have in flight at once.
    pub fn max_api_requests(&self) -> usize {
        self.max_api_requests
    }

    /// The first `InternalIP` address, else 127.0.0.1.
    pub fn host_ip(&self) -> IpAddr {
        self.addresses
            .iter()
            .filter(|a| a.kind == "InternalIP")
            .find_map(|a| a.address.parse().ok())
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }
}

/// Builds a [`NodeConfig`]; every setting has a kubelet-like default.
#[must_use]
#[derive(Clone, Debug)]
pub struct NodeConfigBuilder {
    config: NodeConfig,
    extra_labels: BTreeMap<String, String>,
    addresses_set: bool,
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

impl NodeConfigBuilder {
    fn new(name: String) -> Self {
        let labels = BTreeMap::from([
            ("type".to_owned(), "virtual-kubelet".to_owned()),
            ("kubernetes.io/role".to_owned(), "agent".to_owned()),
            ("kubernetes.io/os".to_owned(), "linux".to_owned()),
            ("kubernetes.io/arch".to_owned(), arch().to_owned()),
            ("kubernetes.io/hostname".to_owned(), name.clone()),
        ]);
        Self {
            config: NodeConfig {
                labels,
                taints: vec![NodeTaint::new(PROVIDER_TAINT_KEY, "faas", "NoSchedule")],
                addresses: Vec::new(),
                pod_cidr: None,
                capacity: None,
                kubelet_port: 10250,
                kubelet_bind: None,
                kubelet_tls: None,
                lease_duration: Duration::from_secs(40),
                lease_renew_interval: Duration::from_secs(10),
                status_update_interval: Duration::from_secs(60),
                backoff_base: Duration::from_secs(10),
                backoff_max: Duration::from_secs(300),
                config_retry_interval: Duration::from_secs(10),
                volume_sync_interval: Duration::from_secs(60),
                max_api_requests: DEFAULT_MAX_API_REQUESTS,
                name,
            },
            extra_labels: BTreeMap::new(),
            addresses_set: false,
        }
    }

    /// Adds (or overrides) a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra_labels.insert(key.into(), value.into());
        self
    }

    /// Replaces the taints (the default is `virtual-kubelet.io/provider=faas:NoSchedule`).
    pub fn taints(mut self, taints: Vec<NodeTaint>) -> Self {
        self.config.taints = taints;
        self
    }

    /// Adds an address (the default is `InternalIP` 127.0.0.1 and the name as `Hostname`).
    pub fn address(mut self, kind: impl Into<String>, address: impl Into<String>) -> Self {
        self.addresses_set = true;
        self.config.addresses.push(NodeAddress {
            kind: kind.into(),
            address: address.into(),
        });
        self
    }

    /// Sets `spec.podCIDR`.
    pub fn pod_cidr(mut self, cidr: impl Into<String>) -> Self {
        self.config.pod_cidr = Some(cidr.into());
        self
    }

    /// Advertises this capacity instead of the backend's.
    pub fn capacity(mut self, capacity: Capacity) -> Self {
        self.config.capacity = Some(capacity);
        self
    }

    /// The kubelet API port advertised in `daemonEndpoints` (default 10250). With 0 the kubelet API
    /// binds any free port when the node runs, and that port is the one advertised.
    pub fn kubelet_port(mut self, port: u16) -> Self {
        self.config.kubelet_port = port;
        self
    }

    /// Where the kubelet API listens (default: the host IP on the kubelet port).
    pub fn kubelet_bind(mut self, addr: SocketAddr) -> Self {
        self.config.kubelet_bind = Some(addr);
        self
    }

    /// Serves the kubelet API (container logs) with this TLS material.
    pub fn kubelet_tls(mut self, tls: KubeletTls) -> Self {
        self.config.kubelet_tls = Some(tls);
        self
    }

    /// The Lease's duration (default 40 s).
    pub fn lease_duration(mut self, duration: Duration) -> Self {
        self.config.lease_duration = duration;
        self
    }

    /// How often the Lease is renewed (default 10 s).
    pub fn lease_renew_interval(mut self, interval: Duration) -> Self {
        self.config.lease_renew_interval = interval;
        self
    }

    /// How often the Node's status is written when nothing changed (default 60 s).
    pub fn status_update_interval(mut self, interval: Duration) -> Self {
        self.config.status_update_interval = interval;
        self
    }

    /// The restart back-off of crashing containers: starts at `base`, doubles up to `max`
    /// (default 10 s to 5 min, as a kubelet).
    pub fn restart_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.config.backoff_base = base;
        self.config.backoff_max = max;
        self
    }

    /// How often a pod whose configuration cannot be resolved is retried (default 10 s).
    pub fn config_retry_interval(mut self, interval: Duration) -> Self {
        self.config.config_retry_interval = interval;
        self
    }

    /// How often the files of a running pod's volumes are brought up to date with their
    /// ConfigMaps, Secrets, downward API fields and service account tokens (default 60 s, a
    /// kubelet's sync period).
    pub fn volume_sync_interval(mut self, interval: Duration) -> Self {
        self.config.volume_sync_interval = interval;
        self
    }

    /// How many requests to the API server the pod workers have in flight at once: status
    /// writes, the re-reads after a conflict, deletions and Events (default
    /// [`DEFAULT_MAX_API_REQUESTS`], 32). The others wait their turn, so a burst of pods (a
    /// thousand bound at once) holds this many request buffers, not one per pod; the watches,
    /// the Lease and the Node's status are not counted.
    pub fn max_api_requests(mut self, requests: usize) -> Self {
        self.config.max_api_requests = requests;
        self
    }

    /// Checks the settings and returns the configuration.
    pub fn build(self) -> Result<NodeConfig> {
        let mut config = self.config;
        if !is_dns_subdomain(&config.name) {
            return Err(Error::InvalidConfig(format!(
                "node name {:?} is not a DNS subdomain (lower-case letters, digits, '-' and '.', at most 253 characters)",
                config.name
            )));
        }
        config.labels.extend(self.extra_labels);
        if !self.addresses_set {
            config.addresses = vec![
                NodeAddress {
                    kind: "InternalIP".to_owned(),
                    address: Ipv4Addr::LOCALHOST.to_string(),
                },
                NodeAddress {
                    kind: "Hostname".to_owned(),
                    address: config.name.clone(),
                },
            ];
        }
        if config.lease_duration.as_secs() == 0 {
            return Err(Error::InvalidConfig(
                "the lease duration must be at least one second".to_owned(),
            ));
        }
        if config.lease_renew_interval.is_zero()
            || config.lease_renew_interval >= config.lease_duration
        {
            return Err(Error::InvalidConfig(format!(
                "the lease renew interval ({:?}) must be shorter than the lease duration ({:?})",
                config.lease_renew_interval, config.lease_duration
            )));
        }
        if config.backoff_base.is_zero() || config.backoff_max < config.backoff_base {
            return Err(Error::InvalidConfig(format!(
                "the restart back-off must start above zero and not exceed its maximum (base {:?}, max {:?})",
                config.backoff_base, config.backoff_max
            )));
        }
        if config.max_api_requests == 0 {
            return Err(Error::InvalidConfig(
                "the node needs at least one API request in flight (max_api_requests is 0)"
                    .to_owned(),
            ));
        }
        for taint in &config.taints {
            if !matches!(
                taint.effect.as_str(),
                "NoSchedule" | "PreferNoSchedule" | "NoExecute"
            ) {
                return Err(Error::InvalidConfig(format!(
                    "taint {}: effect {:?} is not NoSchedule, PreferNoSchedule or NoExecute",
                    taint.key, taint.effect
                )));
            }
        }
        Ok(config)
    }
}

fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kubelet_like() {
        let config = NodeConfig::builder("vnode").build().unwrap();
        assert_eq!(config.labels()["kubernetes.io/role"], "agent");
        assert_eq!(config.labels()["kubernetes.io/os"], "linux");
        assert_eq!(config.labels()["kubernetes.io/hostname"], "vnode");
        assert_eq!(
            config.taints(),
            &[NodeTaint::new(PROVIDER_TAINT_KEY, "faas", "NoSchedule")]
        );
        assert_eq!(config.lease_duration(), Duration::from_secs(40));
        assert_eq!(config.lease_renew_interval(), Duration::from_secs(10));
        assert_eq!(config.backoff_base(), Duration::from_secs(10));
        assert_eq!(config.backoff_max(), Duration::from_secs(300));
        assert_eq!(config.host_ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(config.kubelet_bind(), "127.0.0.1:10250".parse().unwrap());
    }

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        let err = NodeConfig::builder("Not_A_Name").build().unwrap_err();
        assert!(err.to_string().contains("DNS subdomain"), "{err}");
        let err = NodeConfig::builder("n")
            .lease_renew_interval(Duration::from_secs(50))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("renew interval"), "{err}");
        let err = NodeConfig::builder("n")
            .taints(vec![NodeTaint::new("k", "v", "Sometimes")])
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("Sometimes"), "{err}");
    }

    #[test]
    fn addresses_replace_the_defaults_and_set_the_host_ip() {
        let config = NodeConfig::builder("n")
            .address("InternalIP", "127.0.0.7")
            .kubelet_port(11250)
            .build()
            .unwrap();
        assert_eq!(config.addresses().len(), 1);
        assert_eq!(config.host_ip(), "127.0.0.7".parse::<IpAddr>().unwrap());
        assert_eq!(config.kubelet_bind(), "127.0.0.7:11250".parse().unwrap());
    }
}
