//! One attempt of a call under its function's policy: the in-flight limit, the
//! deadline and panic isolation, counted in the function's counters, the
//! metrics and the log.
//!
//! The same policies exist as tower layers in [`crate::layer`], for services
//! built by hand. The dispatcher does not stack those: every layer would box
//! its future and move the invocation once more, which made up most of the
//! cost of a call. It takes the same steps here and shares with the layers
//! their decisions (the effective deadline, the first poll without a timer)
//! and their errors.
//!
//! An attempt starts synchronously ([`Attempt::start`]): that moves the
//! invocation into the function's own future at once, so the futures that
//! wait for it ([`Attempt::finish`] and the dispatcher's) stay small and
//! cheap to move.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::SystemTime;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use tokio::sync::SemaphorePermit;
use tokio::time::Instant;

use crate::cancellation::CallCancellation;
use crate::context::CallId;
use crate::error::FunctionError;
use crate::function::Function;
use crate::invocation::Invocation;
use crate::layer::catch_panic::panicked;
use crate::layer::concurrency::refused;
use crate::layer::timeout::{effective_deadline, timed_out, within};
use crate::logs::{CallRecord, FunctionLog};
use crate::metrics::{FunctionMetrics, InFlightGuard};
use crate::output::Response;
use crate::registry::{CallGuard, RegisteredFunction};

/// An attempt under way.
pub(super) struct Attempt<'a> {
    registered: &'a RegisteredFunction,
    metrics: &'a FunctionMetrics,
    log: &'a FunctionLog,
    cancellation: &'a CallCancellation,
    call_id: CallId,
    attempt: u32,
    start: Instant,
    deadline: Option<Instant>,
    step: Step<'a>,
    _counted: CallGuard<'a>,
    _gauge: InFlightGuard<'a>,
}

/// Where an attempt stands once started.
enum Step<'a> {
    /// The function runs, holding a permit of its in-flight limit.
    Running {
        call: BoxFuture<'a, Result<Response, FunctionError>>,
        _permit: SemaphorePermit<'a>,
    },
    /// It failed before its function ran: refused by the limit, or a panic
    /// while the function made its future. (Only an error: a response would
    /// make every attempt as large as one.)
    Failed(FunctionError),
}

impl<'a> Attempt<'a> {
    /// Starts an attempt of `invocation` on `registered`: counts it, takes a
    /// permit of the in-flight limit and has the function make its future.
    ///
    /// The invocation's context already holds the attempt's own token; the
    /// attempt cancels it through `cancellation` when its deadline passes. Every
    /// attempt is recorded in the function's `metrics` and `log`, those refused
    /// for the limit included.
    pub(super) fn start(
        registered: &'a RegisteredFunction,
        metrics: &'a FunctionMetrics,
        log: &'a FunctionLog,
        mut invocation: Invocation,
        cancellation: &'a CallCancellation,
    ) -> Self {
        let start = Instant::now();
        let counted = registered.start_call();
        let gauge = metrics.start();
        let context = invocation.context_mut();
        let call_id = context.call_id_made_at(SystemTime::now).clone();
        let attempt = context.attempt();
        let deadline = effective_deadline(start, registered.policy().timeout(), context.deadline());
        let step = match registered.limiter().try_acquire() {
            Ok(permit) => {
                context.set_deadline(deadline);
                let function: &dyn Function = registered.function().as_ref();
                match std::panic::catch_unwind(AssertUnwindSafe(|| function.call(invocation))) {
                    Ok(call) => Step::Running {
                        call,
                        _permit: permit,
                    },
                    Err(payload) => Step::Failed(panicked(registered.name(), &call_id, payload)),
                }
            }
            Err(error) => {
                let max = registered.policy().max_in_flight().unwrap_or(usize::MAX);
                Step::Failed(refused(error, registered.name(), max))
            }
        };
        Attempt {
            registered,
            metrics,
            log,
            cancellation,
            call_id,
            attempt,
            start,
            deadline,
            step,
            _counted: counted,
            _gauge: gauge,
        }
    }

    /// Waits for the function until the deadline, catching a panic, and records
    /// the attempt.
    #[allow(
        clippy::manual_async_fn,
        reason = "an `async fn` would keep a second copy of `self` in its future"
    )]
    pub(super) fn finish(
        self,
    ) -> impl Future<Output = Result<Response, FunctionError>> + Send + 'a {
        async move {
            let result = match self.step {
                Step::Failed(error) => Err(error),
                Step::Running { call, _permit } => {
                    match within(self.deadline, AssertUnwindSafe(call).catch_unwind()).await {
                        Ok(Ok(result)) => result,
                        Ok(Err(payload)) => {
                            Err(panicked(self.registered.name(), &self.call_id, payload))
                        }
                        Err(deadline) => {
                            self.cancellation.cancel();
                            Err(timed_out(self.registered.name(), self.start, deadline))
                        }
                    }
                }
            };
            let finished = Instant::now();
            let elapsed = finished.saturating_duration_since(self.start);
            // Past the last await, so taking the fields apart copies nothing
            // the future keeps.
            let Attempt {
                registered,
                metrics,
                log,
                call_id,
                attempt,
                _counted,
                _gauge,
                ..
            } = self;
            drop((_counted, _gauge));
            registered.record_finished(result.is_err());
            metrics.record(result.as_ref().err().map(FunctionError::kind), elapsed);
            log.push_call(
                CallRecord {
                    call_id,
                    attempt,
                    status: match &result {
                        Ok(response) => response.status().as_u16(),
                        Err(error) => error.status().as_u16(),
                    },
                    elapsed,
                    error: result.as_ref().err().map(ToString::to_string),
                },
                SystemTime::now(),
            );
            result
        }
    }
}
