//! The loop every broker-backed source runs: open a session with the
//! server (waiting for it with back-off while not ready), claim messages
//! and start one call per message within the in-flight limit, and, when the
//! session fails, open the next one; on shutdown, wait for the running
//! calls.
//!
//! A source supplies only what differs: how a session is opened (an
//! [`Open`] error says whether to stop or to try again) and how it claims
//! messages ([`EventSource::serve`]); each call it starts goes through
//! [`Calls::spawn`] with the permit of its in-flight slot.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use faas_core::Dispatcher;
use faas_core::trigger::Invoker;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Reconnect, invoker_or};
use crate::{Error, Result};

/// The in-flight limit when neither the trigger nor the function's policy
/// sets one.
pub(crate) const FALLBACK_MAX_IN_FLIGHT: usize = 256;

/// Why a session could not be opened.
#[derive(Debug)]
pub(crate) enum Open {
    /// The server said the configuration is wrong: the trigger stops.
    Config(Error),
    /// The server could not be reached or did not answer: try again.
    Unreachable(String),
}

/// The calls of a running source: whom they call, the in-flight slots they
/// hold, and the tasks they run in.
pub(crate) struct Calls {
    /// The function every call is for.
    pub(crate) function: String,
    /// How the function is reached.
    pub(crate) invoker: Arc<dyn Invoker>,
    /// One permit per running call.
    pub(crate) slots: Arc<Semaphore>,
    /// How many calls may run at once.
    pub(crate) max_in_flight: usize,
    tracker: TaskTracker,
}

impl Calls {
    /// The calls of `function`, through the `configured` invoker or else the
    /// host's dispatcher, at most `max_in_flight` at once (else the
    /// function's policy, else [`FALLBACK_MAX_IN_FLIGHT`]).
    pub(crate) fn new(
        function: &str,
        configured: Option<&Arc<dyn Invoker>>,
        max_in_flight: Option<usize>,
        dispatcher: &Dispatcher,
    ) -> Self {
        let invoker = invoker_or(configured, dispatcher);
        let max_in_flight = max_in_flight
            .or_else(|| invoker.policy(function).and_then(|p| p.max_in_flight()))
            .unwrap_or(FALLBACK_MAX_IN_FLIGHT);
        Calls {
            function: function.to_owned(),
            invoker,
            slots: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            tracker: TaskTracker::new(),
        }
    }

    /// Runs one call, holding its in-flight slot until it ends.
    pub(crate) fn spawn(
        &self,
        permit: OwnedSemaphorePermit,
        call: impl Future<Output = ()> + Send + 'static,
    ) {
        self.tracker.spawn(async move {
            call.await;
            drop(permit);
        });
    }
}

/// What a source does in the shared loop.
#[async_trait]
pub(crate) trait EventSource: Send {
    /// What one session holds (connections, prepared statements), shared
    /// by the calls it starts.
    type Session: Send + Sync + 'static;

    /// Its name in logs and readiness (`redis stream S group G`).
    fn describe(&self) -> String;

    /// Connects and prepares a session.
    async fn open(&mut self, calls: &Arc<Calls>) -> Result<Self::Session, Open>;

    /// Claims messages and starts their calls until a command fails; the
    /// reason.
    async fn serve(&mut self, calls: &Arc<Calls>, session: &Arc<Self::Session>) -> String;

    /// Releases what a session holds beyond its calls (a listening task).
    fn close(&mut self, _session: &Self::Session) {}
}

/// Runs `source` until `shutdown` or an [`Open::Config`] error, then waits
/// for its running calls.
pub(crate) async fn run_source<S: EventSource>(
    mut source: S,
    calls: Calls,
    dispatcher: &Dispatcher,
    shutdown: &CancellationToken,
) -> Result<()> {
    let calls = Arc::new(calls);
    let mut reconnect = Reconnect::new(source.describe(), dispatcher.readiness().clone());
    let result = loop {
        if shutdown.is_cancelled() {
            break Ok(());
        }
        let session = match source.open(&calls).await {
            Ok(session) => Arc::new(session),
            Err(Open::Config(error)) => break Err(error),
            Err(Open::Unreachable(error)) => {
                if reconnect.failed(&error, shutdown).await {
                    continue;
                }
                break Ok(());
            }
        };
        reconnect.connected();
        let ended = tokio::select! {
            () = shutdown.cancelled() => None,
            error = source.serve(&calls, &session) => Some(error),
        };
        source.close(&session);
        match ended {
            None => break Ok(()),
            Some(error) => {
                if !reconnect.failed(&error, shutdown).await {
                    break Ok(());
                }
            }
        }
    };
    calls.tracker.close();
    calls.tracker.wait().await;
    reconnect.stopped();
    result
}
