//! Calling a function: through the API server's service proxy (from anywhere a kubeconfig
//! reaches), or straight to its Service (from inside the cluster).

use bytes::Bytes;
use faas_core::{ErrorKind, FunctionError, FunctionRef, Invocation, Response};
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::function::{FUNCTION_PORT, FUNCTION_PORT_NAME};

/// How [`KubernetesProvider::invoke`](super::KubernetesProvider) reaches a function.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum InvokeRoute {
    /// Through the API server's service proxy
    /// (`/api/v1/namespaces/{ns}/services/{name}:http/proxy/`): works from outside the cluster
    /// with nothing but the kubeconfig; the caller needs `get` on `services/proxy`.
    #[default]
    ApiServerProxy,
    /// Straight to the function's Service (`http://{name}.{ns}.svc:8080/`): for callers inside
    /// the cluster, without the API server in the path.
    InCluster {
        /// The cluster's DNS domain suffix after `svc`, e.g. `cluster.local`; none when empty.
        cluster_domain: String,
    },
}

/// The path of a function's service proxy.
pub(crate) fn proxy_path(function: &FunctionRef) -> String {
    format!(
        "/api/v1/namespaces/{}/services/{}:{FUNCTION_PORT_NAME}/proxy/",
        function.namespace, function.name
    )
}

/// The in-cluster URL of a function.
pub(crate) fn service_url(function: &FunctionRef, cluster_domain: &str) -> String {
    let domain = if cluster_domain.is_empty() {
        String::new()
    } else {
        format!(".{cluster_domain}")
    };
    format!(
        "http://{}.{}.svc{domain}:{FUNCTION_PORT}/",
        function.name, function.namespace
    )
}

/// The request to send for `invocation` to `uri`: its method, headers and body.
pub(crate) fn request_for(
    invocation: &Invocation,
    uri: &str,
) -> Result<Request<Bytes>, FunctionError> {
    let mut builder = Request::builder()
        .method(invocation.method().clone())
        .uri(uri);
    for (name, value) in invocation.headers() {
        if name != http::header::HOST {
            builder = builder.header(name, value);
        }
    }
    builder
        .body(invocation.body().clone())
        .map_err(|e| FunctionError::bad_input(format!("cannot build the call: {e}")).with_source(e))
}

/// The call's answer, or the error it carries: the function runtime's JSON error bodies become
/// the same `FunctionError` a local call gives; the proxy's own refusals map onto kinds.
pub(crate) fn answer(
    function: &FunctionRef,
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
) -> Result<Response, FunctionError> {
    if status.is_success() || status.is_redirection() {
        let mut response = Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        return Ok(response);
    }
    if let Some(error) = FunctionError::from_response_parts(status, &body) {
        return Err(error);
    }
    let text = String::from_utf8_lossy(&body);
    let kind = match status {
        StatusCode::NOT_FOUND => ErrorKind::NotFound,
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY => ErrorKind::Unavailable,
        StatusCode::GATEWAY_TIMEOUT => ErrorKind::Timeout,
        StatusCode::TOO_MANY_REQUESTS => ErrorKind::Overloaded,
        status if status.is_client_error() => ErrorKind::BadInput,
        _ => ErrorKind::Internal,
    };
    Err(FunctionError::new(
        kind,
        format!("calling {function} failed with {status}: {}", text.trim()),
    )
    .with_status(status))
}

/// Sends `request` through the API server (the kube client carries its credentials).
pub(crate) async fn through_api_server(
    client: &kube::Client,
    function: &FunctionRef,
    request: Request<Bytes>,
) -> Result<Response, FunctionError> {
    let (parts, body) = request.into_parts();
    let request = Request::from_parts(parts, kube::client::Body::from(body));
    let response = client.send(request).await.map_err(|e| {
        FunctionError::unavailable(format!(
            "the API server did not relay the call to {function}: {e}"
        ))
        .with_source(e)
    })?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| FunctionError::unavailable(format!("reading the answer of {function}: {e}")))?
        .to_bytes();
    answer(function, parts.status, parts.headers, body)
}

/// Sends `request` straight to the function's Service.
pub(crate) async fn in_cluster(
    http: &HttpClient<HttpConnector, Full<Bytes>>,
    function: &FunctionRef,
    request: Request<Bytes>,
) -> Result<Response, FunctionError> {
    let (parts, body) = request.into_parts();
    let response = http
        .request(Request::from_parts(parts, Full::new(body)))
        .await
        .map_err(|e| {
            FunctionError::unavailable(format!("{function} cannot be reached: {e}")).with_source(e)
        })?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| FunctionError::unavailable(format!("reading the answer of {function}: {e}")))?
        .to_bytes();
    answer(function, parts.status, parts.headers, body)
}

/// A plain HTTP client for [`InvokeRoute::InCluster`].
pub(crate) fn http_client() -> HttpClient<HttpConnector, Full<Bytes>> {
    HttpClient::builder(TokioExecutor::new()).build_http()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_urls() {
        let function = FunctionRef::new("team", "hello");
        assert_eq!(
            proxy_path(&function),
            "/api/v1/namespaces/team/services/hello:http/proxy/"
        );
        assert_eq!(
            service_url(&function, "cluster.local"),
            "http://hello.team.svc.cluster.local:8080/"
        );
        assert_eq!(service_url(&function, ""), "http://hello.team.svc:8080/");
    }

    #[test]
    fn refusals_map_onto_kinds() {
        let function = FunctionRef::new("team", "hello");
        let no_endpoints = answer(
            &function,
            StatusCode::SERVICE_UNAVAILABLE,
            http::HeaderMap::new(),
            Bytes::from_static(b"no endpoints available for service \"hello\""),
        )
        .unwrap_err();
        assert_eq!(no_endpoints.kind(), ErrorKind::Unavailable);
        assert!(no_endpoints.message().contains("no endpoints"));
        let own = FunctionError::bad_input("not JSON");
        let body = serde_json::to_vec(&own.to_body(&faas_core::CallId::new())).unwrap();
        let relayed = answer(
            &function,
            StatusCode::BAD_REQUEST,
            http::HeaderMap::new(),
            Bytes::from(body),
        )
        .unwrap_err();
        assert_eq!(relayed.kind(), ErrorKind::BadInput);
        assert_eq!(relayed.message(), "not JSON");
    }
}
