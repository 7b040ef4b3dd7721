//! `/system/*`: OpenFaaS's management API over a [`Provider`], behind the
//! gateway's credentials.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::routing::{get, post};
use bytes::Bytes;
use faas_core::provider::{FunctionRef, ProviderError};
use faas_core::{FunctionError, Provider};
use http::{Response, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::call::{call_id_of, error_response, read_body};
use super::key::FunctionKey;
use super::openfaas::{
    DeleteRequest, DeploymentRequest, FunctionStatusResponse, InfoResponse, ScaleRequest,
};
use super::routes::check_credentials;
use super::state::GatewayState;

/// The routes of `/system/*`.
pub(crate) fn router(_state: Arc<GatewayState>) -> Router<Arc<GatewayState>> {
    Router::new()
        .route(
            "/system/functions",
            get(list).post(deploy).put(update).delete(remove),
        )
        .route("/system/function/{name}", get(describe))
        .route("/system/scale-function/{name}", post(scale))
        .route("/system/info", get(info))
}

type Answer = Result<Response<Body>, Response<Body>>;

/// Checks the credentials and finds the provider.
fn guard(
    state: &GatewayState,
    headers: &http::HeaderMap,
) -> Result<Arc<dyn Provider>, Box<Response<Body>>> {
    check_credentials(state, headers, true)?;
    state.provider.clone().ok_or_else(|| {
        Box::new(error_response(
            &FunctionError::unavailable(
                "this gateway has no provider: /system/* cannot manage functions",
            ),
            &call_id_of(headers),
        ))
    })
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let body = serde_json::to_vec(value).expect("provider types serialize to JSON");
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn accepted() -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::ACCEPTED;
    response
}

/// Reads a JSON body into `T`, as a 400/413 JSON error when it cannot.
async fn body_json<T: DeserializeOwned>(
    state: &GatewayState,
    request: Request,
) -> Result<T, Response<Body>> {
    let (parts, body) = request.into_parts();
    let call_id = call_id_of(&parts.headers);
    let bytes: Bytes = read_body(&parts.headers, body, state.config.body_limit())
        .await
        .map_err(|e| error_response(&e, &call_id))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        error_response(
            &FunctionError::bad_input(format!("the request body is not the expected JSON: {e}")),
            &call_id,
        )
    })
}

/// A provider failure as the JSON error: its kind, and the HTTP status a client of the
/// management API expects (409 for a name already taken, 403 for a refused identity).
fn failed(headers: &http::HeaderMap, error: ProviderError) -> Response<Body> {
    let status = match &error {
        ProviderError::Conflict { .. } => Some(StatusCode::CONFLICT),
        ProviderError::Forbidden { .. } => Some(StatusCode::FORBIDDEN),
        _ => None,
    };
    let mut error = FunctionError::from(error);
    if let Some(status) = status {
        error = error.with_status(status);
    }
    error_response(&error, &call_id_of(headers))
}

fn namespace_of<'a>(state: &'a GatewayState, query: &'a HashMap<String, String>) -> &'a str {
    query
        .get("namespace")
        .map_or(state.config.default_namespace(), String::as_str)
}

/// Gateway-counted calls of `name` in `namespace`.
fn counted(state: &GatewayState, namespace: &str, name: &str) -> u64 {
    state
        .table
        .known_routes(&FunctionKey::new(namespace, name))
        .map_or(0, |routes| routes.calls())
}

async fn list(
    State(state): State<Arc<GatewayState>>,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> Answer {
    let provider = guard(&state, request.headers()).map_err(|denied| *denied)?;
    let namespace = namespace_of(&state, &query);
    let statuses = provider
        .list(Some(namespace))
        .await
        .map_err(|e| failed(request.headers(), e))?;
    let listed: Vec<FunctionStatusResponse> = statuses
        .into_iter()
        .filter(|s| s.namespace.as_deref().is_none_or(|ns| ns == namespace))
        .map(|s| {
            let calls = counted(&state, namespace, &s.name);
            FunctionStatusResponse::from_status(s, calls)
        })
        .collect();
    Ok(json(StatusCode::OK, &listed))
}

async fn describe(
    State(state): State<Arc<GatewayState>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> Answer {
    let provider = guard(&state, request.headers()).map_err(|denied| *denied)?;
    let namespace = namespace_of(&state, &query).to_owned();
    let status = provider
        .status(&FunctionRef::new(namespace.as_str(), name.as_str()))
        .await
        .map_err(|e| failed(request.headers(), e))?;
    let calls = counted(&state, &namespace, &name);
    Ok(json(
        StatusCode::OK,
        &FunctionStatusResponse::from_status(status, calls),
    ))
}

async fn deploy(State(state): State<Arc<GatewayState>>, request: Request) -> Answer {
    let headers = request.headers().clone();
    let provider = guard(&state, &headers).map_err(|denied| *denied)?;
    let deployment: DeploymentRequest = body_json(&state, request).await?;
    if deployment.service.is_empty() {
        return Err(error_response(
            &FunctionError::bad_input("`service` names the function and must be set"),
            &call_id_of(&headers),
        ));
    }
    provider
        .deploy(deployment.into_deployment(state.config.default_namespace()))
        .await
        .map_err(|e| failed(&headers, e))?;
    Ok(accepted())
}

async fn update(State(state): State<Arc<GatewayState>>, request: Request) -> Answer {
    let headers = request.headers().clone();
    let provider = guard(&state, &headers).map_err(|denied| *denied)?;
    let deployment: DeploymentRequest = body_json(&state, request).await?;
    provider
        .update(deployment.into_deployment(state.config.default_namespace()))
        .await
        .map_err(|e| failed(&headers, e))?;
    Ok(accepted())
}

async fn remove(State(state): State<Arc<GatewayState>>, request: Request) -> Answer {
    let headers = request.headers().clone();
    let provider = guard(&state, &headers).map_err(|denied| *denied)?;
    let delete: DeleteRequest = body_json(&state, request).await?;
    provider
        .remove(&FunctionRef::new(
            delete
                .namespace
                .as_deref()
                .unwrap_or(state.config.default_namespace()),
            delete.function_name.as_str(),
        ))
        .await
        .map_err(|e| failed(&headers, e))?;
    Ok(accepted())
}

async fn scale(
    State(state): State<Arc<GatewayState>>,
    Path(name): Path<String>,
    request: Request,
) -> Answer {
    let headers = request.headers().clone();
    let provider = guard(&state, &headers).map_err(|denied| *denied)?;
    let scale: ScaleRequest = body_json(&state, request).await?;
    let replicas = u32::try_from(scale.replicas).map_err(|_| {
        error_response(
            &FunctionError::bad_input(format!("{} replicas is too many", scale.replicas)),
            &call_id_of(&headers),
        )
    })?;
    provider
        .scale(
            &FunctionRef::new(
                scale
                    .namespace
                    .as_deref()
                    .unwrap_or(state.config.default_namespace()),
                name.as_str(),
            ),
            replicas,
        )
        .await
        .map_err(|e| failed(&headers, e))?;
    Ok(accepted())
}

async fn info(State(state): State<Arc<GatewayState>>, request: Request) -> Answer {
    check_credentials(&state, request.headers(), true).map_err(|denied| *denied)?;
    Ok(json(
        StatusCode::OK,
        &InfoResponse::current(state.async_queue.kind()),
    ))
}
