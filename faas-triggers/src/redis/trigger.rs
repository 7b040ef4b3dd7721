//! [`RedisStreamTrigger`]: a member of a Redis Streams consumer group
//! feeding one function.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faas_core::trigger::{DeadLetterRoute, Invoker};
use faas_core::{DeadLetter, Dispatcher, Trigger};
use futures::StreamExt as _;
use redis::aio::MultiplexedConnection;
use redis::streams::{
    StreamAutoClaimReply, StreamClaimReply, StreamPendingCountReply, StreamReadReply,
};
use redis::{AsyncConnectionConfig, Value};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::time::DelayQueue;

use super::config::{RedisStreamTriggerConfig, StartFrom};
use super::consumers::remove_dead_consumers;
use super::dead_letter::RedisDeadLetter;
use super::lag::RedisLag;
use super::message::{Group, RedisEntry, invocation_of};
use crate::Result;
use crate::event::source::{Calls, EventSource, Open, run_source};
use crate::event::{deliver, invalid, take_slots};

/// How long a command other than a blocking read may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Delivers the entries of a Redis stream to one function, at least once,
/// as one member of a consumer group.
///
/// At start it makes the group if missing (`XGROUP CREATE ... MKSTREAM`),
/// then reads new entries (`XREADGROUP ... >`, at most `batch` and never
/// more than free in-flight slots) and runs one call per entry at once.
/// After a call, the entry is acknowledged (`XACK`) on success, or once it
/// is safe in the dead letter; after a retryable failure it stays pending
/// and is claimed again by this consumer after the policy's backoff
/// (`XCLAIM`, which counts a delivery). Entries a dead consumer left
/// pending for `claim_idle` are reclaimed (`XAUTOCLAIM`), and a consumer
/// that has not read for `dead_consumer_idle` and holds nothing is removed
/// from the group (`XGROUP DELCONSUMER`); while a call
/// runs, its entry is kept fresh so nobody reclaims it. The delivery count
/// from the group's pending list is the call's
/// [`attempt`](faas_core::Context::attempt).
///
/// A server that cannot be reached is waited for with back-off while the
/// host's [`Readiness`](faas_core::trigger::Readiness) says not ready; a key
/// that holds something other than a stream ends the trigger with an error
/// naming `redis.stream`.
///
/// ```no_run
/// use faas_core::{FunctionDefinition, Json, LocalExecutor, Registry};
/// use faas_triggers::redis::{RedisStreamTrigger, RedisStreamTriggerConfig};
///
/// #[derive(serde::Deserialize)]
/// struct Signup { email: String }
///
/// async fn welcome(Json(signup): Json<Signup>) -> String {
///     format!("welcome {}", signup.email)
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = Registry::from([FunctionDefinition::from_handler("welcome", welcome)]);
/// let config = RedisStreamTriggerConfig::new("redis://127.0.0.1:6379/", "signups", "mailer")
///     .with_dead_letter_stream("signups:dead");
/// LocalExecutor::builder(registry)
///     .trigger(RedisStreamTrigger::new("welcome", config)?)
///     .build()
///     .shutdown_on_signal()
///     .run()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use]
pub struct RedisStreamTrigger {
    function: String,
    config: RedisStreamTriggerConfig,
    invoker: Option<Arc<dyn Invoker>>,
}

impl std::fmt::Debug for RedisStreamTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStreamTrigger")
            .field("function", &self.function)
            .field("config", &self.config)
            .field("invoker", &self.invoker.as_ref().map(|_| "Invoker"))
            .finish()
    }
}

impl RedisStreamTrigger {
    /// Delivers what `config` reads to `function`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) naming a bad setting.
    pub fn new(function: impl Into<String>, config: RedisStreamTriggerConfig) -> Result<Self> {
        config.validate()?;
        Ok(RedisStreamTrigger {
            function: function.into(),
            config,
            invoker: None,
        })
    }

    /// Calls the function through `invoker` instead of the host's dispatcher.
    pub fn with_invoker(mut self, invoker: Arc<dyn Invoker>) -> Self {
        self.invoker = Some(invoker);
        self
    }

    /// The function it feeds.
    pub fn function(&self) -> &str {
        &self.function
    }

    /// A [`LagSource`](faas_core::trigger::LagSource) for the autoscaler.
    pub fn lag_source(&self) -> RedisLag {
        RedisLag::new(self.function.clone(), self.config.clone())
    }

    async fn run_trigger(self, dispatcher: Dispatcher, shutdown: CancellationToken) -> Result<()> {
        let calls = Calls::new(
            &self.function,
            self.invoker.as_ref(),
            self.config.max_in_flight,
            &dispatcher,
        );
        let (retry_sender, retries) = mpsc::unbounded_channel();
        let source = RedisSource {
            config: Arc::new(self.config),
            retry_sender,
            retries,
            delayed: DelayQueue::new(),
        };
        run_source(source, calls, &dispatcher, &shutdown).await
    }
}

/// The Redis side of the shared source loop; the entries to claim again
/// later outlive a session.
struct RedisSource {
    config: Arc<RedisStreamTriggerConfig>,
    retry_sender: mpsc::UnboundedSender<(String, Duration)>,
    retries: mpsc::UnboundedReceiver<(String, Duration)>,
    delayed: DelayQueue<(String, Duration)>,
}

#[async_trait]
impl EventSource for RedisSource {
    type Session = Session;

    fn describe(&self) -> String {
        format!(
            "redis stream {} group {}",
            self.config.stream, self.config.group
        )
    }

    async fn open(&mut self, _: &Arc<Calls>) -> Result<Session, Open> {
        Session::open(&self.config, self.retry_sender.clone()).await
    }

    async fn serve(&mut self, calls: &Arc<Calls>, session: &Arc<Session>) -> String {
        let config = &self.config;
        tokio::select! {
            error = read_new(calls, config, session) => error,
            error = reclaim_idle(calls, config, session) => error,
            error = redeliver_later(calls, config, session, &mut self.retries, &mut self.delayed) => error,
        }
    }
}

/// The connections of one session with the server.
struct Session {
    /// For blocking reads only (a blocked read holds up a connection).
    reader: MultiplexedConnection,
    group: Group,
    dead_letter: Option<RedisDeadLetter>,
    config: Arc<RedisStreamTriggerConfig>,
}

impl Session {
    async fn open(
        config: &Arc<RedisStreamTriggerConfig>,
        retries: mpsc::UnboundedSender<(String, Duration)>,
    ) -> Result<Session, Open> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|error| Open::Config(invalid("redis.url", &config.url, error.to_string())))?;
        let connect = |timeout: Duration| {
            let client = client.clone();
            async move {
                let options = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(COMMAND_TIMEOUT))
                    .set_response_timeout(Some(timeout));
                client
                    .get_multiplexed_async_connection_with_config(&options)
                    .await
                    .map_err(|error| Open::Unreachable(error.to_string()))
            }
        };
        let reader = connect(config.block + COMMAND_TIMEOUT).await?;
        let mut control = connect(COMMAND_TIMEOUT).await?;
        let start = match config.start_from {
            StartFrom::Beginning => "0",
            StartFrom::NewEntries => "$",
        };
        let created: Result<Value, redis::RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&config.stream)
            .arg(&config.group)
            .arg(start)
            .arg("MKSTREAM")
            .query_async(&mut control)
            .await;
        match created {
            Ok(_) => {}
            Err(error) if error.code() == Some("BUSYGROUP") => {}
            Err(error) if error.code() == Some("WRONGTYPE") => {
                return Err(Open::Config(invalid(
                    "redis.stream",
                    &config.stream,
                    "the key holds something other than a stream",
                )));
            }
            Err(error) => return Err(Open::Unreachable(error.to_string())),
        }
        let dead_letter = config
            .dead_letter_stream
            .as_ref()
            .map(|stream| RedisDeadLetter::new(control.clone(), stream.clone()));
        Ok(Session {
            reader,
            group: Group {
                connection: control,
                stream: config.stream.clone(),
                group: config.group.clone(),
                consumer: config.consumer.clone(),
                retries,
            },
            dead_letter,
            config: Arc::clone(config),
        })
    }
}

/// Reads new entries until a read fails.
async fn read_new(
    calls: &Arc<Calls>,
    config: &RedisStreamTriggerConfig,
    session: &Arc<Session>,
) -> String {
    let mut reader = session.reader.clone();
    let block = u64::try_from(config.block.as_millis()).unwrap_or(u64::MAX);
    loop {
        let mut permits = take_slots(&calls.slots, config.batch).await;
        let reply: Result<Option<StreamReadReply>, _> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&config.group)
            .arg(&config.consumer)
            .arg("COUNT")
            .arg(permits.num_permits())
            .arg("BLOCK")
            .arg(block)
            .arg("STREAMS")
            .arg(&config.stream)
            .arg(">")
            .query_async(&mut reader)
            .await;
        let reply = match reply {
            Ok(reply) => reply,
            Err(error) => return format!("XREADGROUP failed: {error}"),
        };
        for entry in reply
            .into_iter()
            .flat_map(|reply| reply.keys)
            .flat_map(|key| key.ids)
        {
            let Some(permit) = permits.split(1) else {
                break;
            };
            spawn_call(calls, session, entry.id, entry.map, 1, permit);
        }
    }
}

/// Reclaims entries left idle by a dead consumer, every half `claim_idle`
/// (or half `dead_consumer_idle` when shorter), then removes the consumers idle past `dead_consumer_idle` that hold
/// nothing, until a command fails.
async fn reclaim_idle(
    calls: &Arc<Calls>,
    config: &RedisStreamTriggerConfig,
    session: &Arc<Session>,
) -> String {
    let every =
        (config.claim_idle.min(config.dead_consumer_idle) / 2).max(Duration::from_millis(250));
    let idle = u64::try_from(config.claim_idle.as_millis()).unwrap_or(u64::MAX);
    let dead_idle = u64::try_from(config.dead_consumer_idle.as_millis()).unwrap_or(u64::MAX);
    let mut connection = session.group.connection.clone();
    loop {
        tokio::time::sleep(every).await;
        let mut cursor = "0-0".to_owned();
        loop {
            let permits = take_slots(&calls.slots, config.batch).await;
            let reply: Result<StreamAutoClaimReply, _> = redis::cmd("XAUTOCLAIM")
                .arg(&config.stream)
                .arg(&config.group)
                .arg(&config.consumer)
                .arg(idle)
                .arg(&cursor)
                .arg("COUNT")
                .arg(permits.num_permits())
                .query_async(&mut connection)
                .await;
            let reply = match reply {
                Ok(reply) => reply,
                Err(error) => return format!("XAUTOCLAIM failed: {error}"),
            };
            if !reply.claimed.is_empty() {
                tracing::info!(
                    stream = %config.stream,
                    count = reply.claimed.len(),
                    "reclaimed entries left idle by a consumer"
                );
            }
            if let Err(error) = spawn_claimed(calls, session, reply.claimed, permits).await {
                return error;
            }
            if reply.next_stream_id == "0-0" {
                break;
            }
            cursor = reply.next_stream_id;
        }
        // Whatever a dead consumer held is ours now: forget the consumer.
        match remove_dead_consumers(
            &mut connection,
            &config.stream,
            &config.group,
            &config.consumer,
            dead_idle,
        )
        .await
        {
            Ok(removed) => {
                for consumer in removed {
                    tracing::info!(
                        stream = %config.stream,
                        group = %config.group,
                        %consumer,
                        "removed a consumer that stopped reading and holds nothing"
                    );
                }
            }
            Err(error) => return format!("removing dead consumers failed: {error}"),
        }
    }
}

/// Claims nacked entries again once their delay passed, until a command
/// fails.
async fn redeliver_later(
    calls: &Arc<Calls>,
    config: &RedisStreamTriggerConfig,
    session: &Arc<Session>,
    retries: &mut mpsc::UnboundedReceiver<(String, Duration)>,
    delayed: &mut DelayQueue<(String, Duration)>,
) -> String {
    let mut connection = session.group.connection.clone();
    loop {
        let (id, delay) = tokio::select! {
            Some((id, delay)) = retries.recv() => {
                delayed.insert((id, delay), delay);
                continue;
            }
            Some(expired) = delayed.next(), if !delayed.is_empty() => expired.into_inner(),
        };
        // Claimed only if still idle that long: if another consumer took it
        // meanwhile, or it was acked, nothing comes back.
        let min_idle = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        let reply: Result<StreamClaimReply, _> = redis::cmd("XCLAIM")
            .arg(&config.stream)
            .arg(&config.group)
            .arg(&config.consumer)
            .arg(min_idle)
            .arg(&id)
            .query_async(&mut connection)
            .await;
        let claimed = match reply {
            Ok(reply) => reply.ids,
            Err(error) => {
                // Keep it for the next session; it stays pending meanwhile.
                delayed.insert((id, delay), Duration::ZERO);
                return format!("XCLAIM failed: {error}");
            }
        };
        let permits = take_slots(&calls.slots, claimed.len().max(1)).await;
        if let Err(error) = spawn_claimed(calls, session, claimed, permits).await {
            return error;
        }
    }
}

/// Starts the calls of claimed entries, each with its delivery count.
async fn spawn_claimed(
    calls: &Arc<Calls>,
    session: &Arc<Session>,
    claimed: Vec<redis::streams::StreamId>,
    mut permits: OwnedSemaphorePermit,
) -> Result<(), String> {
    let mut connection = session.group.connection.clone();
    for entry in claimed {
        let pending: StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(&session.config.stream)
            .arg(&session.config.group)
            .arg(&entry.id)
            .arg(&entry.id)
            .arg(1)
            .query_async(&mut connection)
            .await
            .map_err(|error| format!("XPENDING failed: {error}"))?;
        let Some(count) = pending.ids.first().map(|pending| pending.times_delivered) else {
            // Acked meanwhile.
            continue;
        };
        let permit = match permits.split(1) {
            Some(permit) => permit,
            None => Arc::clone(&calls.slots)
                .acquire_owned()
                .await
                .expect("the semaphore is never closed"),
        };
        let attempt = u32::try_from(count.max(1)).unwrap_or(u32::MAX);
        spawn_call(calls, session, entry.id, entry.map, attempt, permit);
    }
    Ok(())
}

fn spawn_call(
    calls: &Arc<Calls>,
    session: &Arc<Session>,
    id: String,
    fields: HashMap<String, Value>,
    attempt: u32,
    permit: OwnedSemaphorePermit,
) {
    let for_call = Arc::clone(calls);
    let session = Arc::clone(session);
    calls.spawn(permit, async move {
        let calls = for_call;
        let config = &session.config;
        let invocation = invocation_of(
            &config.stream,
            &id,
            &fields,
            &config.payload_field,
            &calls.function,
            attempt,
        );
        let attributes = [("stream", config.stream.as_str()), ("id", id.as_str())];
        let route = DeadLetterRoute::new(
            session
                .dead_letter
                .as_ref()
                .map(|dead| dead as &dyn DeadLetter),
            &attributes,
        );
        let entry = RedisEntry {
            group: &session.group,
            id: &id,
        };
        deliver(
            &*calls.invoker,
            &calls.function,
            invocation,
            &entry,
            Some(config.claim_idle / 2),
            route,
        )
        .await;
    });
}

#[async_trait]
impl Trigger for RedisStreamTrigger {
    fn name(&self) -> &str {
        "redis"
    }

    async fn run(
        self: Box<Self>,
        dispatcher: Dispatcher,
        shutdown: CancellationToken,
    ) -> Result<(), faas_core::Error> {
        (*self)
            .run_trigger(dispatcher, shutdown)
            .await
            .map_err(|error| faas_core::Error::trigger("redis", error))
    }
}
