//! [`JetStreamQueue`]: asynchronous calls kept in a NATS JetStream stream, so
//! a call answered with 202 is run even if the gateway that took it dies.
//!
//! - Each accepted call is published to `<prefix>.<namespace>.<name>` (its
//!   body as the payload; its headers, method, path, deadline and callback
//!   URL as headers; `Nats-Msg-Id` is the call id, so a retried publish is
//!   stored once) and the 202 is sent only once the stream acknowledged it.
//! - The stream is a work queue the gateway creates when missing; a durable
//!   pull consumer hands its calls to every gateway sharing it.
//! - One delivery is one attempt, and the broker's delivery count is the
//!   attempt number. A failure the function's policy retries is negatively
//!   acknowledged with the policy's back-off as the redelivery delay (no sleep
//!   while holding the message); after the last attempt the call goes to the
//!   function's dead letter (the gateway's when it names none). The message is acknowledged only after that, and after the
//!   callback: a gateway that stops mid-call hands it back (nak) at the end
//!   of its drain, one that is killed leaves it to be redelivered after the
//!   ack wait.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, AckKind, stream};
use faas_core::{CallId, DeadLetterEntry, FunctionError};
use futures::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::asynchronous::{AsyncJob, CallbackClient, attempt, finish};
use super::key::FunctionKey;
use super::proxy::Forward;
use super::state::GatewayState;
use crate::error::{Error, Result};

const METHOD: &str = "Faas-Method";
const PATH: &str = "Faas-Path";
const TIMEOUT_MS: &str = "Faas-Timeout-Ms";
const CALLBACK_URL: &str = "Faas-Callback-Url";
const MESSAGE_ID: &str = "Nats-Msg-Id";

/// Where and how a [`JetStreamQueue`] keeps calls.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | [`stream`](Self::with_stream) | `FAAS_ASYNC` | the stream, created as a work queue when missing |
/// | [`subject_prefix`](Self::with_subject_prefix) | `faas.async` | calls go to `<prefix>.<namespace>.<name>` |
/// | [`consumer`](Self::with_consumer) | `faas-gateway` | the durable consumer every gateway shares |
/// | [`ack_wait`](Self::with_ack_wait) | 30 s | how long a call taken by a gateway that died waits before another gets it |
///
/// ```
/// use std::time::Duration;
/// use faas_k8s::gateway::JetStreamQueueConfig;
///
/// let config = JetStreamQueueConfig::default()
///     .with_stream("CALLS")
///     .with_ack_wait(Duration::from_secs(10));
/// assert_eq!(config.stream(), "CALLS");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JetStreamQueueConfig {
    stream: String,
    subject_prefix: String,
    consumer: String,
    ack_wait: Duration,
}

impl Default for JetStreamQueueConfig {
    fn default() -> Self {
        JetStreamQueueConfig {
            stream: "FAAS_ASYNC".to_owned(),
            subject_prefix: "faas.async".to_owned(),
            consumer: "faas-gateway".to_owned(),
            ack_wait: Duration::from_secs(30),
        }
    }
}

impl JetStreamQueueConfig {
    /// Sets the stream.
    #[must_use]
    pub fn with_stream(mut self, stream: impl Into<String>) -> Self {
        self.stream = stream.into();
        self
    }

    /// Sets the subject prefix.
    #[must_use]
    pub fn with_subject_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.subject_prefix = prefix.into();
        self
    }

    /// Sets the durable consumer.
    #[must_use]
    pub fn with_consumer(mut self, consumer: impl Into<String>) -> Self {
        self.consumer = consumer.into();
        self
    }

    /// Sets the ack wait (at least one second).
    #[must_use]
    pub fn with_ack_wait(mut self, ack_wait: Duration) -> Self {
        self.ack_wait = ack_wait.max(Duration::from_secs(1));
        self
    }

    /// The stream.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The subject prefix.
    pub fn subject_prefix(&self) -> &str {
        &self.subject_prefix
    }

    /// The durable consumer.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// The ack wait.
    pub fn ack_wait(&self) -> Duration {
        self.ack_wait
    }
}

/// A durable queue of asynchronous calls on NATS JetStream; give it to
/// [`GatewayBuilder::jetstream`](super::GatewayBuilder::jetstream).
///
/// ```no_run
/// use faas_k8s::gateway::{Gateway, GatewayConfig, JetStreamQueue, JetStreamQueueConfig};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let nats = async_nats::connect("nats://127.0.0.1:4222").await?;
/// let queue = JetStreamQueue::connect(
///     async_nats::jetstream::new(nats),
///     JetStreamQueueConfig::default(),
/// )
/// .await?;
/// let gateway = Gateway::builder(GatewayConfig::default()).jetstream(queue).build();
/// # drop(gateway);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct JetStreamQueue {
    context: jetstream::Context,
    consumer: PullConsumer,
    config: JetStreamQueueConfig,
}

impl std::fmt::Debug for JetStreamQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamQueue")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn nats_error(doing: &str, error: impl std::fmt::Display) -> Error {
    Error::io(doing, std::io::Error::other(error.to_string()))
}

impl JetStreamQueue {
    /// Creates the stream and the durable consumer when missing, and binds to them.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the server cannot be reached, has no JetStream, or refuses the
    /// stream or the consumer (a stream of that name with other subjects, say).
    pub async fn connect(
        context: jetstream::Context,
        config: JetStreamQueueConfig,
    ) -> Result<Self> {
        let stream = context
            .get_or_create_stream(stream::Config {
                name: config.stream.clone(),
                subjects: vec![format!("{}.>", config.subject_prefix)],
                retention: stream::RetentionPolicy::WorkQueue,
                ..stream::Config::default()
            })
            .await
            .map_err(|e| nats_error(&format!("creating JetStream stream {}", config.stream), e))?;
        let wanted = pull::Config {
            durable_name: Some(config.consumer.clone()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: config.ack_wait,
            ..pull::Config::default()
        };
        let mut consumer: PullConsumer = stream
            .get_or_create_consumer(&config.consumer, wanted.clone())
            .await
            .map_err(|e| {
                nats_error(
                    &format!("creating the durable consumer {}", config.consumer),
                    e,
                )
            })?;
        if consumer.cached_info().config.ack_wait != config.ack_wait {
            // The consumer outlives gateways: one started with another ack wait sets it anew.
            consumer = stream.update_consumer(wanted).await.map_err(|e| {
                nats_error(
                    &format!(
                        "setting the ack wait of the durable consumer {}",
                        config.consumer
                    ),
                    e,
                )
            })?;
        }
        Ok(JetStreamQueue {
            context,
            consumer,
            config,
        })
    }

    /// The JetStream context the queue publishes through.
    pub(crate) fn context(&self) -> &jetstream::Context {
        &self.context
    }

    /// The subject of `key`'s calls.
    fn subject(&self, key: &FunctionKey) -> String {
        format!(
            "{}.{}.{}",
            self.config.subject_prefix,
            key.namespace(),
            key.name()
        )
    }

    /// Stores `job`; returns once the stream holds it.
    pub(crate) async fn publish(&self, job: &AsyncJob) -> Result<(), FunctionError> {
        let mut headers = async_nats::HeaderMap::new();
        for (name, value) in &job.forward.headers {
            if let Ok(value) = value.to_str() {
                headers.append(name.as_str(), value);
            }
        }
        headers.insert(METHOD, job.forward.method.as_str());
        headers.insert(PATH, job.forward.path_and_query.as_str());
        headers.insert(TIMEOUT_MS, job.timeout.as_millis().to_string().as_str());
        if let Some(callback) = &job.callback {
            headers.insert(CALLBACK_URL, callback.to_string().as_str());
        }
        headers.insert(MESSAGE_ID, job.call_id.as_str());
        let unavailable = |error: &dyn std::fmt::Display| {
            FunctionError::unavailable(format!(
                "the queue of asynchronous calls did not store the call: {error}"
            ))
        };
        self.context
            .publish_with_headers(
                self.subject(job.routes.key()),
                headers,
                job.forward.body.clone(),
            )
            .await
            .map_err(|e| unavailable(&e))?
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(())
    }
}

/// A stored call read back: its function and everything but the routes.
struct StoredCall {
    key: FunctionKey,
    forward: Forward,
    call_id: CallId,
    callback: Option<Uri>,
    timeout: Duration,
}

/// Reads a message back into the call it stores.
fn stored_call(prefix: &str, message: &async_nats::Message) -> Result<StoredCall, String> {
    let key = message
        .subject
        .as_str()
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.split_once('.'))
        .map(|(namespace, name)| FunctionKey::new(namespace, name))
        .ok_or_else(|| format!("subject {} names no function", message.subject))?;
    let stored = message
        .headers
        .as_ref()
        .ok_or("the message has no headers")?;
    let field = |name: &str| stored.get(name).map(|v| v.as_str().to_owned());
    let method: Method = field(METHOD)
        .and_then(|m| m.parse().ok())
        .ok_or("no valid method")?;
    let path_and_query = field(PATH).ok_or("no path")?;
    let timeout = field(TIMEOUT_MS)
        .and_then(|t| t.parse().ok())
        .map(Duration::from_millis)
        .ok_or("no valid timeout")?;
    let callback = field(CALLBACK_URL).and_then(|url| url.parse().ok());
    let mut headers = HeaderMap::new();
    for (name, values) in stored.iter() {
        let name = name.to_string().to_ascii_lowercase();
        if name.starts_with("faas-") || name.starts_with("nats-") {
            continue;
        }
        let Ok(name) = HeaderName::try_from(name) else {
            continue;
        };
        for value in values {
            if let Ok(value) = HeaderValue::from_str(value.as_str()) {
                headers.append(name.clone(), value);
            }
        }
    }
    let call_id = headers
        .get(faas_triggers::http::X_CALL_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_default();
    Ok(StoredCall {
        key,
        forward: Forward {
            method,
            path_and_query,
            headers,
            body: message.payload.clone(),
        },
        call_id,
        callback,
        timeout,
    })
}

/// Pulls stored calls and runs up to `async_workers` at once, until the queue closes; then
/// lets the running ones finish or hands them back at the end of the drain.
pub(crate) async fn worker(state: Arc<GatewayState>) {
    let Some(queue) = state.async_queue.jetstream.clone() else {
        return;
    };
    let closing = state.async_queue.closing.clone();
    // A call for a function the gateway has not listed yet is not a call for an unknown one, and
    // runs by its function's policy.
    tokio::select! {
        () = async { state.table.synced().await; state.table.policies_synced().await } => {}
        () = closing.cancelled() => return,
    }
    let callbacks = Arc::new(CallbackClient::new());
    let slots = Arc::new(Semaphore::new(state.config.async_workers()));
    let mut running = JoinSet::new();
    'pulling: loop {
        while running.try_join_next().is_some() {}
        let first = tokio::select! {
            () = closing.cancelled() => break 'pulling,
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let wanted = 1 + slots.available_permits();
        let batch = queue
            .consumer
            .batch()
            .max_messages(wanted)
            .expires(Duration::from_secs(1))
            .messages()
            .await;
        let mut batch = match batch {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(%error, "pulling asynchronous calls failed; retrying");
                tokio::select! {
                    () = closing.cancelled() => break 'pulling,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue 'pulling,
                }
            }
        };
        let mut first = Some(first);
        while let Some(next) = batch.next().await {
            let message = match next {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(%error, "pulling asynchronous calls failed; retrying");
                    break;
                }
            };
            let permit = match first.take() {
                Some(permit) => permit,
                None => slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed"),
            };
            let (state, queue, callbacks) = (state.clone(), queue.clone(), callbacks.clone());
            running.spawn(async move {
                handle(&state, &queue, &callbacks, message).await;
                drop(permit);
            });
        }
    }
    while running.join_next().await.is_some() {}
}

/// Settles `message` with `kind`, logging a failure (the broker then redelivers after the ack
/// wait).
async fn settle(message: &jetstream::Message, kind: AckKind) {
    let result = match kind {
        AckKind::Ack => message.double_ack().await,
        other => message.ack_with(other).await,
    };
    if let Err(error) = result {
        tracing::warn!(subject = %message.subject, %error, "settling an asynchronous call failed; the broker redelivers it");
    }
}

/// Runs one delivery of a stored call.
async fn handle(
    state: &Arc<GatewayState>,
    queue: &JetStreamQueue,
    callbacks: &CallbackClient,
    message: jetstream::Message,
) {
    let delivered = message.info().map_or(1, |info| {
        u32::try_from(info.delivered.max(1)).unwrap_or(u32::MAX)
    });
    let stored = match stored_call(&queue.config.subject_prefix, &message) {
        Ok(stored) => stored,
        Err(reason) => {
            tracing::error!(subject = %message.subject, %reason, "not a stored asynchronous call; dropped");
            settle(&message, AckKind::Term).await;
            return;
        }
    };
    let Some(routes) = state.table.known_routes(&stored.key) else {
        // The function went away while its call waited.
        let error = FunctionError::not_found(format!("no function named `{}`", stored.key));
        let mut request = http::Request::new(stored.forward.body.clone());
        *request.method_mut() = stored.forward.method.clone();
        *request.uri_mut() = stored.forward.path_and_query.parse().unwrap_or_default();
        *request.headers_mut() = stored.forward.headers.clone();
        let letter = DeadLetterEntry::new(
            stored.key.to_string(),
            stored.call_id.clone(),
            request,
            error,
            delivered,
        );
        match state
            .async_queue
            .dead_letters
            .default_dead_letter()
            .dead_letter(letter)
            .await
        {
            Ok(()) => settle(&message, AckKind::Ack).await,
            Err(error) => {
                tracing::error!(function = %stored.key, %error, "the dead letter did not take the call; retried later");
                settle(&message, AckKind::Nak(Some(queue.config.ack_wait))).await;
            }
        }
        return;
    };
    let job = AsyncJob {
        routes,
        forward: stored.forward,
        call_id: stored.call_id,
        callback: stored.callback,
        timeout: stored.timeout,
    };
    let closing = state.async_queue.closing.clone();
    // Hand the call back a little before the gateway's drain ends, so another gateway gets it
    // at once rather than after the ack wait.
    let give_up = state
        .config
        .drain_timeout()
        .saturating_sub(Duration::from_millis(500));
    let progress = queue.config.ack_wait / 3;
    let running = attempt(state, &job);
    let mut running = std::pin::pin!(running);
    let outcome = loop {
        tokio::select! {
            outcome = &mut running => break Some(outcome),
            () = tokio::time::sleep(progress) => settle(&message, AckKind::Progress).await,
            () = async { closing.cancelled().await; tokio::time::sleep(give_up).await } => break None,
        }
    };
    let Some(outcome) = outcome else {
        settle(&message, AckKind::Nak(None)).await;
        return;
    };
    let policy = state.async_queue.policy_of(&job.routes);
    let retry = policy.retry();
    if let Some(error) = &outcome.error
        && retry.should_retry(error, delivered)
    {
        tracing::debug!(function = %job.routes.key(), call_id = %job.call_id, attempt = delivered, %error, "asynchronous call failed; redelivered later");
        settle(&message, AckKind::Nak(Some(retry.backoff(delivered)))).await;
        return;
    }
    if finish(state, callbacks, &job, &policy, delivered, outcome).await {
        settle(&message, AckKind::Ack).await;
    } else {
        settle(&message, AckKind::Nak(Some(retry.backoff(delivered)))).await;
    }
}
