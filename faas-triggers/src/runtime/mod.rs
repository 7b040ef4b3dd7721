//! The function runtime: what a function's own binary serves in a pod.

mod config;
pub mod manifests;
mod sources;

use std::net::SocketAddr;

use faas_core::layer::StateLayer;
use faas_core::{
    FunctionError, FunctionService, HostShutdown, Invocation, LocalExecutor, Registry, Response,
};
use tokio::net::TcpListener;
use tower::{Layer, Service};

pub use config::{
    DEFAULT_PORT, ENV_CRON, ENV_DRAIN_TIMEOUT, ENV_EVENTS, ENV_FUNCTION, ENV_KUBE_CHECKPOINT,
    ENV_MAX_BODY, ENV_NATS_URL, ENV_POD_IP, ENV_PORT, ENV_POSTGRES_URL, ENV_REDIS_URL,
    ENV_STORAGE_ROOT, ENV_TIMEOUT, RuntimeConfig,
};

use crate::http::HttpTrigger;
use crate::{Error, Result};

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
    shutdown: HostShutdown,
    on_signal: bool,
}

impl Runtime {
    /// A runtime for `registry` with `config`; it binds when it runs.
    pub fn new(registry: Registry, config: RuntimeConfig) -> Self {
        Runtime {
            registry,
            config,
            listener: None,
            shutdown: HostShutdown::new(),
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
            let addr = self.config.http().addr();
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Bind { addr, source })?;
            self.listener = Some(listener);
        }
        Ok(self)
    }

    /// Wraps every call of every function in `layer`, as
    /// [`LocalExecutorBuilder::layer`](faas_core::LocalExecutorBuilder::layer).
    pub fn layer<L>(self, layer: L) -> Self
    where
        L: Layer<FunctionService> + Send + Sync + 'static,
        L::Service: Service<Invocation, Response = Response, Error = FunctionError>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as Service<Invocation>>::Future: Send + 'static,
    {
        self.registry.layer(layer);
        self
    }

    /// Gives every call a clone of `state`, read by [`State<S>`](faas_core::State),
    /// as [`LocalExecutorBuilder::state`](faas_core::LocalExecutorBuilder::state).
    pub fn state<S: Clone + Send + Sync + 'static>(self, state: S) -> Self {
        self.layer(StateLayer::new(state))
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
            None => Ok(self.config.http().addr()),
        }
    }

    /// A handle that shuts the runtime down (gracefully) from anywhere.
    pub fn shutdown_handle(&self) -> HostShutdown {
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
    /// when `FAAS_FUNCTION` names no registered function,
    /// [`Error::InvalidTrigger`] when an event source a function declares
    /// cannot be set up (a variable it needs is missing: the error names it),
    /// [`Error::Core`] when a trigger fails or the signal handlers cannot be
    /// installed.
    pub async fn run(self) -> Result<()> {
        let Runtime {
            registry,
            config,
            listener,
            shutdown,
            on_signal,
        } = self;
        // Fail fast, with the crate's own error, on a configuration that cannot serve.
        crate::http::router_for(&registry, config.http())?;
        let http = match listener {
            Some(listener) => HttpTrigger::from_listener(listener, config.http().clone()),
            None => HttpTrigger::bind(config.http().clone()).await?,
        };
        let builder = LocalExecutor::builder(registry.clone())
            .trigger(http)
            .shutdown_grace(config.drain_timeout());
        #[cfg(feature = "cron")]
        let builder = if config.cron() {
            builder.trigger(crate::cron::CronTrigger::from_registry(&registry)?)
        } else {
            builder
        };
        let builder = sources::add_event_sources(builder, &registry, &config)?;
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
/// Run with `--manifests`, it prints the `Function` resources of its functions instead and
/// returns (see [`manifests`]): `my-fn --manifests | kubectl apply -f -`.
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
    if manifests::answer_manifests_flag(&registry) {
        return Ok(());
    }
    Runtime::from_env(registry)?
        .shutdown_on_signal()
        .run()
        .await
}
