//! The function runtime: what a function's own binary serves in a pod.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use faas_core::{LocalExecutor, Registry, ShutdownHandle};
use tokio::net::TcpListener;

use crate::http::{HttpTrigger, HttpTriggerConfig};
use crate::{Error, Result};

/// The port to listen on (default 8080).
pub const ENV_PORT: &str = "PORT";
/// The address to listen on (default `0.0.0.0`, as in a container).
pub const ENV_POD_IP: &str = "POD_IP";
/// The function `POST /` calls (default: the only registered one).
pub const ENV_FUNCTION: &str = "FAAS_FUNCTION";
/// The body limit: bytes, or with a unit (`512KiB`, `16MiB`, `1GB`).
pub const ENV_MAX_BODY: &str = "FAAS_MAX_BODY";
/// The cap on every call's deadline (`30s`, `1m`, `1500ms`, or seconds).
pub const ENV_TIMEOUT: &str = "FAAS_TIMEOUT";
/// How long shutdown waits for calls in flight (default 30 s).
pub const ENV_DRAIN_TIMEOUT: &str = "FAAS_DRAIN_TIMEOUT";
/// `true` to also fire the functions' cron schedules in this process
/// (default `false`: on a cluster the platform fires them, once).
pub const ENV_CRON: &str = "FAAS_CRON";

/// The port listened on unless `PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 8080;

/// How the runtime serves: the HTTP trigger's configuration, the shutdown
/// grace period, and whether cron schedules fire in-process.
///
/// [`from_env`](Self::from_env) reads it from the environment a pod gives:
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `PORT` | 8080 | port |
/// | `POD_IP` | `0.0.0.0` | bind address |
/// | `FAAS_FUNCTION` | the only function | what `POST /` calls |
/// | `FAAS_MAX_BODY` | 16 MiB | body limit (`1048576`, `512KiB`, `16MiB`) |
/// | `FAAS_TIMEOUT` | the functions' policies | cap on every call's deadline |
/// | `FAAS_DRAIN_TIMEOUT` | 30 s | how long shutdown waits for calls in flight |
/// | `FAAS_CRON` | `false` | also fire cron schedules in this process |
///
/// ```
/// use faas_triggers::RuntimeConfig;
///
/// let config = RuntimeConfig::from_vars([
///     ("PORT", "9000"),
///     ("POD_IP", "127.1.0.7"),
///     ("FAAS_FUNCTION", "echo"),
///     ("FAAS_MAX_BODY", "1MiB"),
/// ])?;
/// assert_eq!(config.http().addr(), "127.1.0.7:9000".parse().unwrap());
/// assert_eq!(config.http().max_body(), 1024 * 1024);
/// assert_eq!(config.http().default_function(), Some("echo"));
/// # Ok::<(), faas_triggers::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use]
pub struct RuntimeConfig {
    http: HttpTriggerConfig,
    drain_timeout: Duration,
    cron: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            http: HttpTriggerConfig::new(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                DEFAULT_PORT,
            )),
            drain_timeout: Duration::from_secs(30),
            cron: false,
        }
    }
}

impl RuntimeConfig {
    /// Reads the configuration from the process environment.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the variable that does not parse.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(std::env::vars())
    }

    /// Reads the configuration from `vars` (name, value pairs), as
    /// [`from_env`](Self::from_env) does from the environment.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the variable that does not parse.
    pub fn from_vars<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Result<Self>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut config = RuntimeConfig::default();
        let mut ip = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let mut port = DEFAULT_PORT;
        for (key, value) in vars {
            let (key, value) = (key.as_ref(), value.as_ref().trim());
            let invalid = |reason: &str| Error::InvalidConfig {
                key: key.to_owned(),
                value: value.to_owned(),
                reason: reason.to_owned(),
            };
            if value.is_empty() {
                continue;
            }
            match key {
                ENV_PORT => {
                    port = value
                        .parse()
                        .map_err(|_| invalid("a port number, 1 to 65535"))?
                }
                ENV_POD_IP => {
                    ip = value
                        .parse()
                        .map_err(|_| invalid("an IPv4 or IPv6 address"))?
                }
                ENV_FUNCTION => config.http = config.http.with_default_function(value),
                ENV_MAX_BODY => {
                    let bytes = parse_size(value).ok_or_else(|| {
                        invalid("a size in bytes, e.g. 1048576, 512KiB, 16MiB or 1GB")
                    })?;
                    config.http = config.http.with_max_body(bytes);
                }
                ENV_TIMEOUT => {
                    let timeout = crate::http::parse_timeout(value)
                        .ok_or_else(|| invalid("a positive duration, e.g. 30s, 1m or 1500ms"))?;
                    config.http = config.http.with_max_timeout(timeout);
                }
                ENV_DRAIN_TIMEOUT => {
                    let timeout = humantime::parse_duration(value)
                        .map_err(|_| invalid("a duration, e.g. 30s or 2m"))?;
                    config = config.with_drain_timeout(timeout);
                }
                ENV_CRON => {
                    config.cron = match value.to_ascii_lowercase().as_str() {
                        "1" | "true" | "yes" | "on" => true,
                        "0" | "false" | "no" | "off" => false,
                        _ => return Err(invalid("true or false")),
                    };
                    if config.cron && !cfg!(feature = "cron") {
                        return Err(invalid("this build of faas-triggers has no `cron` feature"));
                    }
                }
                _ => {}
            }
        }
        config.http = config.http.with_addr(SocketAddr::new(ip, port));
        Ok(config)
    }

    /// Replaces the HTTP trigger's configuration.
    pub fn with_http(mut self, http: HttpTriggerConfig) -> Self {
        self.http = http;
        self
    }

    /// How long shutdown waits for calls in flight, in the HTTP trigger and
    /// in the host.
    pub fn with_drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self.http = self.http.with_drain_timeout(timeout);
        self
    }

    /// Whether the functions' cron schedules also fire in this process.
    #[cfg(feature = "cron")]
    pub fn with_cron(mut self, enabled: bool) -> Self {
        self.cron = enabled;
        self
    }

    /// The HTTP trigger's configuration.
    pub fn http(&self) -> &HttpTriggerConfig {
        &self.http
    }

    /// The shutdown grace period.
    pub fn drain_timeout(&self) -> Duration {
        self.drain_timeout
    }

    /// Whether cron schedules fire in this process.
    pub fn cron(&self) -> bool {
        self.cron
    }
}

/// Serves a registry over HTTP the way a function pod does: the OpenFaaS
/// watchdog's contract (`POST /` calls the function, `/_/health`,
/// `/_/ready`, `/metrics`), on a configured address or a given listener.
///
/// A value the embedding program drives: [`run`](Self::run) returns once
/// shut down through [`shutdown_handle`](Self::shutdown_handle), or on SIGTERM
/// / SIGINT when [`shutdown_on_signal`](Self::shutdown_on_signal) is set.
/// [`serve`] is the one-line entry point for a function's `main`.
///
/// ```no_run
/// use faas_core::{FunctionDefinition, Registry};
/// use faas_triggers::{Runtime, RuntimeConfig};
///
/// async fn echo(body: bytes::Bytes) -> bytes::Bytes { body }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = Registry::new();
/// registry.register(FunctionDefinition::from_handler("echo", echo))?;
/// let listener = tokio::net::TcpListener::bind("127.1.0.9:8080").await?;
/// let runtime = Runtime::new(registry, RuntimeConfig::default()).with_listener(listener);
/// let stop = runtime.shutdown_handle();
/// tokio::spawn(async move {
///     tokio::time::sleep(std::time::Duration::from_secs(60)).await;
///     stop.shutdown();
/// });
/// runtime.run().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use]
pub struct Runtime {
    registry: Registry,
    config: RuntimeConfig,
    listener: Option<TcpListener>,
    shutdown: ShutdownHandle,
    on_signal: bool,
}

impl Runtime {
    /// A runtime for `registry` with `config`; it binds when it runs.
    pub fn new(registry: Registry, config: RuntimeConfig) -> Self {
        Runtime {
            registry,
            config,
            listener: None,
            shutdown: ShutdownHandle::new(),
            on_signal: false,
        }
    }

    /// A runtime configured from the environment ([`RuntimeConfig::from_env`]).
    ///
    /// # Errors
    ///
    /// As [`RuntimeConfig::from_env`].
    pub fn from_env(registry: Registry) -> Result<Self> {
        Ok(Self::new(registry, RuntimeConfig::from_env()?))
    }

    /// Serves `listener` instead of binding the configured address.
    pub fn with_listener(mut self, listener: TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Binds the configured address now, so the address is known before
    /// [`run`](Self::run).
    ///
    /// # Errors
    ///
    /// [`Error::Bind`] when the address cannot be bound.
    pub async fn bind(mut self) -> Result<Self> {
        if self.listener.is_none() {
            let addr = self.config.http.addr();
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Bind { addr, source })?;
            self.listener = Some(listener);
        }
        Ok(self)
    }

    /// Also shuts down on SIGTERM or SIGINT.
    pub fn shutdown_on_signal(mut self) -> Self {
        self.on_signal = true;
        self
    }

    /// The address served: the listener's when bound, else the configured one.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the listener's address cannot be read.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        match &self.listener {
            Some(listener) => listener.local_addr().map_err(|source| Error::Io {
                context: "reading the listener's address",
                source,
            }),
            None => Ok(self.config.http.addr()),
        }
    }

    /// A handle that shuts the runtime down (gracefully) from anywhere.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// The configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Serves until shut down, then drains: stops accepting, lets calls in
    /// flight finish (up to the drain timeout) and returns.
    ///
    /// # Errors
    ///
    /// [`Error::Bind`] when the address cannot be bound, [`Error::UnknownFunction`]
    /// when `FAAS_FUNCTION` names no registered function, [`Error::Core`] when a
    /// trigger fails or the signal handlers cannot be installed.
    pub async fn run(self) -> Result<()> {
        let Runtime {
            registry,
            config,
            listener,
            shutdown,
            on_signal,
        } = self;
        // Fail fast, with the crate's own error, on a configuration that cannot serve.
        crate::http::router_for(&registry, &config.http)?;
        let http = match listener {
            Some(listener) => HttpTrigger::from_listener(listener, config.http.clone()),
            None => HttpTrigger::bind(config.http.clone()).await?,
        };
        let builder = LocalExecutor::builder(registry.clone())
            .trigger(http)
            .shutdown_grace(config.drain_timeout);
        #[cfg(feature = "cron")]
        let builder = if config.cron {
            builder.trigger(crate::cron::CronTrigger::from_registry(&registry)?)
        } else {
            builder
        };
        let mut executor = builder.build();
        if on_signal {
            executor = executor.shutdown_on_signal();
        }
        let executor_shutdown = executor.shutdown_handle();
        let bridge = tokio::spawn(async move {
            shutdown.cancelled().await;
            executor_shutdown.shutdown();
        });
        let result = executor.run().await;
        bridge.abort();
        result.map_err(Error::from)
    }
}

/// Serves `registry` as a function pod: configured from the environment
/// ([`RuntimeConfig::from_env`]), until SIGTERM or SIGINT, then drains and
/// returns. The entry point of a function's binary.
///
/// It installs no tracing subscriber: a binary that wants logs sets one up
/// before calling it.
///
/// ```no_run
/// use faas_core::{FunctionDefinition, Json, Registry};
///
/// #[derive(serde::Deserialize)]
/// struct Greet { name: String }
///
/// async fn hello(Json(req): Json<Greet>) -> String {
///     format!("hello, {}", req.name)
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), faas_triggers::Error> {
///     let registry = Registry::new();
///     registry.register(FunctionDefinition::from_handler("hello", hello))?;
///     faas_triggers::serve(registry).await
/// }
/// ```
///
/// # Errors
///
/// As [`RuntimeConfig::from_env`] and [`Runtime::run`].
pub async fn serve(registry: Registry) -> Result<()> {
    Runtime::from_env(registry)?
        .shutdown_on_signal()
        .run()
        .await
}

/// Parses a size: plain bytes, or a number with `K`/`KB`/`KiB`, `M`/`MB`/`MiB`,
/// `G`/`GB`/`GiB` (decimal for `KB`, binary for `K` and `KiB`, as Kubernetes
/// quantities: `Ki`, `Mi`, `Gi` are accepted too).
fn parse_size(value: &str) -> Option<usize> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: u64 = number.parse().ok()?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "ki" | "kib" => 1 << 10,
        "kb" => 1_000,
        "m" | "mi" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gi" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        _ => return None,
    };
    usize::try_from(number.checked_mul(multiplier)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("512KiB"), Some(512 * 1024));
        assert_eq!(parse_size("16Mi"), Some(16 << 20));
        assert_eq!(parse_size("2MB"), Some(2_000_000));
        assert_eq!(parse_size("1 GiB"), Some(1 << 30));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("1TB"), None);
        assert_eq!(parse_size("99999999999999999999G"), None);
    }

    #[test]
    fn environment() {
        let config = RuntimeConfig::from_vars([("HOME", "/root")]).unwrap();
        assert_eq!(config.http().addr(), "0.0.0.0:8080".parse().unwrap());
        assert_eq!(config.http().default_function(), None);
        assert!(!config.cron());

        let config = RuntimeConfig::from_vars([
            ("PORT", "9000"),
            ("POD_IP", "127.1.2.3"),
            ("FAAS_TIMEOUT", "5s"),
            ("FAAS_DRAIN_TIMEOUT", "2s"),
            ("FAAS_CRON", "true"),
        ])
        .unwrap();
        assert_eq!(config.http().addr(), "127.1.2.3:9000".parse().unwrap());
        assert_eq!(config.http().max_timeout(), Some(Duration::from_secs(5)));
        assert_eq!(config.drain_timeout(), Duration::from_secs(2));
        assert_eq!(config.http().drain_timeout(), Duration::from_secs(2));
        assert!(config.cron());

        for (key, value) in [
            ("PORT", "http"),
            ("PORT", "70000"),
            ("POD_IP", "localhost"),
            ("FAAS_MAX_BODY", "big"),
            ("FAAS_TIMEOUT", "0s"),
            ("FAAS_CRON", "maybe"),
        ] {
            let error = RuntimeConfig::from_vars([(key, value)]).unwrap_err();
            let text = error.to_string();
            assert!(text.contains(key) && text.contains(value), "{text}");
        }
    }
}
