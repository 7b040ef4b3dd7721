//! [`RuntimeConfig`]: how the runtime serves, read from a pod's environment.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::http::HttpTriggerConfig;
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

/// The NATS server of the functions' `nats` triggers (`nats://host:4222`).
pub const ENV_NATS_URL: &str = "FAAS_NATS_URL";
/// The Redis server of the functions' `redis` triggers (`redis://host:6379`).
pub const ENV_REDIS_URL: &str = "FAAS_REDIS_URL";
/// The PostgreSQL database of the functions' `postgres` triggers
/// (`postgres://user:password@host/db` or `host=.. user=..`).
pub const ENV_POSTGRES_URL: &str = "FAAS_POSTGRES_URL";
/// The directory a relative `storage` trigger directory is under.
pub const ENV_STORAGE_ROOT: &str = "FAAS_STORAGE_ROOT";
/// Where the `kube` triggers keep their checkpoints: `file:/DIR/` (one file
/// per function in that directory), `configmap:NAMESPACE` (a ConfigMap
/// `<function>-kube-checkpoint` there) or `memory` (the default).
pub const ENV_KUBE_CHECKPOINT: &str = "FAAS_KUBE_CHECKPOINT";
/// `false` to run none of the functions' event sources in this process
/// (default `true`; a connector beside the gateway may run them instead).
pub const ENV_EVENTS: &str = "FAAS_EVENTS";

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
/// | `FAAS_EVENTS` | `true` | run the event sources the functions declare (`nats`, `redis`, `postgres`, `storage`, `kube`) |
/// | `FAAS_NATS_URL` | (needed by `nats`) | the NATS server |
/// | `FAAS_REDIS_URL` | (needed by `redis`) | the Redis server |
/// | `FAAS_POSTGRES_URL` | (needed by `postgres`) | the database |
/// | `FAAS_STORAGE_ROOT` | none | the directory relative `storage` directories are under |
/// | `FAAS_KUBE_CHECKPOINT` | `memory` | `file:/DIR/` or `configmap:NAMESPACE`: where `kube` sources keep their checkpoints |
///
/// A source whose server is named but unreachable does not stop the
/// runtime: it retries with back-off and `/_/ready` answers 503 until it
/// connects. A source whose variable is missing is an error naming it.
/// The `kube` sources use the pod's service account (or `KUBECONFIG`).
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
    events: bool,
    pub(crate) sources: std::collections::BTreeMap<&'static str, String>,
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
            events: true,
            sources: std::collections::BTreeMap::new(),
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
                ENV_EVENTS => {
                    config.events = match value.to_ascii_lowercase().as_str() {
                        "1" | "true" | "yes" | "on" => true,
                        "0" | "false" | "no" | "off" => false,
                        _ => return Err(invalid("true or false")),
                    };
                }
                ENV_NATS_URL | ENV_REDIS_URL | ENV_POSTGRES_URL | ENV_STORAGE_ROOT
                | ENV_KUBE_CHECKPOINT => {
                    let key = [
                        ENV_NATS_URL,
                        ENV_REDIS_URL,
                        ENV_POSTGRES_URL,
                        ENV_STORAGE_ROOT,
                        ENV_KUBE_CHECKPOINT,
                    ]
                    .into_iter()
                    .find(|known| *known == key)
                    .expect("matched above");
                    config.sources.insert(key, value.to_owned());
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

    /// Whether the functions' event sources run in this process.
    pub fn events(&self) -> bool {
        self.events
    }

    /// Runs (or not) the functions' event sources in this process.
    pub fn with_events(mut self, enabled: bool) -> Self {
        self.events = enabled;
        self
    }

    /// Sets the value of an event source's variable (`FAAS_NATS_URL`,
    /// `FAAS_REDIS_URL`, `FAAS_POSTGRES_URL`, `FAAS_STORAGE_ROOT`,
    /// `FAAS_KUBE_CHECKPOINT`), as the environment would.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when `variable` is none of them.
    pub fn with_source_setting(mut self, variable: &str, value: impl Into<String>) -> Result<Self> {
        let known = [
            ENV_NATS_URL,
            ENV_REDIS_URL,
            ENV_POSTGRES_URL,
            ENV_STORAGE_ROOT,
            ENV_KUBE_CHECKPOINT,
        ];
        let Some(key) = known.into_iter().find(|known| *known == variable) else {
            return Err(Error::InvalidConfig {
                key: variable.to_owned(),
                value: value.into(),
                reason: format!("not an event source setting; known: {}", known.join(", ")),
            });
        };
        self.sources.insert(key, value.into());
        Ok(self)
    }

    /// The value of an event source's variable, if set.
    pub fn source_setting(&self, variable: &str) -> Option<&str> {
        self.sources.get(variable).map(String::as_str)
    }
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
