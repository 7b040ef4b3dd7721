//! [`Upstream`]: pooled keep-alive connections to function pods, and one
//! attempt of a call on one endpoint.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// What is forwarded of one call: everything but the endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Forward {
    pub(crate) method: Method,
    /// The path and query the pod sees (`/function/{name}/...`).
    pub(crate) path_and_query: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// Headers that belong to one connection, never forwarded.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers (and those `Connection` names) from `headers`.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(&named) {
        headers.remove(name);
    }
    headers.remove(header::HOST);
    headers.remove(header::CONTENT_LENGTH);
}

/// Pooled HTTP/1.1 keep-alive connections to pods.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Upstream {
    pub(crate) fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .build(connector);
        Upstream { client }
    }

    /// Sends `forward` to `addr`, with the remaining time as `x-timeout`.
    pub(crate) async fn send(
        &self,
        addr: SocketAddr,
        forward: &Forward,
        remaining: Duration,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        let uri: Uri = format!("http://{addr}{}", forward.path_and_query)
            .parse()
            .unwrap_or_else(|_| Uri::from_static("/"));
        let mut request = Request::new(Full::new(forward.body.clone()));
        *request.method_mut() = forward.method.clone();
        *request.uri_mut() = uri;
        *request.headers_mut() = forward.headers.clone();
        let millis = remaining.as_millis().max(1);
        if let Ok(value) = HeaderValue::from_str(&format!("{millis}ms")) {
            request
                .headers_mut()
                .insert(HeaderName::from_static("x-timeout"), value);
        }
        self.client.request(request).await
    }
}

/// Whether a failed attempt can go to another endpoint: the connection was
/// never made, or it closed or was reset before any answer (a pooled
/// connection the pod closed as it stopped, or a pod that died mid-call), or
/// the method is idempotent.
///
/// A call that died with its pod is sent again: the caller got nothing yet, so
/// the gateway delivers it at least once rather than fail it.
pub(crate) fn can_retry(error: &hyper_util::client::legacy::Error, method: &Method) -> bool {
    if error.is_connect()
        || matches!(
            *method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        )
    {
        return true;
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>()
            && (hyper.is_incomplete_message() || hyper.is_canceled())
        {
            return true;
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            );
        }
        source = cause.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_named_by_connection_go() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, "keep-alive, x-secret".parse().unwrap());
        headers.insert("x-secret", "1".parse().unwrap());
        headers.insert("keep-alive", "timeout=5".parse().unwrap());
        headers.insert(header::HOST, "gateway".parse().unwrap());
        headers.insert("x-call-id", "abc".parse().unwrap());
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert_eq!(headers["x-call-id"], "abc");
    }
}
