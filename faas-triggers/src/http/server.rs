//! The listener side of the HTTP trigger (accept, hand each connection to a
//! [`ConnectionServer`], drain at shutdown) and how one request is answered.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use faas_core::Dispatcher;
use http::header::{self, HeaderValue};
use http::{Request, StatusCode, Version};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::body::read_limited;
use super::config::HttpTriggerConfig;
use super::connection_server::ConnectionServer;
use super::decode::{Endpoint, RequestDecoder};
use super::headers::{RequestHeaders, X_CALL_ID};
use super::queue::AsyncQueue;
use super::respond::{Reply, encode_response, into_reply, rejection_response};

/// The content type of `/metrics` (OpenMetrics text).
const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Everything a request needs, shared by every connection.
pub(crate) struct Server {
    decoder: RequestDecoder,
    dispatcher: Dispatcher,
    pub(crate) queue: AsyncQueue,
    pub(crate) draining: AtomicBool,
}

/// Serves `listener` until `shutdown` is cancelled, then stops accepting,
/// lets open connections finish their requests (and queued async calls run)
/// for up to the drain timeout, and returns.
pub(crate) async fn serve(
    listener: TcpListener,
    config: &HttpTriggerConfig,
    decoder: RequestDecoder,
    dispatcher: Dispatcher,
    shutdown: CancellationToken,
) {
    let connections = ConnectionServer::with_decoder(decoder, dispatcher, config);
    let local = listener.local_addr().ok();
    tracing::info!(addr = ?local, "HTTP trigger listening");

    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                connections.serve(stream);
            }
            Err(error) => {
                // Out of file descriptors and the like: pause rather than spin.
                tracing::warn!(%error, "could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    drop(listener);
    tracing::info!(addr = ?local, connections = connections.open(), "HTTP trigger draining");
    if connections.drain().await {
        tracing::info!(addr = ?local, "HTTP trigger stopped");
    } else {
        tracing::warn!(
            addr = ?local,
            timeout = ?config.drain_timeout(),
            "HTTP trigger stopped before every request finished"
        );
    }
}

impl Server {
    pub(crate) fn new(decoder: RequestDecoder, dispatcher: Dispatcher, queue: AsyncQueue) -> Self {
        Server {
            decoder,
            dispatcher,
            queue,
            draining: AtomicBool::new(false),
        }
    }

    pub(crate) async fn handle(&self, request: Request<Incoming>) -> Reply {
        let (parts, body) = request.into_parts();
        let mut headers = RequestHeaders::read(&parts.headers);
        let call_id = headers.call_id.clone();
        // Taken, not cloned: a clone of a fresh header value allocates.
        let call_id_header =
            std::mem::replace(&mut headers.call_id_header, HeaderValue::from_static(""));
        let version = parts.version;
        let uri = parts.uri.clone();
        let target = match self.decoder.endpoint(&parts.method, uri.path()) {
            Ok(Endpoint::Function(target)) => target,
            Ok(Endpoint::Health) => {
                return self.plain(StatusCode::OK, r#"{"status":"ok"}"#, call_id_header);
            }
            Ok(Endpoint::Ready) => {
                return if self.draining.load(Ordering::Acquire) || !self.dispatcher.is_accepting() {
                    self.plain(
                        StatusCode::SERVICE_UNAVAILABLE,
                        r#"{"status":"draining"}"#,
                        call_id_header,
                    )
                } else if !self.dispatcher.readiness().is_ready() {
                    // An event source cannot reach its server yet.
                    self.plain(
                        StatusCode::SERVICE_UNAVAILABLE,
                        r#"{"status":"starting"}"#,
                        call_id_header,
                    )
                } else {
                    self.plain(StatusCode::OK, r#"{"status":"ready"}"#, call_id_header)
                };
            }
            Ok(Endpoint::Metrics) => {
                let mut reply = into_reply(http::Response::new(Bytes::from(
                    self.dispatcher.metrics().encode(),
                )));
                reply.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(METRICS_CONTENT_TYPE),
                );
                reply.headers_mut().insert(X_CALL_ID, call_id_header);
                return reply;
            }
            Err(rejection) => return into_reply(rejection_response(rejection, &call_id)),
        };
        let body = match read_limited(body, target.body_limit).await {
            Ok(body) => body,
            Err(error) => {
                let close = error.close();
                let mut reply = into_reply(error.into_error().to_response(&call_id));
                if close && version < Version::HTTP_2 {
                    reply
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                return reply;
            }
        };
        let call = match self.decoder.call(target, parts, body, headers) {
            Ok(call) => call,
            Err(rejection) => return into_reply(rejection_response(rejection, &call_id)),
        };
        if call.asynchronous {
            return match self.queue.enqueue(call) {
                Ok(()) => {
                    let mut reply = into_reply(http::Response::new(Bytes::new()));
                    *reply.status_mut() = StatusCode::ACCEPTED;
                    reply.headers_mut().insert(X_CALL_ID, call_id_header);
                    reply
                }
                Err(error) => into_reply(error.to_response(&call_id)),
            };
        }
        let reply_mode = call.reply;
        match self
            .dispatcher
            .dispatch_to(&call.function, call.invocation)
            .await
        {
            Ok(response) => into_reply(encode_response(response, call_id_header, reply_mode)),
            Err(error) => into_reply(error.to_response(&call_id)),
        }
    }

    fn plain(&self, status: StatusCode, body: &'static str, call_id: HeaderValue) -> Reply {
        let mut reply = into_reply(http::Response::new(Bytes::from_static(body.as_bytes())));
        *reply.status_mut() = status;
        let headers = reply.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(X_CALL_ID, call_id);
        reply
    }
}
