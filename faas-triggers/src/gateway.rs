//! [`GatewayInvoker`]: an [`Invoker`] that calls functions on a cluster
//! through the gateway's `/function/{name}`, for an event source that runs
//! beside the gateway (a connector) rather than inside the function's pod.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use faas_core::trigger::Invoker;
use faas_core::{FunctionError, Invocation, InvocationPolicy, Response};
use http::header::{self, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::http::{X_ATTEMPT, X_CALL_ID, X_TIMEOUT};
use crate::{Error, Result};

/// How long connecting to the gateway may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Calls `POST {gateway}/function/{name}` with the invocation's headers and
/// body, `x-call-id` (the event's id), `x-attempt` (the delivery count of
/// the event, which the function runtime behind the gateway makes the
/// call's [`Context::attempt`](faas_core::Context::attempt)) and
/// `x-timeout` (what is left of its deadline, else the policy's timeout).
///
/// A 2xx answer is the function's response. An error answer is read back
/// into its [`FunctionError`] (the JSON error body every faas host writes),
/// so the delivery decides on the same error kinds as in-process; an answer
/// without one becomes an error of its status. A gateway that cannot be
/// reached is `Unavailable`, which the delivery redelivers without ever
/// dead-lettering.
///
/// The retries and the dead letter of its deliveries come from the policy
/// it is built with ([`with_policy`](Self::with_policy)), since the
/// function's own is not known here.
///
/// ```no_run
/// use std::sync::Arc;
/// use faas_triggers::gateway::GatewayInvoker;
///
/// # fn run() -> Result<(), faas_triggers::Error> {
/// let invoker = Arc::new(GatewayInvoker::new("http://faas-gateway.faas.svc:8080")?);
/// # let _ = invoker; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct GatewayInvoker {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    policy: InvocationPolicy,
}

impl GatewayInvoker {
    /// An invoker for the gateway at `base` (`http://host:port`, optionally
    /// with a path prefix).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when `base` is not an `http://` URL.
    pub fn new(base: impl Into<String>) -> Result<Self> {
        let base = base.into();
        let parsed: Uri = base.parse().map_err(|error| Error::InvalidConfig {
            key: "gateway.url".into(),
            value: base.clone(),
            reason: format!("not a URL: {error}"),
        })?;
        if parsed.scheme_str() != Some("http") || parsed.host().is_none() {
            return Err(Error::InvalidConfig {
                key: "gateway.url".into(),
                value: base,
                reason: "expected http://host:port".into(),
            });
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        Ok(GatewayInvoker {
            base: base.trim_end_matches('/').to_owned(),
            client: Client::builder(TokioExecutor::new()).build(connector),
            policy: InvocationPolicy::default(),
        })
    }

    /// Sets the policy of its deliveries (retries, dead letter, timeout).
    #[must_use]
    pub fn with_policy(mut self, policy: InvocationPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The URL it calls for `function`.
    pub fn url_of(&self, function: &str) -> String {
        format!("{}/function/{function}", self.base)
    }
}

#[async_trait]
impl Invoker for GatewayInvoker {
    async fn invoke(
        &self,
        function: &str,
        invocation: Invocation,
    ) -> Result<Response, FunctionError> {
        let uri: Uri = self.url_of(function).parse().map_err(|error| {
            FunctionError::bad_input(format!("`{function}` cannot name a function URL: {error}"))
        })?;
        let timeout = invocation.context().remaining().or(self.policy.timeout());
        let call_id = invocation.context().call_id().clone();
        let attempt = invocation.context().attempt();
        let (parts, body, _) = invocation.into_parts();
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        for (name, value) in &parts.headers {
            if name != header::HOST && name != header::CONTENT_LENGTH && name != header::CONNECTION
            {
                headers.append(name.clone(), value.clone());
            }
        }
        if let Ok(value) = HeaderValue::from_str(call_id.as_str()) {
            headers.insert(X_CALL_ID, value);
        }
        headers.insert(X_ATTEMPT, HeaderValue::from(attempt));
        if let Some(value) = timeout.and_then(|timeout| {
            HeaderValue::from_str(&format!("{:.3}", timeout.as_secs_f64())).ok()
        }) {
            headers.insert(X_TIMEOUT, value);
        }
        let call = async {
            let response = self.client.request(request).await.map_err(|error| {
                FunctionError::unavailable(format!(
                    "cannot reach the gateway at {}: {error}",
                    self.base
                ))
            })?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(|error| {
                FunctionError::unavailable(format!("the gateway's answer broke off: {error}"))
            })?;
            Ok::<_, FunctionError>(http::Response::from_parts(parts, body.to_bytes()))
        };
        let response = match timeout {
            Some(timeout) => tokio::time::timeout(timeout, call).await.map_err(|_| {
                FunctionError::timeout(format!(
                    "function `{function}` did not answer through the gateway within {}",
                    humantime::format_duration(timeout)
                ))
            })??,
            None => call.await?,
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        Err(
            FunctionError::from_response_parts(status, response.body()).unwrap_or_else(|| {
                let text = String::from_utf8_lossy(response.body());
                let message = format!("the gateway answered {status}: {}", text.trim());
                match status {
                    StatusCode::NOT_FOUND => FunctionError::not_found(message),
                    StatusCode::TOO_MANY_REQUESTS => FunctionError::overloaded(message),
                    StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE => {
                        FunctionError::unavailable(message)
                    }
                    StatusCode::GATEWAY_TIMEOUT => FunctionError::timeout(message),
                    status if status.is_client_error() => {
                        FunctionError::user_with_status(status, message)
                    }
                    _ => FunctionError::internal(message),
                }
            }),
        )
    }

    fn policy(&self, _function: &str) -> Option<InvocationPolicy> {
        Some(self.policy.clone())
    }
}
