//! `kubectl port-forward` over SPDY (`portforward.k8s.io`), as a kubelet serves it.
//!
//! For every connection it forwards, the client opens two streams with the same `requestID` and
//! `port` headers: an `error` stream and a `data` stream. The node connects to the port on the
//! pod's address and copies bytes both ways; a connection that fails is reported on the `error`
//! stream, as a kubelet words it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::spdy::{SpdyConnection, SpdyStream};
use crate::node::backend::PodKey;

/// The port forwarding protocol served.
pub(crate) const PROTOCOL: &str = "portforward.k8s.io";

/// The two streams of one forwarded connection, as they arrive.
#[derive(Debug, Default)]
struct Pair {
    error: Option<SpdyStream>,
    data: Option<SpdyStream>,
}

/// Forwards every connection the client opens on `connection` to `pod_ip`, until the client
/// closes it.
pub(crate) async fn serve(mut connection: SpdyConnection, key: PodKey, pod_ip: IpAddr) {
    let mut pending: HashMap<String, Pair> = HashMap::new();
    while let Some(stream) = connection.next_stream().await {
        // Old clients send no request id: the pair is then told apart by nothing else, and the
        // kubelet pairs them in order; so does the node.
        let request = stream
            .header("requestid")
            .map_or_else(|| "-".to_owned(), str::to_owned);
        let pair = pending.entry(request.clone()).or_default();
        match stream.header("streamtype") {
            Some("error") => pair.error = Some(stream),
            Some("data") => pair.data = Some(stream),
            other => {
                tracing::debug!(stream_type = ?other, "ignoring an unknown port-forward stream");
                continue;
            }
        }
        if pair.error.is_some() && pair.data.is_some() {
            let Pair {
                error: Some(error),
                data: Some(data),
            } = pending.remove(&request).unwrap_or_default()
            else {
                continue;
            };
            tokio::spawn(forward(key.clone(), pod_ip, error, data));
        }
    }
    connection.close().await;
}

async fn forward(key: PodKey, pod_ip: IpAddr, error: SpdyStream, mut data: SpdyStream) {
    let port = data.header("port").unwrap_or_default().to_owned();
    let target = match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(SocketAddr::new(pod_ip, port)),
        _ => Err(format!("invalid port {port:?}")),
    };
    let connected = match target {
        Ok(addr) => TcpStream::connect(addr)
            .await
            .map_err(|e| format!("failed to connect to {addr}: {e}")),
        Err(e) => Err(e),
    };
    let socket = match connected {
        Ok(socket) => socket,
        Err(reason) => {
            let message = format!(
                "error forwarding port {port} to pod {}, uid {}: {reason}",
                key.name, key.uid
            );
            let _ = error.writer.write(message.as_bytes()).await;
            let _ = error.writer.close().await;
            let _ = data.writer.close().await;
            return;
        }
    };
    let (mut from_pod, mut to_pod) = socket.into_split();
    let mut incoming = data.take_incoming();
    let upstream = async move {
        while let Some(bytes) = incoming.recv().await {
            if to_pod.write_all(&bytes).await.is_err() {
                return;
            }
        }
        // The client closed its side: so does the node, towards the pod.
        let _ = to_pod.shutdown().await;
    };
    let writer = data.writer.clone();
    let downstream = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match from_pod.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if writer.write(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = writer.close().await;
    };
    tokio::join!(upstream, downstream);
    let _ = error.writer.close().await;
}
