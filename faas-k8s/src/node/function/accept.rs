//! [`AcceptLoop`]: one accept loop for every function pod of a backend.
//!
//! A pod's container still binds its own `<pod ip>:<port>` (a socket bound to one address is
//! what lets pods share a port, and what refuses a connection at once when the pod is gone), but
//! no pod has a task of its own: one task waits on every listener and hands each accepted
//! connection to the server registered for the connection's destination address
//! (`local_addr()`). A connection to an address whose server is gone or draining is closed.
//!
//! Each listener is woken on its own (a [`SelectAll`] polls only the listeners that have a
//! connection waiting), so a connection costs the same with ten pods or ten thousand.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use faas_triggers::http::ConnectionServer;
use futures::stream::{AbortHandle, Abortable, SelectAll, Stream, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::node::lock;

/// How long the loop pauses after a failed accept (out of file descriptors and the like), rather
/// than spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// The accept loop of a backend's function pods (see the module's documentation).
#[derive(Clone, Debug)]
pub(crate) struct AcceptLoop {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// The server of each address a pod listens on.
    servers: Mutex<HashMap<SocketAddr, Arc<ConnectionServer>>>,
    /// Where new listeners go; the loop starts with the first.
    added: OnceLock<mpsc::UnboundedSender<Abortable<PodListener>>>,
    /// Ends the loop, dropping every listener.
    cancel: CancellationToken,
}

/// A listener registered with the loop: dropping it does not stop it,
/// [`AcceptLoop::close`] does.
#[derive(Debug)]
pub(crate) struct Listening {
    addr: SocketAddr,
    server: Arc<ConnectionServer>,
    abort: AbortHandle,
    /// Resolves once the loop dropped the listener (its socket is closed).
    closed: Option<oneshot::Receiver<()>>,
}

impl AcceptLoop {
    /// A loop that ends when `cancel` is cancelled.
    pub(crate) fn new(cancel: CancellationToken) -> Self {
        Self {
            shared: Arc::new(Shared {
                servers: Mutex::new(HashMap::new()),
                added: OnceLock::new(),
                cancel,
            }),
        }
    }

    /// Serves the connections `listener` accepts with `server` from now on. Must be called
    /// within a Tokio runtime.
    pub(crate) fn listen(
        &self,
        listener: TcpListener,
        server: Arc<ConnectionServer>,
    ) -> io::Result<Listening> {
        let addr = listener.local_addr()?;
        let (abort, registration) = AbortHandle::new_pair();
        let (on_close, closed) = oneshot::channel();
        lock(&self.shared.servers).insert(addr, Arc::clone(&server));
        let added = self.shared.added.get_or_init(|| {
            let (added, receiver) = mpsc::unbounded_channel();
            tokio::spawn(run(Arc::clone(&self.shared), receiver));
            added
        });
        if added
            .send(Abortable::new(
                PodListener {
                    listener,
                    _on_close: on_close,
                },
                registration,
            ))
            .is_err()
        {
            lock(&self.shared.servers).remove(&addr);
            return Err(io::Error::other(
                "the function backend is shutting down and serves no new pod",
            ));
        }
        Ok(Listening {
            addr,
            server,
            abort,
            closed: Some(closed),
        })
    }

    /// Stops accepting for `listening`: its address no longer leads to its server at once, and
    /// the returned future resolves once the loop dropped the listener (its socket is closed:
    /// new connections are refused and the address can be bound again).
    pub(crate) fn close(&self, listening: &mut Listening) -> impl Future<Output = ()> + use<> {
        listening.abort.abort();
        {
            let mut servers = lock(&self.shared.servers);
            if servers
                .get(&listening.addr)
                .is_some_and(|server| Arc::ptr_eq(server, &listening.server))
            {
                servers.remove(&listening.addr);
            }
        }
        let closed = listening.closed.take();
        async move {
            if let Some(closed) = closed {
                // The sender never sends: it is dropped with the listener.
                let _ = closed.await;
            }
        }
    }
}

impl Listening {
    /// The server the listener's connections go to.
    pub(crate) fn server(&self) -> &Arc<ConnectionServer> {
        &self.server
    }
}

/// The loop: takes in new listeners, accepts on all of them, dispatches by destination address.
async fn run(shared: Arc<Shared>, mut added: mpsc::UnboundedReceiver<Abortable<PodListener>>) {
    let mut listeners = SelectAll::new();
    loop {
        let accepted = tokio::select! {
            biased;
            () = shared.cancel.cancelled() => break,
            listener = added.recv() => match listener {
                Some(listener) => {
                    listeners.push(listener);
                    continue;
                }
                None => break,
            },
            Some(accepted) = listeners.next(), if !listeners.is_empty() => accepted,
        };
        match accepted {
            Ok(stream) => dispatch(&shared, stream),
            Err(error) => {
                tracing::warn!(%error, "could not accept a connection for a function pod");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

/// Hands `stream` to the server of the address it was made to, or closes it.
fn dispatch(shared: &Shared, stream: TcpStream) {
    let server = stream
        .local_addr()
        .ok()
        .and_then(|addr| lock(&shared.servers).get(&addr).cloned());
    match server {
        Some(server) => {
            if !server.serve(stream) {
                tracing::debug!("connection to a draining function pod closed");
            }
        }
        None => tracing::debug!("connection to an address with no function pod closed"),
    }
}

/// One pod's listener as a stream of accepted connections.
#[derive(Debug)]
struct PodListener {
    listener: TcpListener,
    /// Dropped with the listener: tells [`AcceptLoop::close`] the socket is closed.
    _on_close: oneshot::Sender<()>,
}

impl Stream for PodListener {
    type Item = io::Result<TcpStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.listener
            .poll_accept(cx)
            .map(|accepted| Some(accepted.map(|(stream, _peer)| stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_core::{Dispatcher, FunctionDefinition, Registry};
    use faas_triggers::http::HttpTriggerConfig;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn first(_: String) -> String {
        "first".to_owned()
    }

    async fn second(_: String) -> String {
        "second".to_owned()
    }

    fn server(name: &'static str) -> Arc<ConnectionServer> {
        let definition = if name == "second" {
            FunctionDefinition::from_handler(name, second)
        } else {
            FunctionDefinition::from_handler(name, first)
        };
        let registry = Registry::from([definition]);
        let config = HttpTriggerConfig::new(([127, 0, 0, 1], 0).into());
        Arc::new(ConnectionServer::new(Dispatcher::new(registry), &config).unwrap())
    }

    async fn call(addr: SocketAddr) -> io::Result<String> {
        let mut stream = TcpStream::connect(addr).await?;
        stream
            .write_all(
                b"POST / HTTP/1.1\r\nhost: pod\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        Ok(answer)
    }

    #[tokio::test]
    async fn each_connection_reaches_the_server_of_its_destination_address() {
        let accept = AcceptLoop::new(CancellationToken::new());
        let one = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let two = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (one_addr, two_addr) = (one.local_addr().unwrap(), two.local_addr().unwrap());
        let mut first = accept.listen(one, server("first")).unwrap();
        let _second = accept.listen(two, server("second")).unwrap();

        assert!(call(one_addr).await.unwrap().ends_with("first"));
        assert!(call(two_addr).await.unwrap().ends_with("second"));

        // Closed: its address refuses connections and can be bound again; the other serves.
        accept.close(&mut first).await;
        let err = TcpStream::connect(one_addr).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        assert!(call(two_addr).await.unwrap().ends_with("second"));
        let again = TcpListener::bind(one_addr).await.unwrap();
        let _first_again = accept.listen(again, server("first")).unwrap();
        assert!(call(one_addr).await.unwrap().ends_with("first"));
    }

    #[tokio::test]
    async fn a_draining_server_takes_no_connection() {
        let accept = AcceptLoop::new(CancellationToken::new());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let listening = accept.listen(listener, server("fn")).unwrap();
        assert!(listening.server().drain().await);
        // Accepted by the kernel, then closed without an answer.
        assert_eq!(call(addr).await.unwrap_or_default(), "");
    }
}
