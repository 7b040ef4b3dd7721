//! One synchronous call through the gateway: the function's name, deadline and
//! body read from the request, an endpoint chosen (or the call held until one is
//! ready), the request forwarded, connection failures tried on another endpoint.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use faas_core::{CallId, FunctionError};
use faas_triggers::http::{X_CALL_ID, X_TIMEOUT, parse_timeout};
use http::header::{self, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::BodyExt;
use tokio::time::Instant;

use super::activator;
use super::endpoints::FunctionRoutes;
use super::key::FunctionKey;
use super::proxy::{Forward, can_retry, strip_hop_by_hop};
use super::state::GatewayState;

/// The call id of a request: the caller's when valid, else a fresh one.
pub(crate) fn call_id_of(headers: &HeaderMap) -> CallId {
    headers
        .get(X_CALL_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_default()
}

/// The deadline of a request: `x-timeout` capped by the gateway's maximum, else its default.
pub(crate) fn timeout_of(state: &GatewayState, headers: &HeaderMap) -> Duration {
    headers
        .get(X_TIMEOUT)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_timeout)
        .map_or(state.config.default_timeout(), |t| {
            t.min(state.config.max_timeout())
        })
}

/// An error answer in the project's JSON shape.
pub(crate) fn error_response(error: &FunctionError, call_id: &CallId) -> Response<Body> {
    error.to_response(call_id).map(Body::from)
}

/// Reads a request body of at most `limit` bytes; 413 past it.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, FunctionError> {
    let too_large = || {
        FunctionError::payload_too_large(format!(
            "the request body is over the limit of {limit} bytes"
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(error) => Err(FunctionError::bad_input(format!(
            "reading the request body failed: {error}"
        ))),
    }
}

/// What the gateway forwards of a request to `key`, for the pod's path `rest`.
pub(crate) fn forward_of(
    key: &FunctionKey,
    parts: &http::request::Parts,
    rest: &str,
    call_id: &CallId,
    body: Bytes,
) -> Forward {
    let mut headers = parts.headers.clone();
    strip_hop_by_hop(&mut headers);
    if let Ok(value) = HeaderValue::from_str(call_id.as_str()) {
        headers.insert(X_CALL_ID, value);
    }
    let query = parts
        .uri
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    Forward {
        method: parts.method.clone(),
        path_and_query: format!("/function/{}{rest}{query}", key.name()),
        headers,
        body,
    }
}

/// Calls `routes` with `forward` before `deadline`: picks the least loaded of two
/// ready endpoints, holds the call while none is ready, tries another endpoint
/// when a connection fails.
pub(crate) async fn call(
    state: &Arc<GatewayState>,
    routes: &Arc<FunctionRoutes>,
    forward: &Forward,
    deadline: Instant,
) -> Result<Response<Body>, FunctionError> {
    let mut tried: Vec<SocketAddr> = Vec::new();
    let mut failures = 0u32;
    loop {
        let Some(endpoint) = routes.pick(&tried) else {
            activator::wait_for_endpoint(
                &state.table,
                &state.metrics,
                routes,
                &tried,
                state.config.max_held(),
                deadline,
            )
            .await?;
            tried.clear();
            continue;
        };
        let in_flight = routes.start_call(endpoint.clone());
        let remaining = deadline.saturating_duration_since(Instant::now());
        let sent = tokio::time::timeout_at(
            deadline,
            state.upstream.send(endpoint.addr(), forward, remaining),
        )
        .await;
        match sent {
            Err(_) => {
                return Err(FunctionError::timeout(format!(
                    "function `{}` did not answer before the call's deadline",
                    routes.key()
                )));
            }
            Ok(Ok(response)) => {
                let response = response.map(|body| {
                    // The call counts as in flight until its body is read or dropped.
                    Body::new(body.map_frame(move |frame| {
                        let _counted = &in_flight;
                        frame
                    }))
                });
                return Ok(response);
            }
            Ok(Err(error)) => {
                drop(in_flight);
                failures += 1;
                tracing::debug!(function = %routes.key(), endpoint = %endpoint.addr(), %error, "attempt failed");
                if failures >= state.config.max_attempts() || !can_retry(&error, &forward.method) {
                    return Err(FunctionError::unavailable(format!(
                        "function `{}`: the call to {} failed: {}",
                        routes.key(),
                        endpoint.addr(),
                        error_chain(&error)
                    ))
                    .with_status(StatusCode::BAD_GATEWAY));
                }
                tried.push(endpoint.addr());
            }
        }
    }
}

/// An error and its sources, joined.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
