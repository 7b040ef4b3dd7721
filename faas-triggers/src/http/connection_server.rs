//! [`ConnectionServer`]: the HTTP trigger's serving side without a listener of its own.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use faas_core::Dispatcher;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio_util::task::TaskTracker;

use super::config::HttpTriggerConfig;
use super::connection::{Activity, ConnectionStop, WatchedConnection};
use super::decode::RequestDecoder;
use super::queue::AsyncQueue;
use super::server::Server;
use super::trigger::router_for;
use crate::Result;

/// Serves connections accepted elsewhere exactly as [`HttpTrigger`](super::HttpTrigger) serves
/// its own: the same routes, limits, header read timeout, asynchronous queue and drain.
///
/// A host that accepts for many servers at once (a virtual node with one accept loop for all
/// its function pods, dispatching each connection by the address it was made to) keeps one
/// `ConnectionServer` per server and hands it the connections that are its own. Nothing runs
/// until a connection arrives: no task, no queue worker.
///
/// ```no_run
/// use faas_core::{Dispatcher, FunctionDefinition, Registry};
/// use faas_triggers::http::{ConnectionServer, HttpTriggerConfig};
///
/// async fn hello(name: String) -> String {
///     format!("hello, {name}")
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = Registry::from([FunctionDefinition::from_handler("hello", hello)]);
/// let config = HttpTriggerConfig::new(([127, 0, 0, 1], 8080).into());
/// let server = ConnectionServer::new(Dispatcher::new(registry), &config)?;
/// let listener = tokio::net::TcpListener::bind(config.addr()).await?;
/// for _ in 0..10 {
///     let (stream, _peer) = listener.accept().await?;
///     server.serve(stream);
/// }
/// server.drain().await;
/// # Ok(()) }
/// ```
pub struct ConnectionServer {
    server: Arc<Server>,
    http1: http1::Builder,
    /// `None` when h2c is off.
    http2: Option<http2::Builder<TokioExecutor>>,
    connections: TaskTracker,
    stop: Arc<ConnectionStop>,
    header_read_timeout: Duration,
    drain_timeout: Duration,
}

impl std::fmt::Debug for ConnectionServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionServer")
            .field("open", &self.open())
            .field("draining", &self.is_draining())
            .finish_non_exhaustive()
    }
}

impl ConnectionServer {
    /// A server calling the functions of `dispatcher`'s registry, configured by `config` (its
    /// address is not used: connections come from the caller).
    ///
    /// # Errors
    ///
    /// As [`HttpTrigger::serve`](super::HttpTrigger::serve): [`Error::InvalidConfig`](crate::Error::InvalidConfig)
    /// when a declared path is not usable, [`Error::UnknownFunction`](crate::Error::UnknownFunction)
    /// when the default function is not registered.
    pub fn new(dispatcher: Dispatcher, config: &HttpTriggerConfig) -> Result<Self> {
        let router = router_for(dispatcher.registry(), config)?;
        let decoder = RequestDecoder::new(dispatcher.registry().clone(), router, config.max_body())
            .with_max_timeout(config.max_timeout());
        Ok(Self::with_decoder(decoder, dispatcher, config))
    }

    pub(crate) fn with_decoder(
        decoder: RequestDecoder,
        dispatcher: Dispatcher,
        config: &HttpTriggerConfig,
    ) -> Self {
        let queue = AsyncQueue::new(
            config.async_queue_capacity(),
            config.async_concurrency(),
            config.callback_attempts(),
            dispatcher.clone(),
        );
        ConnectionServer {
            server: Arc::new(Server::new(decoder, dispatcher, queue)),
            http1: http1_builder(),
            http2: config.http2().then(http2_builder),
            connections: TaskTracker::new(),
            stop: ConnectionStop::new(),
            header_read_timeout: config.header_read_timeout(),
            drain_timeout: config.drain_timeout(),
        }
    }

    /// Serves `stream` on a task of its own until it closes (or the server drains).
    ///
    /// Returns `false`, and closes the connection at once, when the server is draining.
    pub fn serve(&self, stream: TcpStream) -> bool {
        if self.is_draining() {
            return false;
        }
        let _ = stream.set_nodelay(true);
        let activity = Activity::new(Arc::clone(&self.server));
        let requests = Arc::clone(&activity);
        let service = service_fn(move |request| {
            let running = requests.request();
            async move {
                let reply = running.shared().handle(request).await;
                drop(running);
                Ok::<_, Infallible>(reply)
            }
        });
        let stop = Arc::clone(&self.stop);
        let timeout = self.header_read_timeout;
        let Some(http2) = self.http2.clone() else {
            let connection = self.http1.serve_connection(TokioIo::new(stream), service);
            self.connections
                .spawn(watch(connection, activity, timeout, stop, |c| {
                    c.graceful_shutdown();
                }));
            return true;
        };
        let http1 = self.http1.clone();
        self.connections.spawn(async move {
            // The first bytes tell the protocol; a client that sends none
            // within the header read timeout, or a server that drains
            // meanwhile, has its connection closed.
            let preface = tokio::select! {
                biased;
                () = stop.token().cancelled() => return,
                preface = tokio::time::timeout(timeout, starts_with_http2_preface(&stream)) => preface,
            };
            match preface {
                Ok(Ok(false)) => {
                    let connection = http1.serve_connection(TokioIo::new(stream), service);
                    watch(connection, activity, timeout, stop, |c| c.graceful_shutdown()).await;
                }
                Ok(Ok(true)) => {
                    let connection = http2.serve_connection(TokioIo::new(stream), service);
                    watch(connection, activity, timeout, stop, |c| c.graceful_shutdown()).await;
                }
                Ok(Err(error)) => tracing::debug!(%error, "connection failed before its first request"),
                Err(_elapsed) => tracing::debug!("closing a connection that sent nothing in time"),
            }
        });
        true
    }

    /// How many connections are open.
    pub fn open(&self) -> usize {
        self.connections.len()
    }

    /// Whether [`drain`](Self::drain) has begun: `/_/ready` answers 503 and no connection is
    /// taken any more.
    pub fn is_draining(&self) -> bool {
        self.server.draining.load(Ordering::Acquire)
    }

    /// Takes no new connection or asynchronous call, lets the open connections finish their
    /// requests (and the queued asynchronous calls run) for up to the drain timeout, and
    /// returns whether everything finished in time.
    ///
    /// Connections still open past the timeout are left to end on their own.
    pub async fn drain(&self) -> bool {
        self.server.draining.store(true, Ordering::Release);
        self.stop.stop();
        self.connections.close();
        tokio::time::timeout(self.drain_timeout, async {
            self.server.queue.finish().await;
            self.connections.wait().await;
        })
        .await
        .is_ok()
    }
}

/// Serves `connection` under watch (see `connection`) until it ends.
async fn watch<C, E>(
    connection: C,
    activity: Arc<Activity<Arc<Server>>>,
    timeout: Duration,
    stop: Arc<ConnectionStop>,
    shut_down: fn(std::pin::Pin<&mut C>),
) where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    match WatchedConnection::new(connection, activity, timeout, stop, shut_down).await {
        Some(Ok(())) => {}
        Some(Err(error)) => tracing::debug!(%error, "connection ended with an error"),
        None => tracing::debug!("connection dropped: it did not close when asked"),
    }
}

/// What a client speaking HTTP/2 with prior knowledge sends first (RFC 9113, 3.4).
const HTTP2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether the client's first bytes are the HTTP/2 preface, looked at without
/// taking them from the socket.
///
/// Peeked rather than read: a connection then goes to hyper's HTTP/1 or
/// HTTP/2 server as it is, where reading the first bytes would put a replay
/// buffer in front of every later read of the connection (hyper-util's
/// `auto` server does so; with it a request cost about 120 instructions
/// more, counted with callgrind). An HTTP/1 request differs from the
/// preface by its second byte at the latest; a client that stops inside
/// the preface is looked at again every millisecond, since bytes left in
/// the socket keep it readable.
async fn starts_with_http2_preface(stream: &TcpStream) -> std::io::Result<bool> {
    let mut first = [0u8; HTTP2_PREFACE.len()];
    loop {
        let n = stream.peek(&mut first).await?;
        if n == 0 || first[..n] != HTTP2_PREFACE[..n] {
            // Closed (hyper sees the end) or not the preface.
            return Ok(false);
        }
        if n == HTTP2_PREFACE.len() {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// How HTTP/1 connections are served.
///
/// The header read timeout is the connection's watch, not hyper's timer per
/// request (see `connection`). Answers are written from one buffer
/// (`writev(false)`): a function's answer is mostly a few hundred bytes,
/// and copying it behind the head costs less than hyper's queue of buffers
/// for a vectored write (about 460 instructions a request, counted with
/// callgrind; see BENCHMARKS.md); a large body is copied once more, which is
/// small beside sending it.
fn http1_builder() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true)
        .writev(false);
    builder
}

/// How h2c connections are served.
fn http2_builder() -> http2::Builder<TokioExecutor> {
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder.timer(TokioTimer::new());
    builder
}
