//! `kubectl exec`, `kubectl attach` and `kubectl port-forward` through the kubelet API.
//!
//! kubectl speaks WebSocket to the API server; the API server (v1.30 and later) turns that into
//! the SPDY/3.1 streams it has always opened to kubelets, unless the Node declares the
//! `ExtendWebSocketsToKubelet` feature, which this node does not. So the node upgrades the
//! request to SPDY/3.1 ([`spdy`]) and serves the kubelet's stream protocols on it:
//! [`remote_command`] for exec and attach, [`port_forward`] for port forwarding. Requests are
//! authorized like every other kubelet API request (`create` or `get` of `nodes/proxy`).

pub(crate) mod port_forward;
pub(crate) mod remote_command;
pub(crate) mod spdy;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::backend::{BackendError, LogOptions, PodBackend, PodKey};
use super::exec::{ExecRequest, TerminalSize};
use remote_command::{Outcome, StreamOptions, Streams};
use spdy::SpdyConnection;

/// The header that carries the stream protocol versions.
const PROTOCOL_HEADER: &str = "x-stream-protocol-version";
/// The header listing what the node accepts when negotiation fails.
const ACCEPTED_HEADER: &str = "x-accepted-stream-protocol-versions";
/// The terminal size a session starts with until the client sends its own.
const DEFAULT_TERMINAL: TerminalSize = TerminalSize {
    width: 80,
    height: 24,
};

fn text(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.into(),
    )
        .into_response()
}

/// The protocols the client offers (the header may repeat and hold comma-separated lists).
fn offered(request: &Request) -> Vec<String> {
    request
        .headers()
        .get_all(PROTOCOL_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

/// Why an upgrade is refused: the status, the message, and (when no protocol fits) what the
/// node serves.
struct Refusal {
    status: StatusCode,
    message: String,
    accepted: Vec<&'static str>,
}

impl Refusal {
    fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            accepted: Vec::new(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = text(self.status, self.message);
        for protocol in self.accepted {
            response
                .headers_mut()
                .append(ACCEPTED_HEADER, HeaderValue::from_static(protocol));
        }
        response
    }
}

/// Checks that `request` asks for a SPDY/3.1 upgrade in a protocol of `served`.
fn handshake(
    request: &mut Request,
    served: &[&'static str],
) -> Result<(&'static str, OnUpgrade), Refusal> {
    let upgrade = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if upgrade.eq_ignore_ascii_case("websocket") {
        return Err(Refusal::bad_request(
            "this node serves streaming over SPDY/3.1; WebSocket requests are translated by the API server",
        ));
    }
    if !upgrade.eq_ignore_ascii_case(spdy::UPGRADE) {
        return Err(Refusal::bad_request(
            "Upgrade request required: this endpoint streams over SPDY/3.1",
        ));
    }
    let offered = offered(request);
    if offered.is_empty() {
        return Err(Refusal::bad_request(format!(
            "unable to upgrade: header {PROTOCOL_HEADER} is missing"
        )));
    }
    let Some(protocol) = remote_command::negotiate(&offered, served) else {
        return Err(Refusal {
            status: StatusCode::FORBIDDEN,
            message: format!(
                "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server accepts {served:?}"
            ),
            accepted: served.to_vec(),
        });
    };
    let Some(on_upgrade) = request.extensions_mut().remove::<OnUpgrade>() else {
        return Err(Refusal::bad_request(
            "this connection cannot be upgraded (HTTP/1.1 is required)",
        ));
    };
    Ok((protocol, on_upgrade))
}

fn switching(protocol: &'static str) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static(spdy::UPGRADE));
    headers.insert(PROTOCOL_HEADER, HeaderValue::from_static(protocol));
    response
}

/// What a remote command session runs.
#[derive(Clone, Debug)]
pub(crate) enum Session {
    /// A new command (`exec`).
    Exec(Vec<String>),
    /// The container's own output (`attach`).
    Attach,
}

/// Serves `exec` or `attach` into `container` of the pod `key`.
pub(crate) fn remote_command(
    mut request: Request,
    backend: Arc<dyn PodBackend>,
    key: PodKey,
    container: String,
    session: Session,
) -> Response {
    let query = match remote_command::query_pairs(request.uri().query()) {
        Ok(query) => query,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let options = match StreamOptions::from_query(&query) {
        Ok(options) => options,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let session = match session {
        Session::Exec(_) => {
            let command = remote_command::command(&query);
            if command.is_empty() {
                return text(StatusCode::BAD_REQUEST, "no command given");
            }
            Session::Exec(command)
        }
        Session::Attach => Session::Attach,
    };
    let (protocol, on_upgrade) = match handshake(&mut request, &remote_command::PROTOCOLS) {
        Ok(done) => done,
        Err(refusal) => return refusal.into_response(),
    };
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!(error = %e, "upgrading a kubelet API stream failed");
                return;
            }
        };
        let mut connection = SpdyConnection::new(TokioIo::new(upgraded));
        let mut streams = match Streams::accept(&mut connection, options, protocol).await {
            Ok(streams) => streams,
            Err(e) => {
                tracing::debug!(pod = %key, error = %e, "a streaming session did not start");
                connection.close().await;
                return;
            }
        };
        let ended = connection.ended();
        let outcome = match session {
            Session::Exec(command) => {
                let size = match options.tty {
                    true => Some(
                        streams
                            .first_terminal_size()
                            .await
                            .unwrap_or(DEFAULT_TERMINAL),
                    ),
                    false => None,
                };
                let exec = ExecRequest::new(command)
                    .with_stdin(options.stdin)
                    .with_tty(size);
                match backend.exec_session(&key, &container, exec).await {
                    Ok(started) => remote_command::run_exec(&mut streams, started, ended).await,
                    Err(e) => Outcome::Failed(refusal(&key, &container, &e)),
                }
            }
            Session::Attach => {
                // From now on: by the lines' time, not by where the log ends when the reader
                // first looks (input sent meanwhile may already have been answered).
                let follow = LogOptions {
                    follow: true,
                    since: Some(std::time::SystemTime::now()),
                    ..LogOptions::default()
                };
                let connected = async {
                    let mut input = match options.stdin {
                        true => Some(backend.attach_input(&key, &container).await?),
                        false => None,
                    };
                    // A terminal's output as it comes, where the backend has it; else the log.
                    let logs = match input.as_mut().and_then(|i| i.output.take()) {
                        Some(shown) => shown,
                        None => backend.logs(&key, &container, follow).await?,
                    };
                    Ok::<_, BackendError>((logs, input))
                };
                match connected.await {
                    Ok((logs, input)) => {
                        // The client's size before its input: what the container runs first
                        // sees the client's terminal.
                        if let Some(resize) = input.as_ref().and_then(|i| i.resize.as_ref())
                            && let Some(size) = streams.first_terminal_size().await
                            && let Err(e) = resize(size)
                        {
                            tracing::debug!(pod = %key, error = %e, "resizing a terminal failed");
                        }
                        remote_command::run_attach(&mut streams, logs, input, ended).await
                    }
                    Err(e) => Outcome::Failed(refusal(&key, &container, &e)),
                }
            }
        };
        tracing::debug!(pod = %key, %container, ?outcome, "streaming session ended");
        streams.finish(protocol, outcome).await;
        connection.close().await;
    });
    switching(protocol)
}

fn refusal(key: &PodKey, container: &str, error: &BackendError) -> String {
    match error {
        BackendError::NotFound(_) => format!(
            "container {container:?} not found in pod {}/{}",
            key.namespace, key.name
        ),
        other => other.to_string(),
    }
}

/// Serves `port-forward` to the pod `key`.
pub(crate) async fn port_forward(
    mut request: Request,
    backend: Arc<dyn PodBackend>,
    key: PodKey,
) -> Response {
    let pod_ip = match backend.status(&key).await {
        Ok(Some(status)) => status.pod_ip,
        Ok(None) | Err(BackendError::NotFound(_)) => None,
        Err(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reading the pod's status failed: {e}"),
            );
        }
    };
    let Some(pod_ip) = pod_ip else {
        return text(
            StatusCode::NOT_FOUND,
            format!(
                "pod {}/{} has no address on this node",
                key.namespace, key.name
            ),
        );
    };
    let (protocol, on_upgrade) = match handshake(&mut request, &[port_forward::PROTOCOL]) {
        Ok(done) => done,
        Err(refusal) => return refusal.into_response(),
    };
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                port_forward::serve(SpdyConnection::new(TokioIo::new(upgraded)), key, pod_ip).await;
            }
            Err(e) => tracing::debug!(error = %e, "upgrading a kubelet API stream failed"),
        }
    });
    switching(protocol)
}
