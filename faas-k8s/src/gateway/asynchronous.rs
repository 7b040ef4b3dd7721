//! Asynchronous calls (`/async-function/{name}`): answered with 202 and the
//! call id at once, run later through the same path as synchronous calls,
//! retried by the retry policy, their result POSTed to `x-callback-url`, and
//! dead-lettered after the last attempt.
//!
//! The queue is in memory: calls accepted and not yet run are lost if the
//! gateway process dies (a stopping gateway runs them first, within its drain
//! timeout). `/system/info` says so (`"asyncQueue": "memory"`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faas_core::{CallId, DeadLetter, DeadLetterEntry, FunctionError, RetryPolicy};
use faas_triggers::http::{
    X_CALL_ID, X_CALLBACK_URL, X_FUNCTION_ATTEMPTS, X_FUNCTION_NAME, X_FUNCTION_STATUS,
};
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::call::call;
use super::endpoints::FunctionRoutes;
use super::proxy::Forward;
use super::state::GatewayState;

/// One accepted asynchronous call.
pub(crate) struct AsyncJob {
    routes: Arc<FunctionRoutes>,
    forward: Forward,
    call_id: CallId,
    callback: Option<Uri>,
    timeout: Duration,
}

/// The queue of accepted asynchronous calls.
pub(crate) struct AsyncQueue {
    sender: mpsc::Sender<AsyncJob>,
    receiver: Arc<Mutex<mpsc::Receiver<AsyncJob>>>,
    closing: CancellationToken,
    retry: RetryPolicy,
    dead_letter: Arc<dyn DeadLetter>,
    default_timeout: Duration,
    max_timeout: Duration,
}

impl AsyncQueue {
    pub(crate) fn new(
        capacity: usize,
        retry: RetryPolicy,
        dead_letter: Arc<dyn DeadLetter>,
        default_timeout: Duration,
        max_timeout: Duration,
    ) -> Self {
        let (sender, receiver) = mpsc::channel(capacity);
        AsyncQueue {
            sender,
            receiver: Arc::new(Mutex::new(receiver)),
            closing: CancellationToken::new(),
            retry,
            dead_letter,
            default_timeout,
            max_timeout,
        }
    }

    /// Where queued calls wait, as `/system/info` says it.
    pub(crate) fn kind(&self) -> &'static str {
        "memory"
    }

    /// Accepts a call; 400 for a bad callback URL, 429 when the queue is full,
    /// 503 once the gateway is stopping.
    pub(crate) fn enqueue(
        &self,
        headers: &HeaderMap,
        routes: Arc<FunctionRoutes>,
        forward: Forward,
        call_id: CallId,
    ) -> Result<(), FunctionError> {
        if self.closing.is_cancelled() {
            return Err(FunctionError::unavailable("the gateway is stopping"));
        }
        let callback = match headers.get(X_CALLBACK_URL) {
            None => None,
            Some(value) => {
                let uri: Uri = value
                    .to_str()
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .filter(|u: &Uri| u.scheme_str() == Some("http") && u.host().is_some())
                    .ok_or_else(|| {
                        FunctionError::bad_input("x-callback-url must be an absolute http:// URL")
                    })?;
                Some(uri)
            }
        };
        let timeout = headers
            .get(faas_triggers::http::X_TIMEOUT)
            .and_then(|v| v.to_str().ok())
            .and_then(faas_triggers::http::parse_timeout)
            .map_or(self.default_timeout, |t| t.min(self.max_timeout));
        let job = AsyncJob {
            routes,
            forward,
            call_id,
            callback,
            timeout,
        };
        self.sender.try_send(job).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => {
                FunctionError::overloaded("the queue of asynchronous calls is full")
            }
            mpsc::error::TrySendError::Closed(_) => {
                FunctionError::unavailable("the gateway is stopping")
            }
        })
    }

    /// Stops taking calls; workers run what is queued and end.
    pub(crate) fn close(&self) {
        self.closing.cancel();
    }
}

/// Runs queued calls until the queue is closed and empty.
pub(crate) async fn worker(state: Arc<GatewayState>) {
    let callbacks = CallbackClient::new();
    let queue = &state.async_queue;
    loop {
        let job = {
            let mut receiver = queue.receiver.lock().await;
            tokio::select! {
                job = receiver.recv() => job,
                () = queue.closing.cancelled() => receiver.try_recv().ok(),
            }
        };
        let Some(job) = job else { return };
        run(&state, &callbacks, job).await;
    }
}

/// One job: attempts under the retry policy, then the callback or the dead letter.
async fn run(state: &Arc<GatewayState>, callbacks: &CallbackClient, job: AsyncJob) {
    let retry = &state.async_queue.retry;
    let function = job.routes.key().to_string();
    let mut attempt = 1u32;
    let (status, headers, body, error) = loop {
        let deadline = Instant::now() + job.timeout;
        let outcome = match call(state, &job.routes, &job.forward, deadline).await {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                match body.collect().await {
                    Ok(body) => Ok((parts.status, parts.headers, body.to_bytes())),
                    Err(error) => Err(FunctionError::unavailable(format!(
                        "reading the function's answer failed: {error}"
                    ))
                    .with_status(StatusCode::BAD_GATEWAY)),
                }
            }
            Err(error) => Err(error),
        };
        job.routes.count_call();
        let failure = match outcome {
            Ok((status, headers, body))
                if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS =>
            {
                let error =
                    FunctionError::from_response_parts(status, &body).unwrap_or_else(|| {
                        FunctionError::user_with_status(status, String::from_utf8_lossy(&body))
                    });
                (status, headers, body, error)
            }
            Ok((status, headers, body)) => break (status, headers, body, None),
            Err(error) => {
                let response = error.to_response(&job.call_id);
                let (parts, body) = response.into_parts();
                (parts.status, parts.headers, body, error)
            }
        };
        let (status, headers, body, error) = failure;
        if !retry.should_retry(&error, attempt) {
            break (status, headers, body, Some(error));
        }
        tokio::time::sleep(retry.backoff(attempt)).await;
        attempt += 1;
    };
    state.metrics.call(&function, status.as_u16());
    if let Some(error) = error {
        tracing::warn!(%function, call_id = %job.call_id, attempts = attempt, %error, "asynchronous call failed; dead-lettered");
        let mut request = Request::new(job.forward.body.clone());
        *request.method_mut() = job.forward.method.clone();
        *request.uri_mut() = job.forward.path_and_query.parse().unwrap_or_default();
        *request.headers_mut() = job.forward.headers.clone();
        state
            .async_queue
            .dead_letter
            .dead_letter(DeadLetterEntry::new(
                function.clone(),
                job.call_id.clone(),
                request,
                error,
                attempt,
            ))
            .await;
    }
    if let Some(url) = &job.callback {
        let delivered = callbacks
            .post(
                url,
                &function,
                &job.call_id,
                attempt,
                status,
                &headers,
                body,
            )
            .await;
        if !delivered {
            tracing::warn!(%function, call_id = %job.call_id, %url, "the callback was not delivered");
        }
    }
}

/// POSTs results to callback URLs.
struct CallbackClient {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl CallbackClient {
    fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        CallbackClient {
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// Three tries, retrying connection failures, 429 and 5xx.
    #[allow(clippy::too_many_arguments)]
    async fn post(
        &self,
        url: &Uri,
        function: &str,
        call_id: &CallId,
        attempts: u32,
        status: StatusCode,
        headers: &HeaderMap,
        body: Bytes,
    ) -> bool {
        let mut backoff = Duration::from_millis(200);
        for _ in 0..3 {
            let mut request = Request::new(Full::new(body.clone()));
            *request.method_mut() = Method::POST;
            *request.uri_mut() = url.clone();
            if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
                request
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, content_type.clone());
            }
            let h = request.headers_mut();
            h.insert(X_FUNCTION_STATUS, HeaderValue::from(status.as_u16()));
            h.insert(X_FUNCTION_ATTEMPTS, HeaderValue::from(attempts));
            if let Ok(value) = HeaderValue::from_str(function) {
                h.insert(X_FUNCTION_NAME, value);
            }
            if let Ok(value) = HeaderValue::from_str(call_id.as_str()) {
                h.insert(X_CALL_ID, value);
            }
            match tokio::time::timeout(Duration::from_secs(10), self.client.request(request)).await
            {
                Ok(Ok(response))
                    if !response.status().is_server_error()
                        && response.status() != StatusCode::TOO_MANY_REQUESTS =>
                {
                    return true;
                }
                _ => {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
        }
        false
    }
}
