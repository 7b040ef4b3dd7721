//! [`LocalExecutor`]: the embedded host. It runs functions in-process with their
//! triggers, and shuts down gracefully.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use tower::{Layer, Service};

use crate::error::{Error, FunctionError, Result};
use crate::function::FunctionService;
use crate::invocation::Invocation;
use crate::layer::StateLayer;
use crate::logs::{DEFAULT_LOG_CAPACITY, InvocationLog};
use crate::metrics::Metrics;
use crate::output::Response;
use crate::registry::Registry;
use crate::trigger::{Dispatcher, Trigger};

/// The default time in-flight calls get to finish on shutdown (30 s).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Runs functions in-process: the embedded default host.
///
/// It serves the functions of a [`Registry`] to its triggers through a
/// [`Dispatcher`], and to direct calls with [`invoke`](Self::invoke). The
/// program drives it with [`run`](Self::run), which returns once it has shut down:
/// after [`HostShutdown::shutdown`], a signal when
/// [`shutdown_on_signal`](Self::shutdown_on_signal) is set, or a trigger failing.
///
/// Shutdown is graceful: the triggers are told to stop, new calls are refused
/// with `Unavailable` (503), calls in flight (retries included) get up to the
/// grace period to finish, and whatever still runs then is cancelled: its
/// context's token is cancelled and its future dropped.
///
/// ```
/// use faas_core::{FunctionDefinition, Invocation, LocalExecutor, Registry};
///
/// async fn hello(name: String) -> String { format!("hello, {name}") }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let registry = Registry::from([FunctionDefinition::from_handler("hello", hello)]);
/// let executor = LocalExecutor::builder(registry).build();
/// let response = executor.invoke("hello", Invocation::new("ada")).await.unwrap();
/// assert_eq!(response.body(), "hello, ada");
///
/// let shutdown = executor.shutdown_handle();
/// let running = tokio::spawn(executor.run());
/// shutdown.shutdown();
/// running.await.unwrap().unwrap();
/// # });
/// ```
pub struct LocalExecutor {
    dispatcher: Dispatcher,
    triggers: Vec<Box<dyn Trigger>>,
    shutdown: HostShutdown,
    grace: Duration,
    on_signal: bool,
}

impl fmt::Debug for LocalExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalExecutor")
            .field("dispatcher", &self.dispatcher)
            .field(
                "triggers",
                &self.triggers.iter().map(|t| t.name()).collect::<Vec<_>>(),
            )
            .field("grace", &self.grace)
            .field("on_signal", &self.on_signal)
            .finish()
    }
}

/// Builds a [`LocalExecutor`].
#[must_use]
pub struct LocalExecutorBuilder {
    registry: Registry,
    triggers: Vec<Box<dyn Trigger>>,
    grace: Duration,
    metrics: Option<Metrics>,
    log: Option<InvocationLog>,
}

impl fmt::Debug for LocalExecutorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalExecutorBuilder")
            .field("registry", &self.registry)
            .field("triggers", &self.triggers.len())
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

impl LocalExecutorBuilder {
    /// Adds a trigger; it starts when the executor runs.
    pub fn trigger(mut self, trigger: impl Trigger) -> Self {
        self.triggers.push(Box::new(trigger));
        self
    }

    /// Adds a boxed trigger.
    pub fn boxed_trigger(mut self, trigger: Box<dyn Trigger>) -> Self {
        self.triggers.push(trigger);
        self
    }

    /// Wraps every call of every function in `layer` (see [`Registry::layer`]):
    /// authentication, tracing, a shared client as an
    /// [`Extension`](crate::Extension), any tower layer of invocations.
    ///
    /// ```
    /// use faas_core::{Extension, FunctionDefinition, Invocation, LocalExecutor, Registry};
    ///
    /// async fn region(Extension(region): Extension<&'static str>) -> &'static str { region }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let executor = LocalExecutor::builder(Registry::from([FunctionDefinition::from_handler("region", region)]))
    ///     .layer(Extension("eu-west"))
    ///     .build();
    /// assert_eq!(executor.invoke("region", Invocation::new("")).await.unwrap().body(), "eu-west");
    /// # });
    /// ```
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

    /// Gives every call a clone of `state`, read by [`State<S>`](crate::State):
    /// a database pool, an HTTP client, configuration. One state per type;
    /// give several types for several states.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use faas_core::{FunctionDefinition, Invocation, LocalExecutor, Registry, State};
    ///
    /// #[derive(Clone)]
    /// struct Config { greeting: Arc<str> }
    ///
    /// async fn greet(State(config): State<Config>, name: String) -> String {
    ///     format!("{}, {name}", config.greeting)
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let executor = LocalExecutor::builder(Registry::from([FunctionDefinition::from_handler("greet", greet)]))
    ///     .state(Config { greeting: "hello".into() })
    ///     .build();
    /// assert_eq!(executor.invoke("greet", Invocation::new("ada")).await.unwrap().body(), "hello, ada");
    /// # });
    /// ```
    pub fn state<S: Clone + Send + Sync + 'static>(self, state: S) -> Self {
        self.layer(StateLayer::new(state))
    }

    /// Sets how long calls in flight get to finish on shutdown (default 30 s).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Records into `metrics` (e.g. shared with an HTTP trigger serving `/metrics`).
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Writes call log lines into `log`.
    pub fn invocation_log(mut self, log: InvocationLog) -> Self {
        self.log = Some(log);
        self
    }

    /// The executor.
    pub fn build(self) -> LocalExecutor {
        let dispatcher = Dispatcher::with_parts(
            self.registry,
            self.metrics.unwrap_or_default(),
            self.log
                .unwrap_or_else(|| InvocationLog::new(DEFAULT_LOG_CAPACITY)),
        );
        LocalExecutor {
            dispatcher,
            triggers: self.triggers,
            shutdown: HostShutdown::new(),
            grace: self.grace,
            on_signal: false,
        }
    }
}

impl LocalExecutor {
    /// A builder serving `registry`.
    pub fn builder(registry: Registry) -> LocalExecutorBuilder {
        LocalExecutorBuilder {
            registry,
            triggers: Vec::new(),
            grace: DEFAULT_SHUTDOWN_GRACE,
            metrics: None,
            log: None,
        }
    }

    /// An executor serving `registry`, without triggers, with the defaults.
    pub fn new(registry: Registry) -> Self {
        LocalExecutor::builder(registry).build()
    }

    /// The dispatcher triggers and other hosts call functions through.
    pub fn dispatcher(&self) -> Dispatcher {
        self.dispatcher.clone()
    }

    /// The functions it serves.
    pub fn registry(&self) -> &Registry {
        self.dispatcher.registry()
    }

    /// Its metrics.
    pub fn metrics(&self) -> &Metrics {
        self.dispatcher.metrics()
    }

    /// Calls a function once, as [`Dispatcher::dispatch`].
    ///
    /// # Errors
    ///
    /// As [`Dispatcher::dispatch`].
    pub fn invoke<'a>(
        &'a self,
        function: &'a str,
        invocation: Invocation,
    ) -> impl Future<Output = Result<Response, FunctionError>> + Send + 'a {
        // The dispatcher's future itself: wrapping it in another would hold a
        // second copy of the invocation.
        self.dispatcher.dispatch(function, invocation)
    }

    /// A handle that shuts the executor down from anywhere.
    pub fn shutdown_handle(&self) -> HostShutdown {
        self.shutdown.clone()
    }

    /// Also shuts down on SIGINT or SIGTERM (Ctrl-C elsewhere than Unix).
    #[must_use]
    pub fn shutdown_on_signal(mut self) -> Self {
        self.on_signal = true;
        self
    }

    /// Runs the triggers until shutdown, then drains and returns.
    ///
    /// # Errors
    ///
    /// The first error of a trigger (which also starts the shutdown), or
    /// [`Error::Signal`] when the signal handlers cannot be installed.
    pub async fn run(self) -> Result<()> {
        let LocalExecutor {
            dispatcher,
            triggers,
            shutdown,
            grace,
            on_signal,
        } = self;
        let token = shutdown.token.clone();
        let mut signals = if on_signal {
            Some(Signals::install().map_err(Error::Signal)?)
        } else {
            None
        };

        let mut tasks = JoinSet::new();
        for trigger in triggers {
            let name = trigger.name().to_owned();
            tracing::debug!(trigger = %name, "starting trigger");
            let dispatcher = dispatcher.clone();
            let stop = token.child_token();
            tasks.spawn(async move { (name, trigger.run(dispatcher, stop).await) });
        }

        let mut first_error = None;
        loop {
            tokio::select! {
                () = token.cancelled() => break,
                () = wait_signal(&mut signals) => {
                    tracing::info!("shutdown signal received");
                    token.cancel();
                    break;
                }
                Some(joined) = tasks.join_next() => {
                    if let Some(error) = trigger_ended(joined) {
                        first_error.get_or_insert(error);
                        token.cancel();
                        break;
                    }
                }
            }
        }

        let deadline = Instant::now() + grace;
        tracing::info!(in_flight = dispatcher.in_flight(), ?grace, "shutting down");
        dispatcher.stop_accepting();
        let drained = tokio::time::timeout_at(deadline, async {
            while let Some(joined) = tasks.join_next().await {
                if let Some(error) = trigger_ended(joined) {
                    first_error.get_or_insert(error);
                }
            }
            dispatcher.wait_drained().await;
        })
        .await
        .is_ok();
        if !drained {
            tracing::warn!(
                in_flight = dispatcher.in_flight(),
                "grace period over; cancelling the calls still running"
            );
            dispatcher.cancel_all().await;
            tasks.abort_all();
            while let Some(joined) = tasks.join_next().await {
                if let Err(error) = &joined
                    && error.is_cancelled()
                {
                    continue;
                }
                if let Some(error) = trigger_ended(joined) {
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// Logs how a trigger ended; returns its error, if any.
fn trigger_ended(joined: Result<(String, Result<()>), tokio::task::JoinError>) -> Option<Error> {
    match joined {
        Ok((name, Ok(()))) => {
            tracing::debug!(trigger = %name, "trigger stopped");
            None
        }
        Ok((name, Err(error))) => {
            tracing::error!(trigger = %name, error = %error, "trigger failed");
            Some(error)
        }
        Err(error) => {
            tracing::error!(error = %error, "trigger task failed");
            Some(Error::Join(error))
        }
    }
}

/// Shuts a host down gracefully: a [`LocalExecutor`], or the function
/// runtime of `faas-triggers` built on one. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct HostShutdown {
    token: CancellationToken,
}

impl HostShutdown {
    /// A handle not yet triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the shutdown (idempotent).
    pub fn shutdown(&self) {
        self.token.cancel();
    }

    /// Whether the shutdown started.
    pub fn is_shutdown(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Waits until the shutdown starts.
    pub async fn cancelled(&self) {
        self.token.cancelled().await;
    }

    /// The token cancelled on shutdown.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }
}

#[cfg(unix)]
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> std::io::Result<Self> {
        Ok(Signals)
    }

    async fn recv(&mut self) {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn wait_signal(signals: &mut Option<Signals>) {
    match signals {
        Some(signals) => signals.recv().await,
        None => std::future::pending().await,
    }
}
