//! Asynchronous calls (`/async-function/{name}`): answered with 202 and the
//! call id at once, run later through the same path as synchronous calls,
//! retried by their function's policy ([`AsyncCallPolicy`], from the
//! Function's `spec.policy`; the gateway's as the default), their result
//! POSTed to `x-callback-url`, and dead-lettered after the last attempt (to
//! the function's dead letter when it names one).
//!
//! The queue is in memory unless the gateway is given a
//! [`JetStreamQueue`](super::JetStreamQueue) (feature `nats`): in memory, calls
//! accepted and not yet run are lost if the gateway process dies (a stopping
//! gateway runs them first, within its drain timeout); on JetStream they wait
//! in a stream until a gateway acknowledges them after their last attempt.
//! `/system/info` says which (`"asyncQueue": "memory"` or `"nats-jetstream"`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faas_core::{CallId, DeadLetterEntry, FunctionError};
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
use super::dead_letter::DeadLetters;
use super::endpoints::FunctionRoutes;
use super::policy::AsyncCallPolicy;
use super::proxy::Forward;
use super::state::GatewayState;

/// One accepted asynchronous call.
pub(crate) struct AsyncJob {
    pub(crate) routes: Arc<FunctionRoutes>,
    pub(crate) forward: Forward,
    pub(crate) call_id: CallId,
    pub(crate) callback: Option<Uri>,
    pub(crate) timeout: Duration,
}

/// The queue of accepted asynchronous calls.
pub(crate) struct AsyncQueue {
    sender: mpsc::Sender<AsyncJob>,
    receiver: Arc<Mutex<mpsc::Receiver<AsyncJob>>>,
    pub(crate) closing: CancellationToken,
    /// The policy of functions that set none.
    pub(crate) default_policy: Arc<AsyncCallPolicy>,
    pub(crate) dead_letters: DeadLetters,
    default_timeout: Duration,
    max_timeout: Duration,
    #[cfg(feature = "nats")]
    pub(crate) jetstream: Option<super::jetstream::JetStreamQueue>,
}

impl AsyncQueue {
    pub(crate) fn new(
        capacity: usize,
        default_policy: AsyncCallPolicy,
        dead_letters: DeadLetters,
        default_timeout: Duration,
        max_timeout: Duration,
    ) -> Self {
        let (sender, receiver) = mpsc::channel(capacity);
        AsyncQueue {
            sender,
            receiver: Arc::new(Mutex::new(receiver)),
            closing: CancellationToken::new(),
            default_policy: Arc::new(default_policy),
            dead_letters,
            default_timeout,
            max_timeout,
            #[cfg(feature = "nats")]
            jetstream: None,
        }
    }

    /// Keeps calls in `queue` instead of memory.
    #[cfg(feature = "nats")]
    pub(crate) fn with_jetstream(mut self, queue: super::jetstream::JetStreamQueue) -> Self {
        self.jetstream = Some(queue);
        self
    }

    /// The policy of `routes`' function: its own, else the gateway's.
    pub(crate) fn policy_of(&self, routes: &FunctionRoutes) -> Arc<AsyncCallPolicy> {
        routes
            .async_policy()
            .unwrap_or_else(|| self.default_policy.clone())
    }

    /// Where queued calls wait, as `/system/info` says it.
    pub(crate) fn kind(&self) -> &'static str {
        #[cfg(feature = "nats")]
        if self.jetstream.is_some() {
            return "nats-jetstream";
        }
        "memory"
    }

    /// Accepts a call; 400 for a bad callback URL, 429 when the queue is full,
    /// 503 once the gateway is stopping or the durable queue cannot store it.
    pub(crate) async fn enqueue(
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
        #[cfg(feature = "nats")]
        if let Some(jetstream) = &self.jetstream {
            return jetstream.publish(&job).await;
        }
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

/// The tasks running queued calls: `async_workers` of them over memory, one
/// pulling from the stream (running as many calls at once) over JetStream.
pub(crate) fn spawn_workers(state: &Arc<GatewayState>) -> Vec<tokio::task::JoinHandle<()>> {
    #[cfg(feature = "nats")]
    if state.async_queue.jetstream.is_some() {
        return vec![tokio::spawn(super::jetstream::worker(state.clone()))];
    }
    (0..state.config.async_workers())
        .map(|_| tokio::spawn(worker(state.clone())))
        .collect()
}

/// Runs queued calls until the queue is closed and empty.
async fn worker(state: Arc<GatewayState>) {
    let callbacks = CallbackClient::new();
    let queue = &state.async_queue;
    // Calls run by their function's policy once the Functions are listed (a stopping gateway
    // runs what it holds without waiting).
    tokio::select! {
        () = state.table.policies_synced() => {}
        () = queue.closing.cancelled() => {}
    }
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

/// What one attempt of an asynchronous call gave: the answer to report, and the
/// error when it failed.
pub(crate) struct Attempt {
    pub(crate) status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    pub(crate) error: Option<FunctionError>,
}

/// One attempt of `job`: the call through the same path as synchronous calls, within the
/// call's timeout or its function's deadline, whichever is shorter.
pub(crate) async fn attempt(state: &Arc<GatewayState>, job: &AsyncJob) -> Attempt {
    let timeout = state
        .async_queue
        .policy_of(&job.routes)
        .deadline()
        .map_or(job.timeout, |deadline| deadline.min(job.timeout));
    let deadline = Instant::now() + timeout;
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
    match outcome {
        Ok((status, headers, body))
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS =>
        {
            let error = FunctionError::from_response_parts(status, &body).unwrap_or_else(|| {
                FunctionError::user_with_status(status, String::from_utf8_lossy(&body))
            });
            Attempt {
                status,
                headers,
                body,
                error: Some(error),
            }
        }
        Ok((status, headers, body)) => Attempt {
            status,
            headers,
            body,
            error: None,
        },
        Err(error) => {
            let (parts, body) = error.to_response(&job.call_id).into_parts();
            Attempt {
                status: parts.status,
                headers: parts.headers,
                body,
                error: Some(error),
            }
        }
    }
}

/// One job in memory: attempts under its function's policy (read again before each retry, so a
/// changed policy applies at once), then the callback or the dead letter.
async fn run(state: &Arc<GatewayState>, callbacks: &CallbackClient, job: AsyncJob) {
    let mut attempts = 1u32;
    let (last, policy) = loop {
        let last = attempt(state, &job).await;
        let policy = state.async_queue.policy_of(&job.routes);
        match &last.error {
            Some(error) if policy.retry().should_retry(error, attempts) => {
                tokio::time::sleep(policy.retry().backoff(attempts)).await;
                attempts += 1;
            }
            _ => break (last, policy),
        }
    };
    // In memory there is nowhere to keep a call the dead letter refused: it is logged.
    let _ = finish(state, callbacks, &job, &policy, attempts, last).await;
}

/// The end of a job after its last attempt: counted, dead-lettered when it failed, its
/// result POSTed to the callback. `false` when the dead letter refused the failed call.
pub(crate) async fn finish(
    state: &Arc<GatewayState>,
    callbacks: &CallbackClient,
    job: &AsyncJob,
    policy: &AsyncCallPolicy,
    attempts: u32,
    last: Attempt,
) -> bool {
    let function = job.routes.key().to_string();
    state.metrics.call(&function, last.status.as_u16());
    if let Some(error) = last.error {
        tracing::warn!(%function, call_id = %job.call_id, attempts, %error, "asynchronous call failed; dead-lettered");
        let mut request = Request::new(job.forward.body.clone());
        *request.method_mut() = job.forward.method.clone();
        *request.uri_mut() = job.forward.path_and_query.parse().unwrap_or_default();
        *request.headers_mut() = job.forward.headers.clone();
        if let Err(error) = state
            .async_queue
            .dead_letters
            .for_policy(&function, policy)
            .dead_letter(DeadLetterEntry::new(
                function.clone(),
                job.call_id.clone(),
                request,
                error,
                attempts,
            ))
            .await
        {
            tracing::error!(%function, call_id = %job.call_id, %error, "the dead letter did not take the failed call");
            return false;
        }
    }
    if let Some(url) = &job.callback {
        let delivered = callbacks
            .post(
                url,
                &function,
                &job.call_id,
                attempts,
                last.status,
                &last.headers,
                last.body,
            )
            .await;
        if !delivered {
            tracing::warn!(%function, call_id = %job.call_id, %url, "the callback was not delivered");
        }
    }
    true
}

/// POSTs results to callback URLs.
pub(crate) struct CallbackClient {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl CallbackClient {
    pub(crate) fn new() -> Self {
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
