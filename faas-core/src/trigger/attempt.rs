//! One attempt of a call: the function inside its policy's layers
//! ([`InvocationPolicyLayer`](crate::layer::InvocationPolicyLayer): the
//! in-flight limit, the deadline, panic isolation), counted in the function's
//! counters, the metrics and the log.
//!
//! [`Attempts`] is itself a tower service, so the dispatcher puts the
//! policy's [`RetryLayer`](crate::layer::RetryLayer) around it for the
//! deliveries it retries in-process. The stack costs one allocation per
//! attempt, the function's own future: the layers' futures are named types,
//! and the function is borrowed from the registry for the call.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};
use std::time::SystemTime;

use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower::Service;

use crate::context::CallId;
use crate::error::FunctionError;
use crate::function::BorrowedFunction;
use crate::invocation::Invocation;
use crate::layer::{InFlightLimit, InvocationPolicyService};
use crate::logs::{CallRecord, FunctionLog};
use crate::metrics::{FunctionMetrics, InFlightGuard};
use crate::output::Response;
use crate::registry::RegisteredFunction;

/// The future of a function's call inside its policy's layers.
type PolicyFuture<'a> =
    <InvocationPolicyService<BorrowedFunction<'a>, &'a InFlightLimit> as Service<Invocation>>::Future;

/// Attempts of calls of one function, recorded in its metrics and log.
#[derive(Clone, Copy)]
pub(super) struct Attempts<'a> {
    registered: &'a RegisteredFunction,
    metrics: &'a FunctionMetrics,
    log: &'a FunctionLog,
}

impl<'a> Attempts<'a> {
    pub(super) fn new(
        registered: &'a RegisteredFunction,
        metrics: &'a FunctionMetrics,
        log: &'a FunctionLog,
    ) -> Self {
        Attempts {
            registered,
            metrics,
            log,
        }
    }

    /// Starts an attempt of `invocation`: counts it and has the policy's
    /// layers call the function.
    ///
    /// Every attempt is recorded, those refused for the limit included. An
    /// attempt dropped before it finished (the host stopped it) is not.
    #[inline]
    pub(super) fn start(self, mut invocation: Invocation) -> Attempt<'a> {
        let Attempts {
            registered,
            metrics,
            log,
        } = self;
        let start = Instant::now();
        let gauge = metrics.start();
        let context = invocation.context_mut();
        context.set_started(start);
        let call_id = context.call_id_made_at(SystemTime::now).clone();
        let attempt = context.attempt();
        let call = registered
            .policy_layer()
            .layer_borrowing(BorrowedFunction(registered.function().as_ref()))
            .call(invocation);
        Attempt {
            call,
            record: Some(Record {
                registered,
                metrics,
                log,
                call_id,
                attempt,
                start,
                _gauge: gauge,
            }),
        }
    }
}

impl<'a> Service<Invocation> for Attempts<'a> {
    type Response = Response;
    type Error = FunctionError;
    type Future = Attempt<'a>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), FunctionError>> {
        // The in-flight limit refuses at once inside the attempt; nothing waits.
        Poll::Ready(Ok(()))
    }

    #[inline]
    fn call(&mut self, invocation: Invocation) -> Attempt<'a> {
        self.start(invocation)
    }
}

pin_project! {
    /// An attempt under way.
    pub(super) struct Attempt<'a> {
        #[pin]
        call: PolicyFuture<'a>,
        record: Option<Record<'a>>,
    }
}

/// What is written down when an attempt ends.
struct Record<'a> {
    registered: &'a RegisteredFunction,
    metrics: &'a FunctionMetrics,
    log: &'a FunctionLog,
    call_id: CallId,
    attempt: u32,
    start: Instant,
    _gauge: InFlightGuard<'a>,
}

impl Future for Attempt<'_> {
    type Output = Result<Response, FunctionError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.call.poll(cx));
        if let Some(record) = this.record.take() {
            record.finish(&result);
        }
        Poll::Ready(result)
    }
}

impl Record<'_> {
    fn finish(self, result: &Result<Response, FunctionError>) {
        let elapsed = Instant::now().saturating_duration_since(self.start);
        let Record {
            registered,
            metrics,
            log,
            call_id,
            attempt,
            _gauge,
            ..
        } = self;
        drop(_gauge);
        registered.record_finished(result.is_err());
        metrics.record(result.as_ref().err().map(FunctionError::kind), elapsed);
        log.push_call(
            CallRecord {
                call_id,
                attempt,
                status: match result {
                    Ok(response) => response.status().as_u16(),
                    Err(error) => error.status().as_u16(),
                },
                elapsed,
                error: result.as_ref().err().map(ToString::to_string),
            },
            SystemTime::now(),
        );
    }
}
