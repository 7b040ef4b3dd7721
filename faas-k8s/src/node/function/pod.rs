//! A function pod: for each container, an HTTP server on the pod's address that calls one
//! function in-process.
//!
//! Each container gets a registry of its own holding only its function (so
//! `/function/<other>` is 404 on this pod, as it would be on a pod running that one function's
//! binary), a dispatcher applying the function's policy with this pod's own in-flight limit,
//! metrics and log, and the HTTP trigger of `faas-triggers` bound to `<pod ip>:<port>`:
//! `POST /` and `/function/<name>` both call the function, as the OpenFaaS watchdog does, and
//! `/_/health`, `/_/ready` and `/metrics` are served.
//!
//! A run ends when the node stops it (the server stops accepting, drains what is in flight,
//! exit code 0; if the grace runs out it is cut off, exit code 137 with signal 9, as a killed
//! process would report) or when the server fails (exit code 1, the error in the pod's log).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use faas_core::{Dispatcher, FunctionDefinition, InvocationLog, Metrics, Registry};
use faas_triggers::http::{HttpTrigger, HttpTriggerConfig};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

use crate::node::container_status::{ContainerStatusCell, Exit};
use crate::node::events::EventHub;
use crate::node::lock;
use crate::node::network::PodNetwork;
use crate::node::pod_table::{TableContainer, TablePod};

/// One function pod: its containers, and every container's log lines keyed by function name.
pub(crate) type FunctionPod = TablePod<FunctionContainer, InvocationLog>;

/// One container of a function pod.
#[derive(Debug)]
pub(crate) struct FunctionContainer {
    pub(crate) name: String,
    pub(crate) definition: FunctionDefinition,
    pub(crate) port: u16,
    runtime: Mutex<Runtime>,
}

#[derive(Debug)]
struct Runtime {
    status: ContainerStatusCell,
    serving: Option<Serving>,
}

/// The server of the current run.
#[derive(Clone, Debug)]
struct Serving {
    shutdown: CancellationToken,
    abort: AbortHandle,
    /// Turns `true` once the run's end is recorded.
    done: watch::Receiver<bool>,
}

/// What the servers of every pod share.
#[derive(Clone, Debug)]
pub(crate) struct ServerContext {
    pub(crate) http: HttpTriggerConfig,
    pub(crate) network: PodNetwork,
    pub(crate) events: EventHub,
    /// Cancelled when the backend goes away: every server stops.
    pub(crate) cancel: CancellationToken,
}

impl TableContainer for FunctionContainer {
    fn name(&self) -> &str {
        &self.name
    }

    fn with_status<T>(&self, f: impl FnOnce(&mut ContainerStatusCell) -> T) -> T {
        f(&mut lock(&self.runtime).status)
    }
}

impl FunctionContainer {
    pub(crate) fn new(name: String, definition: FunctionDefinition, port: u16) -> Self {
        Self {
            runtime: Mutex::new(Runtime {
                status: ContainerStatusCell::new(name.clone()),
                serving: None,
            }),
            name,
            definition,
            port,
        }
    }

    /// The function's name, which keys its lines in the pod's log.
    pub(crate) fn function(&self) -> &str {
        self.definition.name()
    }

    /// Whether a run is serving now, and a receiver that turns `true` when it ends.
    pub(crate) fn run_end(&self) -> Option<watch::Receiver<bool>> {
        lock(&self.runtime).serving.as_ref().map(|s| s.done.clone())
    }

    /// Binds `<pod ip>:<port>` and starts serving the function there.
    pub(crate) async fn start(
        self: &Arc<Self>,
        pod: &Arc<FunctionPod>,
        context: &ServerContext,
    ) -> io::Result<()> {
        let addr = SocketAddr::new(IpAddr::V4(pod.ip), self.port);
        let listener = if pod.host_network {
            tokio::net::TcpListener::bind(addr).await?
        } else {
            context.network.bind_tcp(addr).await?
        };
        let registry = Registry::new();
        registry
            .register(self.definition.clone())
            .map_err(io::Error::other)?;
        let dispatcher = Dispatcher::with_parts(registry, Metrics::new(), pod.data.clone());
        let config = context
            .http
            .clone()
            .with_addr(addr)
            .with_default_function(self.function());
        let shutdown = context.cancel.child_token();
        let server = tokio::spawn(
            HttpTrigger::from_listener(listener, config).serve(dispatcher, shutdown.clone()),
        );
        let (done_tx, done) = watch::channel(false);
        let started_at = SystemTime::now();
        {
            let mut runtime = lock(&self.runtime);
            runtime.status.started(started_at);
            runtime.serving = Some(Serving {
                shutdown,
                abort: server.abort_handle(),
                done,
            });
        }
        pod.data.push(
            self.function(),
            format!(
                "container {} serving {} on http://{addr}/",
                self.name,
                self.function()
            ),
        );
        let (container, pod, events) = (Arc::clone(self), Arc::clone(pod), context.events.clone());
        tokio::spawn(async move {
            let outcome = server.await;
            let finished_at = SystemTime::now();
            let exit = match outcome {
                Ok(Ok(())) => Exit::new(0, None, started_at, finished_at),
                Ok(Err(err)) => {
                    pod.data
                        .push(container.function(), format!("server failed: {err}"));
                    Exit::new(1, None, started_at, finished_at)
                }
                Err(join) if join.is_cancelled() => {
                    Exit::new(137, Some(9), started_at, finished_at)
                }
                Err(join) => {
                    pod.data
                        .push(container.function(), format!("server panicked: {join}"));
                    Exit::new(1, None, started_at, finished_at)
                }
            };
            pod.data.push(
                container.function(),
                format!(
                    "container {} stopped (exit code {})",
                    container.name, exit.exit_code
                ),
            );
            {
                let mut runtime = lock(&container.runtime);
                runtime.status.exited(exit);
                runtime.serving = None;
            }
            done_tx.send_replace(true);
            events.notify(&pod.key);
        });
        Ok(())
    }

    /// Stops the current run: no new connections, up to `grace` for the calls in flight, then
    /// cut off. Returns once the end is recorded.
    pub(crate) async fn stop(&self, grace: Duration) {
        let Some(serving) = lock(&self.runtime).serving.clone() else {
            return;
        };
        serving.shutdown.cancel();
        let mut done = serving.done;
        let drained = tokio::time::timeout(grace, done.wait_for(|d| *d))
            .await
            .is_ok_and(|waited| waited.is_ok());
        if !drained {
            serving.abort.abort();
            // The watcher records the end as soon as the aborted server task is gone.
            let _ = done.wait_for(|d| *d).await;
        }
    }
}
