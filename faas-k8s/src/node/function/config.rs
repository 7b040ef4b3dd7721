//! How a [`FunctionBackend`](super::FunctionBackend) is set up.

use faas_core::Registry;
use faas_triggers::http::HttpTriggerConfig;

use crate::node::address::AddressPool;
use crate::node::backend::Capacity;
use crate::node::machine::machine_capacity;
use crate::node::network::PodNetwork;

/// How many function pods a node advertises by default: a pod is a listener and a few
/// allocations, not a process, so far more fit than the kubelet's 110.
pub const DEFAULT_MAX_FUNCTION_PODS: u32 = 1000;

/// The port a function pod listens on when its container declares none.
pub const DEFAULT_FUNCTION_PORT: u16 = 8080;

/// The configuration of a [`FunctionBackend`](super::FunctionBackend).
///
/// ```
/// use faas_core::{FunctionDefinition, Registry};
/// use faas_k8s::node::function::FunctionBackendConfig;
///
/// async fn hello() -> &'static str { "hello" }
///
/// let registry = Registry::from([FunctionDefinition::from_handler("hello", hello)]);
/// let config = FunctionBackendConfig::new(registry).with_log_lines(100);
/// assert_eq!(config.default_port, 8080);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FunctionBackendConfig {
    /// The functions pods can name (see [`function_image`](super::function_image)).
    pub registry: Registry,
    /// Where pod addresses come from (default `127.1.0.0/16`); share one pool with the other
    /// backends of the node.
    pub addresses: AddressPool,
    /// The port a container listens on when it declares none. Default 8080.
    pub default_port: u16,
    /// How many log lines each pod keeps (one per call, plus start and stop). Default 256.
    pub log_lines: usize,
    /// What the node advertises; `None` (the default) takes the machine's CPU count and memory and
    /// [`DEFAULT_MAX_FUNCTION_PODS`] pods. Creating more pods than this fails.
    pub capacity: Option<Capacity>,
    /// How each pod's HTTP server behaves (body limit, drain timeout, h2c, ...); its address and
    /// default function are set per pod.
    pub http: HttpTriggerConfig,
    /// Where pod addresses live: loopback addresses of the host (the default), or a network
    /// namespace (then `addresses` must be a range routed into it; the listeners are bound inside
    /// it while the node stays on the host).
    pub network: PodNetwork,
}

impl FunctionBackendConfig {
    /// Defaults, serving the functions of `registry`.
    pub fn new(registry: Registry) -> Self {
        Self {
            registry,
            addresses: AddressPool::default(),
            default_port: DEFAULT_FUNCTION_PORT,
            log_lines: 256,
            capacity: None,
            http: HttpTriggerConfig::default(),
            network: PodNetwork::default(),
        }
    }

    /// Sets the address pool.
    #[must_use]
    pub fn with_addresses(mut self, addresses: AddressPool) -> Self {
        self.addresses = addresses;
        self
    }

    /// Sets the port used when a container declares none.
    #[must_use]
    pub fn with_default_port(mut self, port: u16) -> Self {
        self.default_port = port;
        self
    }

    /// Sets how many log lines each pod keeps.
    #[must_use]
    pub fn with_log_lines(mut self, lines: usize) -> Self {
        self.log_lines = lines;
        self
    }

    /// Sets the advertised capacity.
    #[must_use]
    pub fn with_capacity(mut self, capacity: Capacity) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// Sets the HTTP server settings of every pod.
    #[must_use]
    pub fn with_http(mut self, http: HttpTriggerConfig) -> Self {
        self.http = http;
        self
    }

    /// Sets the pod network.
    #[must_use]
    pub fn with_network(mut self, network: PodNetwork) -> Self {
        self.network = network;
        self
    }

    /// The capacity to advertise: the configured one, or the machine's with
    /// [`DEFAULT_MAX_FUNCTION_PODS`] pods.
    pub fn effective_capacity(&self) -> Capacity {
        self.capacity.clone().unwrap_or_else(|| {
            let mut capacity = machine_capacity();
            capacity.pods = DEFAULT_MAX_FUNCTION_PODS;
            capacity
        })
    }
}
