//! [`PostgresTrigger`]: row changes of a table, through an outbox, feeding
//! one function.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faas_core::trigger::{DeadLetterRoute, Invoker};
use faas_core::{DeadLetter, Dispatcher, Trigger};
use futures::StreamExt as _;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, Client, NoTls};
use tokio_util::sync::CancellationToken;

use super::config::PostgresTriggerConfig;
use super::dead_letter::PostgresDeadLetter;
use super::lag::PostgresLag;
use super::row::{Claimed, OutboxRow, Statements};
use super::setup::{CHANNEL, OUTBOX, statements};
use crate::event::source::{Calls, EventSource, Open, run_source};
use crate::event::{deliver, invalid, take_slots};
use crate::{Error, Result};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Delivers the inserted, updated (or deleted) rows of a table to one
/// function, at least once, across restarts and with several consumers.
///
/// At start it applies its setup SQL in one transaction, idempotently
/// (`CREATE ... IF NOT EXISTS`, `CREATE OR REPLACE`; see the
/// [module](super) page): an outbox table, a dead-letter table, and a row
/// trigger on the followed table that copies each change into the outbox
/// and notifies. Then it claims due outbox rows (`FOR UPDATE SKIP LOCKED`,
/// so replicas never take the same row), each for a lease, woken by
/// `LISTEN` and, for leases that ran out, by a poll. After its call a row
/// is deleted on success or once it is safe in the dead letter; after a
/// retryable failure it becomes due again after the policy's backoff. A
/// running call renews its row's lease. The number of claims of a row is
/// the call's [`attempt`](faas_core::Context::attempt).
///
/// A database that cannot be reached is waited for with back-off while the
/// host's [`Readiness`](faas_core::trigger::Readiness) says not ready; a
/// table that does not exist ends the trigger with an error naming
/// `postgres.table`.
///
/// ```no_run
/// use faas_core::{FunctionDefinition, Json, LocalExecutor, Registry};
/// use faas_triggers::postgres::{PostgresTrigger, PostgresTriggerConfig};
///
/// #[derive(serde::Deserialize)]
/// struct Order { id: i64, total: f64 }
///
/// async fn invoice(Json(order): Json<Order>) -> String {
///     format!("invoice for order {} ({})", order.id, order.total)
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = Registry::from([FunctionDefinition::from_handler("invoice", invoice)]);
/// let config = PostgresTriggerConfig::new("postgres://app@127.0.0.1:5432/shop", "orders");
/// LocalExecutor::builder(registry)
///     .trigger(PostgresTrigger::new("invoice", config)?)
///     .build()
///     .shutdown_on_signal()
///     .run()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use]
pub struct PostgresTrigger {
    function: String,
    config: PostgresTriggerConfig,
    invoker: Option<Arc<dyn Invoker>>,
}

impl std::fmt::Debug for PostgresTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresTrigger")
            .field("function", &self.function)
            .field("table", &self.config.table)
            .field("invoker", &self.invoker.as_ref().map(|_| "Invoker"))
            .finish()
    }
}

impl PostgresTrigger {
    /// Delivers the changes `config` follows to `function`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming a bad setting.
    pub fn new(function: impl Into<String>, config: PostgresTriggerConfig) -> Result<Self> {
        let function = function.into();
        config.validate_for(&function)?;
        Ok(PostgresTrigger {
            function,
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

    /// The subscriber name its outbox rows and database trigger carry.
    pub fn subscriber(&self) -> &str {
        self.config.subscriber_for(&self.function)
    }

    /// Applies the setup SQL now (the trigger also does at every start):
    /// for an administrator who installs the outbox ahead of time, or a
    /// deployment that must capture changes before the first consumer runs.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming `postgres.table` when the table does
    /// not exist, or `postgres.url` when the database refuses the user;
    /// [`Error::Core`] when the database cannot be reached.
    pub async fn install(&self) -> Result<()> {
        match Session::open(&self.source()).await {
            Ok(session) => {
                session.listener.abort();
                Ok(())
            }
            Err(Open::Config(error)) => Err(error),
            Err(Open::Unreachable(reason)) => Err(Error::Core(faas_core::Error::trigger(
                "postgres",
                format!("cannot reach the database: {reason}"),
            ))),
        }
    }

    fn source(&self) -> PostgresSource {
        PostgresSource {
            subscriber: self.subscriber().to_owned(),
            config: self.config.clone(),
        }
    }

    /// A [`LagSource`](faas_core::trigger::LagSource) for the autoscaler.
    pub fn lag_source(&self) -> PostgresLag {
        PostgresLag::new(
            self.function.clone(),
            self.subscriber().to_owned(),
            self.config.clone(),
        )
    }

    async fn run_trigger(self, dispatcher: Dispatcher, shutdown: CancellationToken) -> Result<()> {
        let calls = Calls::new(
            &self.function,
            self.invoker.as_ref(),
            self.config.max_in_flight,
            &dispatcher,
        );
        run_source(self.source(), calls, &dispatcher, &shutdown).await
    }
}

/// The PostgreSQL side of the shared source loop.
struct PostgresSource {
    subscriber: String,
    config: PostgresTriggerConfig,
}

#[async_trait]
impl EventSource for PostgresSource {
    type Session = Session;

    fn describe(&self) -> String {
        format!(
            "postgres table {} for {}",
            self.config.table, self.subscriber
        )
    }

    async fn open(&mut self, _: &Arc<Calls>) -> Result<Session, Open> {
        Session::open(self).await
    }

    async fn serve(&mut self, calls: &Arc<Calls>, session: &Arc<Session>) -> String {
        claim(calls, self, session).await
    }

    fn close(&mut self, session: &Session) {
        session.listener.abort();
    }
}

/// One session with the database.
struct Session {
    client: Arc<Client>,
    statements: Statements,
    dead_letter: PostgresDeadLetter,
    /// Notified by `LISTEN`; `closed` once the listening connection ends.
    woken: Arc<Notify>,
    closed: CancellationToken,
    listener: tokio::task::JoinHandle<()>,
    /// How long a claimed row is leased.
    lease: Duration,
}

fn classify(source: &PostgresSource, error: tokio_postgres::Error) -> Open {
    let config = &source.config;
    match error.code() {
        Some(code) if *code == SqlState::UNDEFINED_TABLE => Open::Config(invalid(
            "postgres.table",
            &config.table,
            format!(
                "no such table: {}",
                error
                    .as_db_error()
                    .map_or(String::new(), ToString::to_string)
            ),
        )),
        Some(code)
            if *code == SqlState::INVALID_SCHEMA_NAME
                || *code == SqlState::INSUFFICIENT_PRIVILEGE =>
        {
            Open::Config(invalid("postgres.table", &config.table, error.to_string()))
        }
        Some(code)
            if *code == SqlState::INVALID_PASSWORD
                || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
            Open::Config(invalid("postgres.url", &config.url, error.to_string()))
        }
        _ => Open::Unreachable(
            error
                .as_db_error()
                .map_or_else(|| error.to_string(), ToString::to_string),
        ),
    }
}

impl Session {
    async fn open(source: &PostgresSource) -> Result<Session, Open> {
        let mut settings: tokio_postgres::Config =
            source
                .config
                .url
                .parse()
                .map_err(|error: tokio_postgres::Error| {
                    Open::Config(invalid(
                        "postgres.url",
                        &source.config.url,
                        error.to_string(),
                    ))
                })?;
        settings.connect_timeout(CONNECT_TIMEOUT);
        let (mut client, connection) = settings
            .connect(NoTls)
            .await
            .map_err(|error| classify(source, error))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "postgres connection ended");
            }
        });
        let transaction = client
            .transaction()
            .await
            .map_err(|error| classify(source, error))?;
        for statement in statements(&source.config, &source.subscriber) {
            transaction
                .batch_execute(&statement)
                .await
                .map_err(|error| classify(source, error))?;
        }
        transaction
            .commit()
            .await
            .map_err(|error| classify(source, error))?;
        let statements = Statements::prepare(&client, OUTBOX)
            .await
            .map_err(|error| classify(source, error))?;

        let (listening, mut connection) = settings
            .connect(NoTls)
            .await
            .map_err(|error| classify(source, error))?;
        let woken = Arc::new(Notify::new());
        let closed = CancellationToken::new();
        let listener = {
            let woken = Arc::clone(&woken);
            let closed = closed.clone();
            let subscriber = source.subscriber.clone();
            tokio::spawn(async move {
                let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                while let Some(Ok(message)) = messages.next().await {
                    if let AsyncMessage::Notification(notification) = message
                        && notification.payload() == subscriber
                    {
                        woken.notify_one();
                    }
                }
                closed.cancel();
            })
        };
        listening
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(|error| classify(source, error))?;
        // The listening client must live as long as its connection.
        let listener = tokio::spawn(async move {
            let _listening = listening;
            let _ = listener.await;
        });
        let client = Arc::new(client);
        let dead_letter = PostgresDeadLetter::new(
            Arc::clone(&client),
            source.config.dead_letter_table.clone(),
            source.subscriber.clone(),
        );
        Ok(Session {
            client,
            statements,
            dead_letter,
            woken,
            closed,
            listener,
            lease: source.config.lease,
        })
    }
}

/// Claims due rows and starts their calls, until a statement fails.
async fn claim(calls: &Arc<Calls>, source: &PostgresSource, session: &Arc<Session>) -> String {
    let config = &source.config;
    let lease = config.lease.as_secs_f64();
    loop {
        let mut permits = take_slots(&calls.slots, config.batch).await;
        let wanted = permits.num_permits();
        let limit = i64::try_from(wanted).unwrap_or(i64::MAX);
        let rows = match session
            .client
            .query(
                &session.statements.claim,
                &[&source.subscriber, &limit, &lease],
            )
            .await
        {
            Ok(rows) => rows,
            Err(error) => return format!("claiming rows failed: {error}"),
        };
        let claimed = rows.len();
        for row in rows {
            let claimed = match Claimed::from_row(&row) {
                Ok(claimed) => claimed,
                Err(error) => return format!("reading a claimed row failed: {error}"),
            };
            let Some(permit) = permits.split(1) else {
                break;
            };
            spawn_call(calls, session, claimed, permit);
        }
        drop(permits);
        if claimed < wanted {
            // Nothing more is due: wait for a notification or the next poll.
            tokio::select! {
                () = session.woken.notified() => {}
                () = tokio::time::sleep(config.poll_interval) => {}
                () = session.closed.cancelled() => return "the listening connection ended".to_owned(),
            }
        }
    }
}

fn spawn_call(
    calls: &Arc<Calls>,
    session: &Arc<Session>,
    claimed: Claimed,
    permit: OwnedSemaphorePermit,
) {
    let for_call = Arc::clone(calls);
    let session = Arc::clone(session);
    calls.spawn(permit, async move {
        let calls = for_call;
        let invocation = claimed.invocation(&calls.function);
        let id = claimed.id.to_string();
        let attributes = [
            ("table", claimed.source_table.as_str()),
            ("change", claimed.change.as_str()),
            ("outbox_id", id.as_str()),
        ];
        let route =
            DeadLetterRoute::new(Some(&session.dead_letter as &dyn DeadLetter), &attributes);
        let row = OutboxRow {
            client: &session.client,
            statements: &session.statements,
            id: claimed.id,
            lease: session.lease,
        };
        deliver(
            &*calls.invoker,
            &calls.function,
            invocation,
            &row,
            Some(session.lease / 2),
            route,
        )
        .await;
    });
}

#[async_trait]
impl Trigger for PostgresTrigger {
    fn name(&self) -> &str {
        "postgres"
    }

    async fn run(
        self: Box<Self>,
        dispatcher: Dispatcher,
        shutdown: CancellationToken,
    ) -> Result<(), faas_core::Error> {
        (*self)
            .run_trigger(dispatcher, shutdown)
            .await
            .map_err(|error| faas_core::Error::trigger("postgres", error))
    }
}
