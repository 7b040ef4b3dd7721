//! [`GatewayConfig`]: limits, deadlines, credentials and discovery of the gateway.

use std::time::Duration;

use super::auth::BasicAuth;

/// The label the gateway selects EndpointSlices by, unless told otherwise:
/// EndpointSlices carry their Service's labels, and the Services of functions
/// carry this one.
pub const FUNCTION_LABEL: &str = "faas.rs/function";

/// How the gateway behaves.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | [`default_namespace`](GatewayConfigBuilder::default_namespace) | `default` | the namespace of `/function/{name}` without `.namespace` |
/// | [`body_limit`](GatewayConfigBuilder::body_limit) | 4 MiB | larger requests get 413 |
/// | [`default_timeout`](GatewayConfigBuilder::default_timeout) | 30 s | a call's deadline without `x-timeout`, holding included |
/// | [`max_timeout`](GatewayConfigBuilder::max_timeout) | 5 min | the cap on `x-timeout` |
/// | [`max_held`](GatewayConfigBuilder::max_held) | 1000 | calls held per function at zero; more get 429 |
/// | [`max_attempts`](GatewayConfigBuilder::max_attempts) | 8 | endpoints tried when connections fail |
/// | [`credentials`](GatewayConfigBuilder::credentials) | none | basic auth for `/system/*` (open without) |
/// | [`protect_functions`](GatewayConfigBuilder::protect_functions) | false | also ask function calls for the credentials |
/// | [`watch_namespace`](GatewayConfigBuilder::watch_namespace) | all | route only to functions of one namespace |
/// | [`endpoint_selector`](GatewayConfigBuilder::endpoint_selector) | `faas.rs/function` | which EndpointSlices are functions' |
/// | [`drain_timeout`](GatewayConfigBuilder::drain_timeout) | 30 s | how long a stopping gateway lets held and running calls finish |
///
/// ```
/// use std::time::Duration;
/// use faas_k8s::gateway::{BasicAuth, GatewayConfig};
///
/// let config = GatewayConfig::builder()
///     .default_namespace("functions")
///     .default_timeout(Duration::from_secs(10))
///     .credentials(BasicAuth::new("admin", "s3cret"))
///     .build();
/// assert_eq!(config.default_namespace(), "functions");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GatewayConfig {
    default_namespace: String,
    body_limit: usize,
    default_timeout: Duration,
    max_timeout: Duration,
    max_held: u64,
    max_attempts: u32,
    credentials: Option<BasicAuth>,
    protect_functions: bool,
    watch_namespace: Option<String>,
    endpoint_selector: Option<String>,
    drain_timeout: Duration,
    async_workers: usize,
    async_capacity: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            default_namespace: "default".to_owned(),
            body_limit: 4 * 1024 * 1024,
            default_timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(300),
            max_held: 1000,
            max_attempts: 8,
            credentials: None,
            protect_functions: false,
            watch_namespace: None,
            endpoint_selector: Some(FUNCTION_LABEL.to_owned()),
            drain_timeout: Duration::from_secs(30),
            async_workers: 16,
            async_capacity: 10_000,
        }
    }
}

impl GatewayConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> GatewayConfigBuilder {
        GatewayConfigBuilder {
            config: GatewayConfig::default(),
        }
    }

    /// The namespace of a function named without one.
    pub fn default_namespace(&self) -> &str {
        &self.default_namespace
    }

    /// The largest request body.
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    /// The deadline of a call without `x-timeout`.
    pub fn default_timeout(&self) -> Duration {
        self.default_timeout
    }

    /// The cap on a call's deadline.
    pub fn max_timeout(&self) -> Duration {
        self.max_timeout
    }

    /// Calls held per function while it has no ready replica.
    pub fn max_held(&self) -> u64 {
        self.max_held
    }

    /// Endpoints tried for one call when connections fail.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The credentials of `/system/*`, if required.
    pub fn credentials(&self) -> Option<&BasicAuth> {
        self.credentials.as_ref()
    }

    /// Whether function calls need the credentials too.
    pub fn protect_functions(&self) -> bool {
        self.protect_functions
    }

    /// The one namespace routed to, if not all.
    pub fn watch_namespace(&self) -> Option<&str> {
        self.watch_namespace.as_deref()
    }

    /// The label selector of functions' EndpointSlices, if any.
    pub fn endpoint_selector(&self) -> Option<&str> {
        self.endpoint_selector.as_deref()
    }

    /// How long a stopping gateway lets calls finish.
    pub fn drain_timeout(&self) -> Duration {
        self.drain_timeout
    }

    /// Tasks running asynchronous calls.
    pub fn async_workers(&self) -> usize {
        self.async_workers
    }

    /// Asynchronous calls queued at most; more get 429.
    pub fn async_capacity(&self) -> usize {
        self.async_capacity
    }
}

/// Builds a [`GatewayConfig`].
#[derive(Debug, Clone)]
#[must_use]
pub struct GatewayConfigBuilder {
    config: GatewayConfig,
}

impl GatewayConfigBuilder {
    /// Sets the namespace of a function named without one.
    pub fn default_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.config.default_namespace = namespace.into();
        self
    }

    /// Sets the largest request body.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.config.body_limit = bytes;
        self
    }

    /// Sets the deadline of a call without `x-timeout`.
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.config.default_timeout = timeout;
        self
    }

    /// Sets the cap on a call's deadline.
    pub fn max_timeout(mut self, timeout: Duration) -> Self {
        self.config.max_timeout = timeout;
        self
    }

    /// Sets the calls held per function at zero.
    pub fn max_held(mut self, held: u64) -> Self {
        self.config.max_held = held;
        self
    }

    /// Sets the endpoints tried for one call when connections fail (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.config.max_attempts = attempts.max(1);
        self
    }

    /// Requires `credentials` on `/system/*`.
    pub fn credentials(mut self, credentials: BasicAuth) -> Self {
        self.config.credentials = Some(credentials);
        self
    }

    /// Requires the credentials on function calls too.
    pub fn protect_functions(mut self, protect: bool) -> Self {
        self.config.protect_functions = protect;
        self
    }

    /// Routes only to functions of `namespace`.
    pub fn watch_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.config.watch_namespace = Some(namespace.into());
        self
    }

    /// Selects functions' EndpointSlices by `selector`; `None` takes every Service.
    pub fn endpoint_selector(mut self, selector: Option<String>) -> Self {
        self.config.endpoint_selector = selector;
        self
    }

    /// Sets how long a stopping gateway lets calls finish.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.config.drain_timeout = timeout;
        self
    }

    /// Sets the tasks running asynchronous calls (at least 1).
    pub fn async_workers(mut self, workers: usize) -> Self {
        self.config.async_workers = workers.max(1);
        self
    }

    /// Sets the asynchronous calls queued at most (at least 1).
    pub fn async_capacity(mut self, capacity: usize) -> Self {
        self.config.async_capacity = capacity.max(1);
        self
    }

    /// The configuration.
    pub fn build(self) -> GatewayConfig {
        self.config
    }
}
