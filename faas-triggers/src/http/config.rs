//! [`HttpTriggerConfig`]: how the HTTP trigger listens and what it accepts.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// The address the HTTP trigger listens on unless told otherwise (`127.0.0.1:8080`).
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

/// The body limit unless told otherwise (16 MiB, as the default function policy).
pub const DEFAULT_MAX_BODY: usize = faas_core::policy::DEFAULT_MAX_BODY_BYTES;

/// How the HTTP trigger listens and what it accepts.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | [`addr`](Self::with_addr) | `127.0.0.1:8080` | where to listen (unless a listener is given) |
/// | [`max_body`](Self::with_max_body) | 16 MiB | larger bodies get 413 (a function's own, smaller limit wins) |
/// | [`default_function`](Self::with_default_function) | the only function, if there is one | what `POST /` calls |
/// | [`declared_routes`](Self::with_declared_routes) | on | serve the paths of `TriggerSpec::Http` |
/// | [`drain_timeout`](Self::with_drain_timeout) | 30 s | how long shutdown waits for in-flight requests |
/// | [`header_read_timeout`](Self::with_header_read_timeout) | 30 s | a client must send its headers within it |
/// | [`async_queue_capacity`](Self::with_async_queue_capacity) | 1024 | queued async calls; one more gets 429 |
/// | [`async_concurrency`](Self::with_async_concurrency) | 16 | async calls running at once |
/// | [`callback_attempts`](Self::with_callback_attempts) | 3 | tries to POST a result to `x-callback-url` |
/// | [`http2`](Self::with_http2) | on | also serve HTTP/2 with prior knowledge (h2c) |
/// | [`max_timeout`](Self::with_max_timeout) | none | caps every call's deadline |
///
/// ```
/// use std::time::Duration;
/// use faas_triggers::http::HttpTriggerConfig;
///
/// let config = HttpTriggerConfig::default()
///     .with_addr(([127, 0, 0, 1], 3000).into())
///     .with_max_body(1024 * 1024)
///     .with_default_function("echo")
///     .with_drain_timeout(Duration::from_secs(10));
/// assert_eq!(config.max_body(), 1024 * 1024);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use]
pub struct HttpTriggerConfig {
    addr: SocketAddr,
    max_body: usize,
    default_function: Option<String>,
    declared_routes: bool,
    drain_timeout: Duration,
    header_read_timeout: Duration,
    async_queue_capacity: usize,
    async_concurrency: usize,
    callback_attempts: u32,
    http2: bool,
    max_timeout: Option<Duration>,
}

impl Default for HttpTriggerConfig {
    fn default() -> Self {
        HttpTriggerConfig {
            addr: DEFAULT_ADDR,
            max_body: DEFAULT_MAX_BODY,
            default_function: None,
            declared_routes: true,
            drain_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(30),
            async_queue_capacity: 1024,
            async_concurrency: 16,
            callback_attempts: 3,
            http2: true,
            max_timeout: None,
        }
    }
}

impl HttpTriggerConfig {
    /// The defaults, listening on `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self::default().with_addr(addr)
    }

    /// Listens on `addr` (ignored when the trigger is given a listener).
    pub fn with_addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Refuses bodies over `bytes` with 413.
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Makes `POST /` (and any path nothing else serves) call `function`.
    pub fn with_default_function(mut self, function: impl Into<String>) -> Self {
        self.default_function = Some(function.into());
        self
    }

    /// Whether the paths functions declare with `TriggerSpec::Http` are served.
    pub fn with_declared_routes(mut self, enabled: bool) -> Self {
        self.declared_routes = enabled;
        self
    }

    /// How long shutdown waits for in-flight requests (and queued async calls)
    /// before it drops them.
    pub fn with_drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// How long a client may take to send a request's headers.
    pub fn with_header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How many async calls may wait in the queue (at least 1).
    pub fn with_async_queue_capacity(mut self, capacity: usize) -> Self {
        self.async_queue_capacity = capacity.max(1);
        self
    }

    /// How many async calls run at once (at least 1).
    pub fn with_async_concurrency(mut self, concurrency: usize) -> Self {
        self.async_concurrency = concurrency.max(1);
        self
    }

    /// How many times a result is POSTed to its `x-callback-url` before it is
    /// given up (logged); at least 1.
    pub fn with_callback_attempts(mut self, attempts: u32) -> Self {
        self.callback_attempts = attempts.max(1);
        self
    }

    /// Whether HTTP/2 with prior knowledge (h2c) is served next to HTTP/1.1.
    pub fn with_http2(mut self, enabled: bool) -> Self {
        self.http2 = enabled;
        self
    }

    /// Caps every call's deadline at `timeout`, below what the functions'
    /// policies and `x-timeout` allow (the runtime's `FAAS_TIMEOUT`).
    pub fn with_max_timeout(mut self, timeout: Duration) -> Self {
        self.max_timeout = Some(timeout);
        self
    }

    /// Where to listen.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The body limit in bytes.
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// The function `POST /` calls, if set.
    pub fn default_function(&self) -> Option<&str> {
        self.default_function.as_deref()
    }

    /// Whether declared paths are served.
    pub fn declared_routes(&self) -> bool {
        self.declared_routes
    }

    /// How long shutdown waits for in-flight requests.
    pub fn drain_timeout(&self) -> Duration {
        self.drain_timeout
    }

    /// How long a client may take to send its headers.
    pub fn header_read_timeout(&self) -> Duration {
        self.header_read_timeout
    }

    /// The async queue's capacity.
    pub fn async_queue_capacity(&self) -> usize {
        self.async_queue_capacity
    }

    /// How many async calls run at once.
    pub fn async_concurrency(&self) -> usize {
        self.async_concurrency
    }

    /// How many times a callback is tried.
    pub fn callback_attempts(&self) -> u32 {
        self.callback_attempts
    }

    /// Whether h2c is served.
    pub fn http2(&self) -> bool {
        self.http2
    }

    /// The cap on every call's deadline, if set.
    pub fn max_timeout(&self) -> Option<Duration> {
        self.max_timeout
    }
}
