//! [`NatsTrigger`]: a durable JetStream pull consumer feeding one function.

use std::sync::Arc;

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::stream::ConsumerErrorKind;
use async_nats::jetstream::{self, ErrorCode};
use async_trait::async_trait;
use faas_core::trigger::{DeadLetterRoute, Invoker};
use faas_core::{DeadLetter, Dispatcher, Trigger};
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;

use super::config::{NatsTriggerConfig, invalid};
use super::dead_letter::NatsDeadLetter;
use super::lag::NatsLag;
use super::message::{NatsMessage, Origin, invocation_of};
use crate::Result;
use crate::event::source::{Calls, EventSource, Open, run_source};
use crate::event::{deliver, take_slots};

/// Delivers the messages of a JetStream stream to one function, at least
/// once.
///
/// At start it binds the durable pull consumer (creating or updating it:
/// explicit acks, the configured `ack_wait`, no delivery limit of its own,
/// since the function's policy decides), then pulls batches of at most
/// `batch` messages, never more than it has free in-flight slots, and runs
/// one call per message at once. Each message is settled after its call
/// ([`Settlement`](faas_core::trigger::Settlement)): `+ACK` on success,
/// `-NAK` with the policy's backoff as the delay on a retryable failure,
/// `+TERM` once a message that failed for good is safe in the dead letter;
/// `+WPI` (in progress) every half `ack_wait` while a call runs. The
/// message's delivery count is the call's
/// [`attempt`](faas_core::Context::attempt).
///
/// A server that cannot be reached (at start or later) is waited for with
/// back-off while the host's [`Readiness`](faas_core::trigger::Readiness)
/// says not ready; a stream that does not exist or a consumer the server
/// refuses ends the trigger with an error naming the setting.
///
/// ```no_run
/// use faas_core::{FunctionDefinition, Json, LocalExecutor, Registry};
/// use faas_triggers::nats::{NatsTrigger, NatsTriggerConfig};
///
/// #[derive(serde::Deserialize)]
/// struct Order { id: u64 }
///
/// async fn bill(Json(order): Json<Order>) -> String {
///     format!("billed {}", order.id)
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = Registry::from([FunctionDefinition::from_handler("bill", bill)]);
/// let config = NatsTriggerConfig::new("nats://127.0.0.1:4222", "ORDERS", "billing")
///     .with_filter_subject("orders.created")
///     .with_dead_letter_subject("orders.dead");
/// LocalExecutor::builder(registry)
///     .trigger(NatsTrigger::new("bill", config)?)
///     .build()
///     .shutdown_on_signal()
///     .run()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use]
pub struct NatsTrigger {
    function: String,
    config: NatsTriggerConfig,
    invoker: Option<Arc<dyn Invoker>>,
}

impl std::fmt::Debug for NatsTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsTrigger")
            .field("function", &self.function)
            .field("config", &self.config)
            .field("invoker", &self.invoker.as_ref().map(|_| "Invoker"))
            .finish()
    }
}

impl NatsTrigger {
    /// Delivers what `config` reads to `function`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) naming a bad setting.
    pub fn new(function: impl Into<String>, config: NatsTriggerConfig) -> Result<Self> {
        config.validate()?;
        Ok(NatsTrigger {
            function: function.into(),
            config,
            invoker: None,
        })
    }

    /// Calls the function through `invoker` (e.g. a
    /// [`GatewayInvoker`](crate::gateway::GatewayInvoker)) instead of the
    /// host's dispatcher.
    pub fn with_invoker(mut self, invoker: Arc<dyn Invoker>) -> Self {
        self.invoker = Some(invoker);
        self
    }

    /// The function it feeds.
    pub fn function(&self) -> &str {
        &self.function
    }

    /// A [`LagSource`](faas_core::trigger::LagSource) for the autoscaler:
    /// the consumer's pending and unacknowledged messages.
    pub fn lag_source(&self) -> NatsLag {
        NatsLag::new(self.function.clone(), self.config.clone())
    }

    async fn run_trigger(self, dispatcher: Dispatcher, shutdown: CancellationToken) -> Result<()> {
        let calls = Calls::new(
            &self.function,
            self.invoker.as_ref(),
            self.config.max_in_flight,
            &dispatcher,
        );
        let source = NatsSource {
            config: Arc::new(self.config),
        };
        run_source(source, calls, &dispatcher, &shutdown).await
    }
}

/// The NATS side of the shared source loop.
struct NatsSource {
    config: Arc<NatsTriggerConfig>,
}

#[async_trait]
impl EventSource for NatsSource {
    type Session = Bound;

    fn describe(&self) -> String {
        format!(
            "nats stream {} consumer {}",
            self.config.stream, self.config.consumer
        )
    }

    async fn open(&mut self, calls: &Arc<Calls>) -> Result<Bound, Open> {
        bind(&self.config, calls.max_in_flight).await
    }

    async fn serve(&mut self, calls: &Arc<Calls>, bound: &Arc<Bound>) -> String {
        pull(calls, &self.config, bound).await
    }
}

/// A bound consumer and its dead letter.
struct Bound {
    consumer: PullConsumer,
    dead_letter: Option<Arc<NatsDeadLetter>>,
}

/// Connects and creates or updates the durable consumer.
async fn bind(config: &NatsTriggerConfig, max_in_flight: usize) -> Result<Bound, Open> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(std::time::Duration::from_secs(5))
        .connect(config.url.as_str())
        .await
        .map_err(|error| Open::Unreachable(error.to_string()))?;
    let context = jetstream::new(client);
    let stream = context
        .get_stream(&config.stream)
        .await
        .map_err(|error| match error.kind() {
            GetStreamErrorKind::JetStream(inner)
                if inner.error_code() == ErrorCode::STREAM_NOT_FOUND =>
            {
                Open::Config(invalid(
                    "nats.stream",
                    &config.stream,
                    "no such stream on the server",
                ))
            }
            GetStreamErrorKind::JetStream(inner) => {
                Open::Config(invalid("nats.stream", &config.stream, inner.to_string()))
            }
            _ => Open::Unreachable(error.to_string()),
        })?;
    let consumer_config = pull::Config {
        durable_name: Some(config.consumer.clone()),
        filter_subject: config.filter_subject.clone().unwrap_or_default(),
        ack_policy: AckPolicy::Explicit,
        ack_wait: config.ack_wait,
        max_ack_pending: i64::try_from(max_in_flight.max(1000)).unwrap_or(i64::MAX),
        ..Default::default()
    };
    let consumer: PullConsumer =
        stream
            .create_consumer(consumer_config)
            .await
            .map_err(|error| match error.kind() {
                ConsumerErrorKind::JetStream(inner) => Open::Config(invalid(
                    if config.filter_subject.is_some() {
                        "nats.filter_subject"
                    } else {
                        "nats.consumer"
                    },
                    config.filter_subject.as_deref().unwrap_or(&config.consumer),
                    format!("the server refused the consumer: {inner}"),
                )),
                _ => Open::Unreachable(error.to_string()),
            })?;
    let dead_letter = config
        .dead_letter_subject
        .as_ref()
        .map(|subject| Arc::new(NatsDeadLetter::new(context.clone(), subject.clone())));
    Ok(Bound {
        consumer,
        dead_letter,
    })
}

/// Pulls and starts calls until a pull fails; the reason.
async fn pull(calls: &Arc<Calls>, config: &Arc<NatsTriggerConfig>, bound: &Bound) -> String {
    loop {
        let mut permits = take_slots(&calls.slots, config.batch).await;
        let wanted = permits.num_permits();
        let batch = bound
            .consumer
            .batch()
            .max_messages(wanted)
            .expires(config.fetch_wait)
            .messages()
            .await;
        let mut batch = match batch {
            Ok(batch) => batch,
            Err(error) => return format!("pull failed: {error}"),
        };
        while let Some(next) = batch.next().await {
            let message = match next {
                Ok(message) => message,
                Err(error) => return format!("pull failed: {error}"),
            };
            let Some(permit) = permits.split(1) else {
                // More than asked for: the broker redelivers it after ack_wait.
                break;
            };
            let for_call = Arc::clone(calls);
            let config = Arc::clone(config);
            let dead_letter = bound.dead_letter.clone();
            calls.spawn(permit, async move {
                handle(&for_call, &config, message, dead_letter.as_deref()).await;
            });
        }
    }
}

/// One message: the call, then its settlement.
async fn handle(
    calls: &Calls,
    config: &NatsTriggerConfig,
    message: jetstream::Message,
    dead_letter: Option<&NatsDeadLetter>,
) {
    let Some(origin) = Origin::of(&message) else {
        tracing::warn!(subject = %message.subject, "a message without JetStream metadata; skipped");
        return;
    };
    let invocation = invocation_of(&message, &origin, &calls.function);
    let sequence = origin.sequence.to_string();
    let subject = message.subject.to_string();
    let attributes = [
        ("subject", subject.as_str()),
        ("stream", origin.stream.as_str()),
        ("sequence", sequence.as_str()),
    ];
    let route = DeadLetterRoute::new(dead_letter.map(|dead| dead as &dyn DeadLetter), &attributes);
    let message = NatsMessage(message);
    deliver(
        &*calls.invoker,
        &calls.function,
        invocation,
        &message,
        Some(config.ack_wait / 2),
        route,
    )
    .await;
}

#[async_trait]
impl Trigger for NatsTrigger {
    fn name(&self) -> &str {
        "nats"
    }

    async fn run(
        self: Box<Self>,
        dispatcher: Dispatcher,
        shutdown: CancellationToken,
    ) -> Result<(), faas_core::Error> {
        (*self)
            .run_trigger(dispatcher, shutdown)
            .await
            .map_err(|error| faas_core::Error::trigger("nats", error))
    }
}
