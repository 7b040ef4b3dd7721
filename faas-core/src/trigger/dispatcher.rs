//! [`Dispatcher`]: the handle triggers call functions through; it applies each
//! function's [`InvocationPolicy`](crate::InvocationPolicy).

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::SystemTime;

use http::HeaderValue;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Layer as _;

use super::attempt::Attempts;
use super::delivery::settled_in_process;
use super::{Delivery, Readiness};
use crate::cancellation::CallCancellation;
use crate::context::CALL_ID_HEADER;
use crate::error::FunctionError;
use crate::invocation::Invocation;
use crate::layer::RetryOutcome;
use crate::logs::InvocationLog;
use crate::metrics::Metrics;
use crate::output::Response;
use crate::policy::DeadLetterEntry;
use crate::registry::{RegisteredFunction, Registry};

/// Calls functions by name under their policies. Cheap to clone.
///
/// Every call is admitted first: the host must be accepting work, the function
/// must exist and be serving, and the body must fit the policy's limit. Then one
/// attempt runs through the function's
/// [`InvocationPolicyLayer`](crate::layer::InvocationPolicyLayer): the in-flight
/// limit (over it: `Overloaded`, nothing queues), the deadline (past it:
/// `Timeout`, the handler is dropped and its context's token cancelled) and
/// panic isolation (`Panicked`); a delivery puts the policy's
/// [`RetryLayer`](crate::layer::RetryLayer) around its attempts. Each attempt is
/// counted in the [`Metrics`] and written to the [`InvocationLog`].
///
/// A host usually gets its dispatcher from
/// [`LocalExecutor::dispatcher`](crate::LocalExecutor::dispatcher); a standalone
/// one ([`Dispatcher::new`]) serves a registry without triggers or shutdown.
///
/// ```
/// use faas_core::{Dispatcher, FunctionDefinition, Invocation, Registry};
///
/// async fn shout(text: String) -> String { text.to_uppercase() }
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let dispatcher = Dispatcher::new(Registry::from([FunctionDefinition::from_handler("shout", shout)]));
/// let response = dispatcher.dispatch("shout", Invocation::new("hi")).await.unwrap();
/// assert_eq!(response.body(), "HI");
///
/// let missing = dispatcher.dispatch_to_response("nope", Invocation::new("")).await;
/// assert_eq!(missing.status(), 404);
/// # });
/// ```
#[derive(Clone)]
pub struct Dispatcher {
    shared: Arc<Shared>,
}

struct Shared {
    registry: Registry,
    metrics: Metrics,
    log: InvocationLog,
    accepting: AtomicBool,
    readiness: Readiness,
    hard_stop: CancellationToken,
    tracker: TaskTracker,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("registry", &self.shared.registry)
            .field("accepting", &self.is_accepting())
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl Dispatcher {
    /// A dispatcher for `registry` with fresh metrics and log.
    pub fn new(registry: Registry) -> Self {
        Dispatcher::with_parts(registry, Metrics::new(), InvocationLog::default())
    }

    /// A dispatcher with the given metrics and log.
    pub fn with_parts(registry: Registry, metrics: Metrics, log: InvocationLog) -> Self {
        Dispatcher {
            shared: Arc::new(Shared {
                registry,
                metrics,
                log,
                accepting: AtomicBool::new(true),
                readiness: Readiness::default(),
                hard_stop: CancellationToken::new(),
                tracker: TaskTracker::new(),
            }),
        }
    }

    /// The functions it calls.
    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// The metrics it records.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The log it writes a line to per attempt.
    pub fn invocation_log(&self) -> &InvocationLog {
        &self.shared.log
    }

    /// Whether it accepts new calls (false once its host began shutting down).
    pub fn is_accepting(&self) -> bool {
        self.shared.accepting.load(Ordering::Acquire)
    }

    /// The readiness of the host's event sources: a source that cannot reach
    /// its server marks itself not ready here, and `/_/ready` answers 503.
    pub fn readiness(&self) -> &Readiness {
        &self.shared.readiness
    }

    /// Calls (and deliveries, retries included) running now.
    pub fn in_flight(&self) -> usize {
        self.shared.tracker.len()
    }

    /// Calls `function` once and returns its answer.
    ///
    /// # Errors
    ///
    /// `NotFound` for an unknown function, `Unavailable` when it is scaled to zero
    /// or the host is shutting down, `PayloadTooLarge`, `Overloaded`, `Timeout`,
    /// `Panicked`, or the function's own error.
    #[allow(
        clippy::manual_async_fn,
        reason = "an `async fn` would keep a second copy of the invocation in its future"
    )]
    pub fn dispatch<'a>(
        &'a self,
        function: &'a str,
        mut invocation: Invocation,
    ) -> impl Future<Output = Result<Response, FunctionError>> + Send + 'a {
        async move {
            let registered = self.admit(function, &mut invocation)?;
            check_body(&registered, &invocation)?;
            let cancellation = invocation.context_mut().start_call();
            let metrics = registered.metrics(&self.shared.metrics);
            let log = registered.log(&self.shared.log);
            let attempt = Attempts::new(&registered, &metrics, &log).start(invocation);
            self.guarded(&cancellation, pin!(attempt), Err).await
        }
    }

    /// Calls `function`, already looked up in this dispatcher's
    /// [registry](Self::registry), once: as [`dispatch`](Self::dispatch) without
    /// looking the function up by name again (a trigger that routed the
    /// request has it).
    ///
    /// A call that finds `function` replaced in the registry since it was
    /// looked up runs on the one given, as a call already running would.
    ///
    /// # Errors
    ///
    /// As [`dispatch`](Self::dispatch), except `NotFound`.
    ///
    /// ```
    /// use faas_core::{Dispatcher, FunctionDefinition, Invocation, Registry};
    ///
    /// async fn shout(text: String) -> String { text.to_uppercase() }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let dispatcher = Dispatcher::new(Registry::from([FunctionDefinition::from_handler("shout", shout)]));
    /// let shout = dispatcher.registry().get("shout").unwrap();
    /// let response = dispatcher.dispatch_to(&shout, Invocation::new("hi")).await.unwrap();
    /// assert_eq!(response.body(), "HI");
    /// # });
    /// ```
    #[allow(
        clippy::manual_async_fn,
        reason = "an `async fn` would keep a second copy of the invocation in its future"
    )]
    pub fn dispatch_to<'a>(
        &'a self,
        function: &'a RegisteredFunction,
        mut invocation: Invocation,
    ) -> impl Future<Output = Result<Response, FunctionError>> + Send + 'a {
        async move {
            self.admit_registered(function, &mut invocation)?;
            check_body(function, &invocation)?;
            let cancellation = invocation.context_mut().start_call();
            let metrics = function.metrics(&self.shared.metrics);
            let log = function.log(&self.shared.log);
            let attempt = Attempts::new(function, &metrics, &log).start(invocation);
            self.guarded(&cancellation, pin!(attempt), Err).await
        }
    }

    /// Calls `function` and turns an error into its JSON answer
    /// ([`FunctionError::to_response`]); the response carries `x-call-id`.
    pub fn dispatch_to_response<'a>(
        &'a self,
        function: &'a str,
        mut invocation: Invocation,
    ) -> impl Future<Output = Response> + Send + 'a {
        let call_id = invocation
            .context_mut()
            .call_id_made_at(SystemTime::now)
            .clone();
        let call = self.dispatch(function, invocation);
        async move {
            match call.await {
                Ok(mut response) => {
                    if let Ok(value) = HeaderValue::from_str(call_id.as_str()) {
                        response
                            .headers_mut()
                            .entry(CALL_ID_HEADER)
                            .or_insert(value);
                    }
                    response
                }
                Err(error) => error.to_response(&call_id),
            }
        }
    }

    /// Delivers an event to `function`: retries per its [`RetryPolicy`](crate::RetryPolicy)
    /// with backoff, and after the last failed attempt stores it in the policy's
    /// dead letter, if any.
    ///
    /// See [`Delivery::should_ack`] for what the trigger does next. An event that
    /// failed for good without a dead letter is not acknowledged: the source keeps it.
    /// A delivery interrupted by shutdown is not dead-lettered either.
    #[allow(
        clippy::manual_async_fn,
        reason = "an `async fn` would keep a second copy of the invocation in its future"
    )]
    pub fn deliver<'a>(
        &'a self,
        function: &'a str,
        mut invocation: Invocation,
    ) -> impl Future<Output = Delivery> + Send + 'a {
        async move {
            let call_id = invocation
                .context_mut()
                .call_id_made_at(SystemTime::now)
                .clone();
            let registered = match self.admit(function, &mut invocation) {
                Ok(admitted) => admitted,
                Err(error) => {
                    let later = settled_in_process(false, false, None);
                    return Delivery::new(call_id, Err(error), 0, false, later);
                }
            };
            let policy = Some(registered.policy());
            if let Err(error) = check_body(&registered, &invocation) {
                let dead_lettered = self.dead_letter(&registered, &invocation, &error, 0).await;
                let settlement = settled_in_process(false, dead_lettered, policy);
                return Delivery::new(call_id, Err(error), 0, dead_lettered, settlement);
            }
            // The delivery's token; each attempt's deadline layer makes a child
            // of it, so a timed-out attempt does not stop the retries, and a
            // shutdown stops them all.
            let cancellation = invocation.context_mut().start_call();
            let metrics = registered.metrics(&self.shared.metrics);
            let log = registered.log(&self.shared.log);
            let attempts = registered
                .retry_layer()
                .layer(Attempts::new(&registered, &metrics, &log))
                .call_with_outcome(invocation.clone());
            let outcome = self
                .guarded(&cancellation, pin!(attempts), |error| RetryOutcome {
                    result: Err(error),
                    attempts: 0,
                    cancelled: true,
                })
                .await;
            match outcome.result {
                Ok(response) => Delivery::new(
                    call_id,
                    Ok(response),
                    outcome.attempts,
                    false,
                    settled_in_process(true, false, policy),
                ),
                Err(error) if outcome.cancelled => Delivery::new(
                    call_id,
                    Err(error),
                    outcome.attempts,
                    false,
                    settled_in_process(false, false, None),
                ),
                Err(error) => {
                    let dead_lettered = self
                        .dead_letter(&registered, &invocation, &error, outcome.attempts)
                        .await;
                    let settlement = settled_in_process(false, dead_lettered, policy);
                    Delivery::new(
                        call_id,
                        Err(error),
                        outcome.attempts,
                        dead_lettered,
                        settlement,
                    )
                }
            }
        }
    }

    /// Checks that the call may start and gives its context the function's name.
    fn admit(
        &self,
        function: &str,
        invocation: &mut Invocation,
    ) -> Result<RegisteredFunction, FunctionError> {
        self.check_accepting()?;
        let registered =
            self.shared.registry.get(function).ok_or_else(|| {
                FunctionError::not_found(format!("no function named `{function}`"))
            })?;
        self.admit_registered(&registered, invocation)?;
        Ok(registered)
    }

    /// As [`admit`](Self::admit), for a function already looked up.
    fn admit_registered(
        &self,
        registered: &RegisteredFunction,
        invocation: &mut Invocation,
    ) -> Result<(), FunctionError> {
        self.check_accepting()?;
        if !registered.is_serving() {
            return Err(FunctionError::unavailable(format!(
                "function `{}` is scaled to zero",
                registered.name()
            )));
        }
        invocation
            .context_mut()
            .set_function_name(registered.shared_name());
        Ok(())
    }

    fn check_accepting(&self) -> Result<(), FunctionError> {
        if self.is_accepting() {
            Ok(())
        } else {
            Err(FunctionError::unavailable(
                "the host is shutting down and accepts no new calls",
            ))
        }
    }

    /// Runs `call` as tracked work that a hard stop cancels: then the call's
    /// token is cancelled, the call dropped, and `on_stop` makes the result.
    ///
    /// The call comes pinned by the caller, so it is not moved again here.
    async fn guarded<F: Future>(
        &self,
        cancellation: &CallCancellation,
        call: Pin<&mut F>,
        on_stop: impl FnOnce(FunctionError) -> F::Output,
    ) -> F::Output {
        let _tracked = self.shared.tracker.token();
        let mut call = call;
        // A call that finishes at once never waits on the stop.
        if let Poll::Ready(result) = poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await {
            return result;
        }
        tokio::select! {
            biased;
            result = call => result,
            () = self.shared.hard_stop.cancelled() => {
                cancellation.cancel();
                on_stop(FunctionError::unavailable(
                    "the host shut down before the call finished",
                ))
            }
        }
    }

    async fn dead_letter(
        &self,
        registered: &RegisteredFunction,
        invocation: &Invocation,
        error: &FunctionError,
        attempts: u32,
    ) -> bool {
        let Some(dead_letter) = registered.policy().dead_letter() else {
            return false;
        };
        let entry = DeadLetterEntry::new(
            registered.name(),
            invocation.context().call_id().clone(),
            invocation.to_request(),
            error.clone(),
            attempts,
        );
        match dead_letter.dead_letter(entry).await {
            Ok(()) => {
                self.shared.log.push(
                    registered.name(),
                    format!(
                        "call_id={} dead-lettered after {attempts} attempts: {error}",
                        invocation.context().call_id()
                    ),
                );
                true
            }
            Err(failure) => {
                tracing::error!(
                    function = registered.name(),
                    call_id = %invocation.context().call_id(),
                    error = %failure,
                    "could not store a failed delivery in the dead letter; it will not be acknowledged"
                );
                false
            }
        }
    }

    /// Stops admitting calls.
    pub(crate) fn stop_accepting(&self) {
        self.shared.accepting.store(false, Ordering::Release);
        self.shared.tracker.close();
    }

    /// Waits until every admitted call finished (once no longer accepting).
    pub(crate) async fn wait_drained(&self) {
        self.shared.tracker.wait().await;
    }

    /// Cancels every call still running and waits for them to unwind.
    pub(crate) async fn cancel_all(&self) {
        self.shared.hard_stop.cancel();
        self.shared.tracker.wait().await;
    }
}

fn check_body(
    registered: &RegisteredFunction,
    invocation: &Invocation,
) -> Result<(), FunctionError> {
    match registered.policy().max_body_bytes() {
        Some(max) if invocation.body().len() > max => {
            Err(FunctionError::payload_too_large(format!(
                "the body of {} bytes is larger than the {max} bytes function `{}` accepts",
                invocation.body().len(),
                registered.name()
            )))
        }
        _ => Ok(()),
    }
}
