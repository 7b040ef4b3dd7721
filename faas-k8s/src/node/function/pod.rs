//! A function pod: for each container, an HTTP server on the pod's address that calls one
//! function in-process.
//!
//! Each container gets a registry of its own holding only its function (so
//! `/function/<other>` is 404 on this pod, as it would be on a pod running that one function's
//! binary), a dispatcher applying the function's policy with this pod's own in-flight limit,
//! metrics and log, and a listener on `<pod ip>:<port>` whose connections the backend's one
//! [accept loop](super::accept) hands to the HTTP trigger's [`ConnectionServer`]: `POST /` and
//! `/function/<name>` both call the function, as the OpenFaaS watchdog does, and `/_/health`,
//! `/_/ready` and `/metrics` are served.
//!
//! A run ends when the node stops it: the listener closes, the server drains what is in flight,
//! exit code 0; if the grace runs out it is cut off, exit code 137 with signal 9, as a killed
//! process would report.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use faas_core::{Dispatcher, FunctionDefinition, InvocationLog, Metrics, Registry};
use faas_triggers::http::{ConnectionServer, HttpTriggerConfig};
use tokio::sync::watch;

use super::accept::{AcceptLoop, Listening};
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
#[derive(Debug)]
struct Serving {
    listening: Listening,
    started_at: SystemTime,
    /// Turns `true` once the run's end is recorded; made for the first reader (a log followed
    /// to the run's end), as most runs have none.
    done: Option<watch::Sender<bool>>,
}

/// What the servers of every pod share.
#[derive(Clone, Debug)]
pub(crate) struct ServerContext {
    pub(crate) http: HttpTriggerConfig,
    pub(crate) network: PodNetwork,
    pub(crate) events: EventHub,
    /// The one accept loop of every pod's listeners.
    pub(crate) accept: AcceptLoop,
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
        lock(&self.runtime).serving.as_mut().map(|s| {
            s.done
                .get_or_insert_with(|| watch::Sender::new(false))
                .subscribe()
        })
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
        let server = ConnectionServer::new(dispatcher, &config).map_err(io::Error::other)?;
        let listening = context.accept.listen(listener, Arc::new(server))?;
        let started_at = SystemTime::now();
        {
            let mut runtime = lock(&self.runtime);
            runtime.status.started(started_at);
            runtime.serving = Some(Serving {
                listening,
                started_at,
                done: None,
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
        Ok(())
    }

    /// Stops the current run: no new connections, up to `grace` for the calls in flight, then
    /// cut off. Returns once the end is recorded.
    pub(crate) async fn stop(&self, pod: &FunctionPod, context: &ServerContext, grace: Duration) {
        let (closed, server, started_at) = {
            let mut runtime = lock(&self.runtime);
            let Some(serving) = runtime.serving.as_mut() else {
                return;
            };
            let closed = context.accept.close(&mut serving.listening);
            (
                closed,
                Arc::clone(serving.listening.server()),
                serving.started_at,
            )
        };
        // The address is free again before the run counts as ended (a restart binds it anew).
        closed.await;
        let drained = tokio::time::timeout(grace, server.drain()).await.is_ok();
        let exit = if drained {
            Exit::new(0, None, started_at, SystemTime::now())
        } else {
            Exit::new(137, Some(9), started_at, SystemTime::now())
        };
        pod.data.push(
            self.function(),
            format!(
                "container {} stopped (exit code {})",
                self.name, exit.exit_code
            ),
        );
        let serving = {
            let mut runtime = lock(&self.runtime);
            runtime.status.exited(exit);
            runtime.serving.take()
        };
        if let Some(done) = serving.and_then(|s| s.done) {
            done.send_replace(true);
        }
        context.events.notify(&pod.key);
    }
}
