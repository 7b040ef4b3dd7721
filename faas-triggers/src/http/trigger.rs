//! [`HttpTrigger`]: the HTTP trigger as a value a host drives.

use std::net::SocketAddr;

use async_trait::async_trait;
use faas_core::{Dispatcher, Registry, Trigger, TriggerSpec};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::config::HttpTriggerConfig;
use super::decode::RequestDecoder;
use super::route::Router;
use super::server;
use crate::{Error, Result};

/// Calls functions over HTTP.
///
/// | route | what |
/// |---|---|
/// | `ANY /function/{name}[/rest][?query]` | calls `name` and answers with its response; the function sees `/rest?query` |
/// | `POST /async-function/{name}[/rest]` | queues the call, answers 202 with `x-call-id`; the result goes to `x-callback-url` |
/// | the route templates of `TriggerSpec::Http` (`/orders/{id}`, `/files/{*path}`) | calls the function that declared it (methods as declared), path unchanged, the template's parameters read by `Path<T>` |
/// | `ANY /` (and unrouted paths) | calls the default function (the only one, or [`HttpTriggerConfig::with_default_function`]) |
/// | `GET /_/health` | 200 while the server runs |
/// | `GET /_/ready` | 200, or 503 once draining |
/// | `GET /metrics` | the dispatcher's Prometheus metrics |
///
/// Every response carries `x-call-id` (the caller's, when valid). Every error
/// is the JSON body of [`FunctionError::to_response`](faas_core::FunctionError::to_response)
/// with its status: unknown function 404, malformed JSON 400, wrong content
/// type 415, body too large 413, panic 500, deadline 504, over the function's
/// in-flight limit 429. `x-timeout` asks for a shorter deadline than the
/// policy's; `traceparent` reaches the function's [`Context`](faas_core::Context).
/// A structured-mode CloudEvent (`application/cloudevents+json`) reaches the
/// function in binary mode, and an event the function returns is written back
/// in the mode the request used (or that `Accept` asks for).
///
/// HTTP/1.1 with keep-alive and HTTP/2 with prior knowledge (h2c) are served
/// on the same port. At shutdown the trigger stops accepting connections,
/// finishes the requests in flight and the queued asynchronous calls (up to
/// the drain timeout), and returns.
///
/// Run it under a [`LocalExecutor`](faas_core::LocalExecutor), or on its own
/// with [`serve`](Self::serve) and a [`Dispatcher`].
///
/// ```no_run
/// use faas_core::{FunctionDefinition, LocalExecutor, Registry};
/// use faas_triggers::http::{HttpTrigger, HttpTriggerConfig};
///
/// async fn hello(name: String) -> String {
///     format!("hello, {name}")
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = Registry::new();
/// registry.register(FunctionDefinition::from_handler("hello", hello))?;
/// let trigger = HttpTrigger::bind(HttpTriggerConfig::new(([127, 0, 0, 1], 8080).into())).await?;
/// println!("listening on {}", trigger.local_addr()?);
/// LocalExecutor::builder(registry)
///     .trigger(trigger)
///     .build()
///     .shutdown_on_signal()
///     .run()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct HttpTrigger {
    config: HttpTriggerConfig,
    listener: Option<TcpListener>,
}

impl HttpTrigger {
    /// A trigger that binds `config.addr()` when it starts running.
    pub fn new(config: HttpTriggerConfig) -> Self {
        HttpTrigger {
            config,
            listener: None,
        }
    }

    /// A trigger that binds `config.addr()` now, so that the address (e.g.
    /// the port chosen for port 0) is known before it runs.
    ///
    /// # Errors
    ///
    /// [`Error::Bind`] when the address cannot be bound.
    pub async fn bind(config: HttpTriggerConfig) -> Result<Self> {
        let addr = config.addr();
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        Ok(HttpTrigger {
            config,
            listener: Some(listener),
        })
    }

    /// A trigger that serves an already bound listener (`config.addr()` is
    /// ignored).
    pub fn from_listener(listener: TcpListener, config: HttpTriggerConfig) -> Self {
        HttpTrigger {
            config,
            listener: Some(listener),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HttpTriggerConfig {
        &self.config
    }

    /// The address it listens on: the bound listener's, else the configured one.
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
            None => Ok(self.config.addr()),
        }
    }

    /// Serves requests through `dispatcher` until `shutdown` is cancelled,
    /// then drains and returns.
    ///
    /// # Errors
    ///
    /// [`Error::Bind`] when the address cannot be bound, [`Error::InvalidConfig`]
    /// when a declared path is not usable, [`Error::UnknownFunction`] when the
    /// default function is not registered.
    pub async fn serve(self, dispatcher: Dispatcher, shutdown: CancellationToken) -> Result<()> {
        let router = router_for(dispatcher.registry(), &self.config)?;
        let listener = match self.listener {
            Some(listener) => listener,
            None => {
                let addr = self.config.addr();
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| Error::Bind { addr, source })?
            }
        };
        let decoder = RequestDecoder::new(
            dispatcher.registry().clone(),
            router,
            self.config.max_body(),
        )
        .with_max_timeout(self.config.max_timeout());
        server::serve(listener, &self.config, decoder, dispatcher, shutdown).await;
        Ok(())
    }
}

#[async_trait]
impl Trigger for HttpTrigger {
    fn name(&self) -> &str {
        "http"
    }

    async fn run(
        self: Box<Self>,
        dispatcher: Dispatcher,
        shutdown: CancellationToken,
    ) -> faas_core::Result<()> {
        self.serve(dispatcher, shutdown)
            .await
            .map_err(|error| faas_core::Error::trigger("http", error))
    }
}

/// The routing table for `registry`: the default function and the declared paths.
///
/// The declared paths are read once, when the trigger starts.
///
/// # Errors
///
/// As [`HttpTrigger::serve`].
pub fn router_for(registry: &Registry, config: &HttpTriggerConfig) -> Result<Router> {
    let mut router = Router::new();
    match config.default_function() {
        Some(name) if registry.contains(name) => router = router.with_default_function(name),
        Some(name) => {
            return Err(Error::UnknownFunction {
                name: name.to_owned(),
                registered: registry.names().join(", "),
            });
        }
        None if registry.len() == 1 => {
            if let Some(only) = registry.names().pop() {
                router = router.with_default_function(only);
            }
        }
        None => {}
    }
    if config.declared_routes() {
        for function in registry.iter() {
            for trigger in &function.meta().triggers {
                if let TriggerSpec::Http { path, methods } = trigger {
                    router.add_path(path, function.name(), methods)?;
                }
            }
        }
    }
    Ok(router)
}
