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
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tokio_util::time::DelayQueue;

use super::config::{RedisStreamTriggerConfig, StartFrom};
use super::dead_letter::RedisDeadLetter;
use super::lag::RedisLag;
use super::message::{Group, RedisEntry, invocation_of};
use crate::event::{Reconnect, deliver, invalid, invoker_or, take_slots};
use crate::{Error, Result};

/// The in-flight limit when neither the trigger nor the function's policy
/// sets one.
const FALLBACK_MAX_IN_FLIGHT: usize = 256;

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
/// pending for `claim_idle` are reclaimed (`XAUTOCLAIM`); while a call
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
    /// [`Error::InvalidConfig`] naming a bad setting.
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
        let invoker = invoker_or(self.invoker.as_ref(), &dispatcher);
        let max_in_flight = self
            .config
            .max_in_flight
            .or_else(|| {
                invoker
                    .policy(&self.function)
                    .and_then(|p| p.max_in_flight())
            })
            .unwrap_or(FALLBACK_MAX_IN_FLIGHT);
        let running = Arc::new(Running {
            function: self.function.clone(),
            config: self.config.clone(),
            invoker,
            slots: Arc::new(Semaphore::new(max_in_flight)),
            tracker: TaskTracker::new(),
        });
        let source = format!(
            "redis stream {} group {}",
            self.config.stream, self.config.group
        );
        let mut reconnect = Reconnect::new(source, dispatcher.readiness().clone());
        let (retry_sender, mut retries) = mpsc::unbounded_channel();
        let mut delayed = DelayQueue::new();
        let result = loop {
            if shutdown.is_cancelled() {
                break Ok(());
            }
            let session = match Session::open(&running.config, retry_sender.clone()).await {
                Ok(session) => session,
                Err(Open::Config(error)) => break Err(error),
                Err(Open::Unreachable(error)) => {
                    if reconnect.failed(&error, &shutdown).await {
                        continue;
                    }
                    break Ok(());
                }
            };
            reconnect.connected();
            let session = Arc::new(session);
            let ended = tokio::select! {
                () = shutdown.cancelled() => None,
                error = read_new(&running, &session) => Some(error),
                error = reclaim_idle(&running, &session) => Some(error),
                error = redeliver_later(&running, &session, &mut retries, &mut delayed) => Some(error),
            };
            match ended {
                None => break Ok(()),
                Some(error) => {
                    if !reconnect.failed(&error, &shutdown).await {
                        break Ok(());
                    }
                }
            }
        };
        running.tracker.close();
        running.tracker.wait().await;
        reconnect.stopped();
        result
    }
}

/// What every task of a running trigger shares.
struct Running {
    function: String,
    config: RedisStreamTriggerConfig,
    invoker: Arc<dyn Invoker>,
    slots: Arc<Semaphore>,
    tracker: TaskTracker,
}

/// The connections of one session with the server.
struct Session {
    /// For blocking reads only (a blocked read holds up a connection).
    reader: MultiplexedConnection,
    group: Group,
    dead_letter: Option<RedisDeadLetter>,
}

enum Open {
    Config(Error),
    Unreachable(String),
}

impl Session {
    async fn open(
        config: &RedisStreamTriggerConfig,
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
        })
    }
}

/// Reads new entries until a read fails.
async fn read_new(running: &Arc<Running>, session: &Arc<Session>) -> String {
    let config = &running.config;
    let mut reader = session.reader.clone();
    let block = u64::try_from(config.block.as_millis()).unwrap_or(u64::MAX);
    loop {
        let mut permits = take_slots(&running.slots, config.batch).await;
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
            spawn_call(running, session, entry.id, entry.map, 1, permit);
        }
    }
}

/// Reclaims entries left idle by a dead consumer, every half `claim_idle`,
/// until a command fails.
async fn reclaim_idle(running: &Arc<Running>, session: &Arc<Session>) -> String {
    let config = &running.config;
    let every = (config.claim_idle / 2).max(Duration::from_millis(250));
    let idle = u64::try_from(config.claim_idle.as_millis()).unwrap_or(u64::MAX);
    let mut connection = session.group.connection.clone();
    loop {
        tokio::time::sleep(every).await;
        let mut cursor = "0-0".to_owned();
        loop {
            let permits = take_slots(&running.slots, config.batch).await;
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
            if let Err(error) = spawn_claimed(running, session, reply.claimed, permits).await {
                return error;
            }
            if reply.next_stream_id == "0-0" {
                break;
            }
            cursor = reply.next_stream_id;
        }
    }
}

/// Claims nacked entries again once their delay passed, until a command
/// fails.
async fn redeliver_later(
    running: &Arc<Running>,
    session: &Arc<Session>,
    retries: &mut mpsc::UnboundedReceiver<(String, Duration)>,
    delayed: &mut DelayQueue<(String, Duration)>,
) -> String {
    let config = &running.config;
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
        let permits = take_slots(&running.slots, claimed.len().max(1)).await;
        if let Err(error) = spawn_claimed(running, session, claimed, permits).await {
            return error;
        }
    }
}

/// Starts the calls of claimed entries, each with its delivery count.
async fn spawn_claimed(
    running: &Arc<Running>,
    session: &Arc<Session>,
    claimed: Vec<redis::streams::StreamId>,
    mut permits: OwnedSemaphorePermit,
) -> Result<(), String> {
    let mut connection = session.group.connection.clone();
    for entry in claimed {
        let pending: StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(&running.config.stream)
            .arg(&running.config.group)
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
            None => Arc::clone(&running.slots)
                .acquire_owned()
                .await
                .expect("the semaphore is never closed"),
        };
        let attempt = u32::try_from(count.max(1)).unwrap_or(u32::MAX);
        spawn_call(running, session, entry.id, entry.map, attempt, permit);
    }
    Ok(())
}

fn spawn_call(
    running: &Arc<Running>,
    session: &Arc<Session>,
    id: String,
    fields: HashMap<String, Value>,
    attempt: u32,
    permit: OwnedSemaphorePermit,
) {
    let running_for_call = Arc::clone(running);
    let session = Arc::clone(session);
    running.tracker.spawn(async move {
        let running = running_for_call;
        let config = &running.config;
        let invocation = invocation_of(
            &config.stream,
            &id,
            &fields,
            &config.payload_field,
            &running.function,
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
            &*running.invoker,
            &running.function,
            invocation,
            &entry,
            Some(config.claim_idle / 2),
            route,
        )
        .await;
        drop(permit);
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
