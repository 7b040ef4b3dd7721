//! The gateway's routes: function calls (sync and async), health and metrics;
//! `/system/*` lives in [`system`](super::system).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::IntoResponse;
use axum::routing::{any, get, post};
use faas_core::{CallId, FunctionError};
use http::{Response, StatusCode, header};
use tokio::time::Instant;

use super::call::{call, call_id_of, error_response, forward_of, read_body, timeout_of};
use super::key::FunctionKey;
use super::state::GatewayState;
use super::system;

/// The gateway's whole router over `state`.
pub(crate) fn router(state: Arc<GatewayState>) -> Router {
    Router::new()
        .route("/function/{*path}", any(function_call))
        .route("/function/", any(missing_name))
        .route("/async-function/{*path}", post(async_function_call))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(system::router(state.clone()))
        .fallback(not_found)
        .with_state(state)
}

/// Splits `/{prefix}/{name}[/{rest}]` into the name and the rest (with its leading `/`).
fn split_name<'a>(path: &'a str, prefix: &str) -> (&'a str, &'a str) {
    let tail = path.strip_prefix(prefix).unwrap_or(path);
    match tail.find('/') {
        Some(slash) => (&tail[..slash], &tail[slash..]),
        None => (tail, ""),
    }
}

/// The known function a request names, or the 404 to answer.
async fn resolve(
    state: &GatewayState,
    name: &str,
    deadline: Instant,
) -> Result<Arc<super::endpoints::FunctionRoutes>, FunctionError> {
    let unknown = || FunctionError::not_found(format!("no function named `{name}`"));
    let key = FunctionKey::parse(name, state.config.default_namespace()).ok_or_else(unknown)?;
    if !state.table.is_synced() {
        // Just started: the first list of EndpointSlices is on its way.
        let _ = tokio::time::timeout_at(deadline, state.table.synced()).await;
    }
    state.table.known_routes(&key).ok_or_else(unknown)
}

/// 401 when the credentials are required and missing or wrong.
pub(crate) fn check_credentials(
    state: &GatewayState,
    headers: &http::HeaderMap,
    required: bool,
) -> Result<(), Box<Response<Body>>> {
    match state.config.credentials() {
        Some(auth) if required && !auth.allows(headers) => {
            let error =
                FunctionError::bad_input("valid credentials are required (HTTP basic auth)")
                    .with_status(StatusCode::UNAUTHORIZED);
            let mut response = error_response(&error, &call_id_of(headers));
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Basic realm=\"faas\""),
            );
            Err(Box::new(response))
        }
        _ => Ok(()),
    }
}

async fn function_call(State(state): State<Arc<GatewayState>>, request: Request) -> Response<Body> {
    let (parts, body) = request.into_parts();
    if let Err(denied) = check_credentials(&state, &parts.headers, state.config.protect_functions())
    {
        return *denied;
    }
    let call_id = call_id_of(&parts.headers);
    let deadline = Instant::now() + timeout_of(&state, &parts.headers);
    let path = parts.uri.path().to_owned();
    let (name, rest) = split_name(&path, "/function/");
    let outcome = async {
        let routes = resolve(&state, name, deadline).await?;
        let body = read_body(&parts.headers, body, state.config.body_limit()).await?;
        let forward = forward_of(routes.key(), &parts, rest, &call_id, body);
        let response = call(&state, &routes, &forward, deadline).await;
        routes.count_call();
        state.metrics.call(
            &routes.key().to_string(),
            response
                .as_ref()
                .map_or_else(|e| e.status(), |r| r.status())
                .as_u16(),
        );
        response
    }
    .await;
    match outcome {
        Ok(mut response) => {
            if !response
                .headers()
                .contains_key(faas_triggers::http::X_CALL_ID)
                && let Ok(value) = http::HeaderValue::from_str(call_id.as_str())
            {
                response
                    .headers_mut()
                    .insert(faas_triggers::http::X_CALL_ID, value);
            }
            response
        }
        Err(error) => error_response(&error, &call_id),
    }
}

async fn async_function_call(
    State(state): State<Arc<GatewayState>>,
    request: Request,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    if let Err(denied) = check_credentials(&state, &parts.headers, state.config.protect_functions())
    {
        return *denied;
    }
    let call_id = call_id_of(&parts.headers);
    let deadline = Instant::now() + timeout_of(&state, &parts.headers);
    let path = parts.uri.path().to_owned();
    let (name, rest) = split_name(&path, "/async-function/");
    let outcome = async {
        let routes = resolve(&state, name, deadline).await?;
        let body = read_body(&parts.headers, body, state.config.body_limit()).await?;
        let forward = forward_of(routes.key(), &parts, rest, &call_id, body);
        state
            .async_queue
            .enqueue(&parts.headers, routes, forward, call_id.clone())
            .await
    }
    .await;
    match outcome {
        Ok(()) => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::ACCEPTED;
            if let Ok(value) = http::HeaderValue::from_str(call_id.as_str()) {
                response
                    .headers_mut()
                    .insert(faas_triggers::http::X_CALL_ID, value);
            }
            response
        }
        Err(error) => error_response(&error, &call_id),
    }
}

async fn missing_name() -> Response<Body> {
    error_response(
        &FunctionError::not_found("the path names no function: use /function/{name}"),
        &CallId::new(),
    )
}

async fn healthz() -> impl IntoResponse {
    "OK"
}

async fn metrics(State(state): State<Arc<GatewayState>>) -> impl IntoResponse {
    for load in state.table.load() {
        let function = load.function.to_string();
        state.metrics.set_in_flight(&function, load.in_flight);
        state.metrics.set_held(&function, load.held);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

async fn not_found(request: Request) -> Response<Body> {
    error_response(
        &FunctionError::not_found(format!(
            "no route for {} {}",
            request.method(),
            request.uri().path()
        )),
        &call_id_of(request.headers()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sub_paths() {
        assert_eq!(split_name("/function/hello", "/function/"), ("hello", ""));
        assert_eq!(split_name("/function/hello/", "/function/"), ("hello", "/"));
        assert_eq!(
            split_name("/function/hello.ns/a/b", "/function/"),
            ("hello.ns", "/a/b")
        );
    }
}
