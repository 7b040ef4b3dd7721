//! The gateway: one HTTP entry point for every function on the cluster.
//!
//! - Routes compatible with OpenFaaS's gateway: `/function/{name}[/{path}]`
//!   and `/async-function/{name}[/{path}]` (`name` or `name.namespace`),
//!   `/system/functions`, `/system/function/{name}`,
//!   `/system/scale-function/{name}`, `/system/info`, `/healthz`, `/metrics`.
//! - Routing from EndpointSlices (a kube-runtime reflector into a
//!   [`RoutingTable`]), the least loaded of two random ready endpoints,
//!   pooled keep-alive connections, connection failures tried on another
//!   endpoint; terminating endpoints get no new calls.
//! - The activator: a call for a function with no ready endpoint is held
//!   (bounded per function: 429 past the bound, 504 past the call's deadline),
//!   the autoscaler is told at once through [`RoutingTable::wakes`], and the
//!   call goes to the first ready pod.
//! - `/system/*` over a [`Provider`], behind basic auth ([`BasicAuth`]).
//! - Every error is the project's JSON body
//!   `{"error":{"kind","message","call_id"}}` with its status.
//!
//! ```no_run
//! use faas_k8s::gateway::{Gateway, GatewayConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = kube::Client::try_default().await?;
//! let gateway = Gateway::builder(GatewayConfig::default())
//!     .discover(client)
//!     .build();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let stop = gateway.shutdown_handle();
//! tokio::spawn(async move {
//!     let _ = tokio::signal::ctrl_c().await;
//!     stop.cancel();
//! });
//! gateway.serve(listener).await?;
//! # Ok(())
//! # }
//! ```

mod activator;
mod asynchronous;
mod auth;
mod call;
#[cfg(feature = "cli")]
pub mod cli;
mod config;
mod dead_letter;
mod discovery;
mod endpoints;
mod functions;
#[cfg(feature = "nats")]
mod jetstream;
mod key;
pub mod openfaas;
mod policy;
mod proxy;
pub mod rbac;
mod routes;
mod state;
mod system;

use std::sync::Arc;

use faas_core::{DeadLetter, InMemoryDeadLetter, Provider, RetryPolicy};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use auth::{BasicAuth, PASSWORD_FILE, USER_FILE};
pub use config::{FUNCTION_LABEL, GatewayConfig, GatewayConfigBuilder};
pub use discovery::SERVICE_NAME_LABEL;
pub use endpoints::{Endpoint, EndpointAddress, FunctionLoad, RoutingTable};
#[cfg(feature = "nats")]
pub use jetstream::{JetStreamQueue, JetStreamQueueConfig};
pub use key::FunctionKey;
pub use policy::{AsyncCallPolicy, DeadLetterTarget};

use crate::autoscaler::TrafficMetrics;
use crate::error::{Error, Result};
use asynchronous::AsyncQueue;
use dead_letter::DeadLetters;
use discovery::DiscoveryScope;
use proxy::Upstream;
use state::GatewayState;

/// The gateway: a value the program drives. [`router`](Self::router) gives the
/// axum `Router` to embed; [`serve`](Self::serve) runs it on a listener with
/// EndpointSlice discovery and asynchronous workers, until the
/// [`shutdown_handle`](Self::shutdown_handle) is cancelled, then drains.
pub struct Gateway {
    state: Arc<GatewayState>,
    client: Option<kube::Client>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("config", &self.state.config)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Gateway`].
#[must_use]
pub struct GatewayBuilder {
    config: GatewayConfig,
    client: Option<kube::Client>,
    table: Option<Arc<RoutingTable>>,
    metrics: Option<TrafficMetrics>,
    provider: Option<Arc<dyn Provider>>,
    retry: RetryPolicy,
    dead_letter: Option<Arc<dyn DeadLetter>>,
    #[cfg(feature = "nats")]
    jetstream: Option<JetStreamQueue>,
}

impl std::fmt::Debug for GatewayBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl GatewayBuilder {
    /// Routes to the functions' EndpointSlices watched through `client`.
    pub fn discover(mut self, client: kube::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Uses `table` (shared with an autoscaler, or filled by hand in tests).
    pub fn routing_table(mut self, table: Arc<RoutingTable>) -> Self {
        self.table = Some(table);
        self
    }

    /// Records into `metrics` (shared with an autoscaler).
    pub fn metrics(mut self, metrics: TrafficMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Serves `/system/*` with `provider`; without one those routes answer 503.
    pub fn provider(mut self, provider: Arc<dyn Provider>) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Retries asynchronous calls of functions whose `spec.policy` says nothing by `retry`
    /// (three attempts by default); a function's own `maxAttempts`, `backoff` and `deadLetter`
    /// win (see [`AsyncCallPolicy`]).
    pub fn async_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sends asynchronous calls that failed their last attempt to `dead_letter` when their
    /// function names no dead letter of its own (kept in memory by default).
    pub fn dead_letter(mut self, dead_letter: Arc<dyn DeadLetter>) -> Self {
        self.dead_letter = Some(dead_letter);
        self
    }

    /// Keeps asynchronous calls in a NATS JetStream stream instead of memory: accepted calls
    /// survive a gateway restart, and any gateway sharing the stream runs them.
    #[cfg(feature = "nats")]
    pub fn jetstream(mut self, queue: JetStreamQueue) -> Self {
        self.jetstream = Some(queue);
        self
    }

    /// The gateway.
    pub fn build(self) -> Gateway {
        let config = self.config;
        let dead_letters = DeadLetters::new(
            self.dead_letter
                .unwrap_or_else(|| Arc::new(InMemoryDeadLetter::new())),
        );
        #[cfg(feature = "nats")]
        let dead_letters = match &self.jetstream {
            Some(queue) => dead_letters.with_jetstream(queue.context().clone()),
            None => dead_letters,
        };
        let async_queue = AsyncQueue::new(
            config.async_capacity(),
            AsyncCallPolicy::new(self.retry),
            dead_letters,
            config.default_timeout(),
            config.max_timeout(),
        );
        #[cfg(feature = "nats")]
        let async_queue = match self.jetstream {
            Some(queue) => async_queue.with_jetstream(queue),
            None => async_queue,
        };
        let table = self.table.unwrap_or_default();
        if self.client.is_none() {
            // Nothing will list EndpointSlices or Functions: the table is as complete as it gets.
            table.mark_synced();
            table.mark_policies_synced();
        }
        Gateway {
            state: Arc::new(GatewayState {
                config,
                table,
                metrics: self.metrics.unwrap_or_default(),
                upstream: Upstream::new(),
                provider: self.provider,
                async_queue,
            }),
            client: self.client,
            shutdown: CancellationToken::new(),
        }
    }
}

impl Gateway {
    /// A builder with `config`.
    pub fn builder(config: GatewayConfig) -> GatewayBuilder {
        GatewayBuilder {
            config,
            client: None,
            table: None,
            metrics: None,
            provider: None,
            retry: RetryPolicy::default(),
            dead_letter: None,
            #[cfg(feature = "nats")]
            jetstream: None,
        }
    }

    /// The routing table: ready endpoints and the in-flight and held counts.
    pub fn routing_table(&self) -> Arc<RoutingTable> {
        self.state.table.clone()
    }

    /// The metrics it records.
    pub fn metrics(&self) -> TrafficMetrics {
        self.state.metrics.clone()
    }

    /// Cancel it to stop the gateway: it stops accepting, lets held and running
    /// calls (and queued asynchronous ones) finish within the drain timeout, and
    /// [`serve`](Self::serve) returns.
    pub fn shutdown_handle(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The axum router of every route. Embedding it elsewhere does not run
    /// discovery or asynchronous workers: use [`serve`](Self::serve) for those.
    pub fn router(&self) -> axum::Router {
        routes::router(self.state.clone())
    }

    /// Serves on `listener` until shut down, then drains.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the server fails.
    pub async fn serve(self, listener: TcpListener) -> Result<()> {
        let background = CancellationToken::new();
        let mut tasks = tokio::task::JoinSet::new();
        if let Some(client) = self.client.clone() {
            let scope = DiscoveryScope {
                namespace: self.state.config.watch_namespace().map(str::to_owned),
                selector: self.state.config.endpoint_selector().map(str::to_owned),
                default_port: 8080,
            };
            tasks.spawn(discovery::run(
                client.clone(),
                scope,
                self.state.table.clone(),
                background.clone(),
            ));
            tasks.spawn(functions::run(
                client,
                self.state.config.watch_namespace().map(str::to_owned),
                self.state.async_queue.default_policy.retry().clone(),
                self.state.table.clone(),
                background.clone(),
            ));
        }
        let workers = asynchronous::spawn_workers(&self.state);
        let shutdown = self.shutdown.clone();
        let drain = self.state.config.drain_timeout();
        let router = self.router();
        let server = axum::serve(listener, router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await });
        let mut server = std::pin::pin!(server.into_future());
        let served = tokio::select! {
            served = &mut server => served,
            () = async {
                self.shutdown.cancelled().await;
                tokio::time::sleep(drain).await;
            } => {
                tracing::warn!(?drain, "calls still running after the drain timeout; stopping");
                Ok(())
            }
        };
        // The server took its last call: queued asynchronous calls run, within the drain timeout.
        self.state.async_queue.close();
        let _ = tokio::time::timeout(drain, futures::future::join_all(workers)).await;
        background.cancel();
        while tasks.join_next().await.is_some() {}
        served.map_err(|e| Error::io("serving the gateway", e))
    }
}
