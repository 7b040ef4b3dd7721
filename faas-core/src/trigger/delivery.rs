//! [`Delivery`]: how an event delivery ended, and [`deliver_once`]: one
//! broker delivery, settled the way brokers understand.

use std::time::SystemTime;

use super::{Invoker, Settlement};
use crate::context::CallId;
use crate::error::{ErrorKind, FunctionError};
use crate::invocation::Invocation;
use crate::output::Response;
use crate::policy::{DeadLetter, DeadLetterEntry};

/// How a delivery ended: the last attempt's result, the number of attempts,
/// whether the event went to the dead letter, and what to tell the source
/// ([`settlement`](Self::settlement)).
#[derive(Debug)]
#[non_exhaustive]
pub struct Delivery {
    call_id: CallId,
    result: Result<Response, FunctionError>,
    attempts: u32,
    dead_lettered: bool,
    settlement: Settlement,
}

impl Delivery {
    pub(crate) fn new(
        call_id: CallId,
        result: Result<Response, FunctionError>,
        attempts: u32,
        dead_lettered: bool,
        settlement: Settlement,
    ) -> Self {
        Delivery {
            call_id,
            result,
            attempts,
            dead_lettered,
            settlement,
        }
    }

    /// Whether the function succeeded.
    pub fn is_success(&self) -> bool {
        self.result.is_ok()
    }

    /// Whether the trigger should acknowledge the message: it succeeded, or it
    /// failed for good and is stored in the dead letter. Otherwise the trigger
    /// negatively acknowledges it, so the source redelivers it later.
    pub fn should_ack(&self) -> bool {
        self.settlement.removes_message()
    }

    /// What the trigger tells the source: ack, nack with the redelivery
    /// delay, or terminate.
    pub fn settlement(&self) -> Settlement {
        self.settlement
    }

    /// Whether the event was stored in the function's dead letter.
    pub fn is_dead_lettered(&self) -> bool {
        self.dead_lettered
    }

    /// The number of the last attempt (0 when none ran: unknown function, host
    /// shutting down, body too large).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The call's id, the same for every attempt.
    pub fn call_id(&self) -> &CallId {
        &self.call_id
    }

    /// The response, when it succeeded.
    pub fn response(&self) -> Option<&Response> {
        self.result.as_ref().ok()
    }

    /// The last error, when it failed.
    pub fn error(&self) -> Option<&FunctionError> {
        self.result.as_ref().err()
    }

    /// The last attempt's result.
    pub fn into_result(self) -> Result<Response, FunctionError> {
        self.result
    }
}

/// Where [`deliver_once`] writes a message that failed for good, and what it
/// says about its origin.
///
/// The source's own dead letter (a dead-letter subject or stream configured
/// on the trigger) comes first; without one, the function's policy's
/// [`dead_letter`](crate::policy::InvocationPolicy::dead_letter) is used.
#[derive(Default, Clone, Copy)]
#[non_exhaustive]
pub struct DeadLetterRoute<'a> {
    /// The source's dead letter, if it has one.
    pub dead_letter: Option<&'a dyn DeadLetter>,
    /// The message's origin (`subject`, `stream`, `sequence`, ...), written
    /// into the letter's [`attributes`](DeadLetterEntry::attributes).
    pub attributes: &'a [(&'a str, &'a str)],
}

impl<'a> DeadLetterRoute<'a> {
    /// The source's dead letter and the message's attributes.
    pub fn new(
        dead_letter: Option<&'a dyn DeadLetter>,
        attributes: &'a [(&'a str, &'a str)],
    ) -> Self {
        DeadLetterRoute {
            dead_letter,
            attributes,
        }
    }
}

impl std::fmt::Debug for DeadLetterRoute<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterRoute")
            .field("dead_letter", &self.dead_letter.map(|_| "DeadLetter"))
            .field("attributes", &self.attributes)
            .finish()
    }
}

/// One delivery of a message by a source that redelivers (a broker, a
/// table, a watched directory): one attempt through `invoker`, then the
/// [`Settlement`] the source applies.
///
/// The invocation's [`Context::attempt`](crate::Context::attempt) is the
/// source's delivery count (1 for the first delivery). After the call:
///
/// - success: [`Ack`](Settlement::Ack);
/// - a failure the function's [`RetryPolicy`](crate::RetryPolicy) retries,
///   with attempts left: [`Nack`](Settlement::Nack) with the policy's backoff
///   for this attempt as the redelivery delay (the broker waits, nothing
///   sleeps here);
/// - the host could not take the call (`Unavailable`: shutting down, scaled
///   to zero; `NotFound`: the function is not there yet): `Nack` with the
///   backoff, never the dead letter, since the message is not at fault;
/// - a failure for good (not retryable, or the attempts spent): the letter
///   (payload, headers, error, attempts, time, the route's attributes) goes
///   to the route's dead letter, else the policy's, and the message is
///   [`Terminate`](Settlement::Terminate)d. When writing the letter fails,
///   or there is no dead letter at all, the message is not given up: `Nack`
///   with the backoff (the longest one without a dead letter), so nothing is
///   lost.
///
/// ```
/// use std::sync::Arc;
/// use faas_core::trigger::{DeadLetterRoute, Settlement, deliver_once};
/// use faas_core::{Context, Dispatcher, FunctionDefinition, FunctionError, InMemoryDeadLetter,
///     Invocation, InvocationPolicy, Registry, RetryPolicy};
///
/// async fn reject(_: String) -> Result<String, FunctionError> {
///     Err(FunctionError::internal("not today"))
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let dead = Arc::new(InMemoryDeadLetter::new());
/// let policy = InvocationPolicy::default()
///     .with_retry(RetryPolicy::new(2))
///     .with_dead_letter(dead.clone());
/// let dispatcher = Dispatcher::new(Registry::from([
///     FunctionDefinition::from_handler("reject", reject).with_policy(policy),
/// ]));
/// let first = Invocation::new("m").with_context(Context::new("reject").with_attempt(1));
/// let delivery = deliver_once(&dispatcher, "reject", first, DeadLetterRoute::default()).await;
/// assert!(matches!(delivery.settlement(), Settlement::Nack { .. }));
///
/// let second = Invocation::new("m").with_context(Context::new("reject").with_attempt(2));
/// let delivery = deliver_once(&dispatcher, "reject", second, DeadLetterRoute::default()).await;
/// assert_eq!(delivery.settlement(), Settlement::Terminate);
/// assert_eq!(dead.entries()[0].attempts, 2);
/// # });
/// ```
pub async fn deliver_once<I: Invoker + ?Sized>(
    invoker: &I,
    function: &str,
    mut invocation: Invocation,
    route: DeadLetterRoute<'_>,
) -> Delivery {
    let call_id = invocation
        .context_mut()
        .call_id_made_at(SystemTime::now)
        .clone();
    let attempt = invocation.context().attempt();
    // Kept for the dead letter; the body is shared, not copied.
    let request = invocation.to_request();
    let error = match invoker.invoke(function, invocation).await {
        Ok(response) => {
            return Delivery::new(call_id, Ok(response), attempt, false, Settlement::Ack);
        }
        Err(error) => error,
    };
    let policy = invoker.policy(function).unwrap_or_default();
    let retry = policy.retry();
    let later = Settlement::Nack {
        delay: retry.backoff(attempt),
    };
    if matches!(error.kind(), ErrorKind::Unavailable | ErrorKind::NotFound)
        || retry.should_retry(&error, attempt)
    {
        return Delivery::new(call_id, Err(error), attempt, false, later);
    }
    let Some(dead_letter) = route
        .dead_letter
        .or_else(|| policy.dead_letter().map(|dead| &**dead))
    else {
        tracing::warn!(
            function,
            %call_id,
            attempt,
            %error,
            "a delivery failed for good and there is no dead letter; the source keeps it"
        );
        let kept = Settlement::Nack {
            delay: retry.max_backoff,
        };
        return Delivery::new(call_id, Err(error), attempt, false, kept);
    };
    let mut letter =
        DeadLetterEntry::new(function, call_id.clone(), request, error.clone(), attempt);
    for (name, value) in route.attributes {
        letter = letter.with_attribute(*name, *value);
    }
    match dead_letter.dead_letter(letter).await {
        Ok(()) => {
            tracing::info!(function, %call_id, attempt, %error, "dead-lettered");
            Delivery::new(call_id, Err(error), attempt, true, Settlement::Terminate)
        }
        Err(failure) => {
            tracing::error!(
                function,
                %call_id,
                error = %failure,
                "could not store a failed delivery in the dead letter; it will be delivered again"
            );
            Delivery::new(call_id, Err(error), attempt, false, later)
        }
    }
}

/// The settlement of an in-process delivery ([`Dispatcher::deliver`](super::Dispatcher::deliver)),
/// whose retries already ran: done, dead-lettered, or kept for later.
#[cfg(feature = "local")]
pub(crate) fn settled_in_process(
    success: bool,
    dead_lettered: bool,
    policy: Option<&crate::policy::InvocationPolicy>,
) -> Settlement {
    if success {
        Settlement::Ack
    } else if dead_lettered {
        Settlement::Terminate
    } else {
        Settlement::Nack {
            delay: policy.map_or(std::time::Duration::ZERO, |policy| {
                policy.retry().max_backoff
            }),
        }
    }
}

#[cfg(all(test, feature = "local"))]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use async_trait::async_trait;

    use super::*;
    use crate::error::Error;
    use crate::policy::InvocationPolicy;
    use crate::{
        Context, Dispatcher, FunctionDefinition, InMemoryDeadLetter, Registry, RetryPolicy,
    };

    /// A dead letter whose store is down.
    struct Broken;

    #[async_trait]
    impl DeadLetter for Broken {
        async fn dead_letter(&self, _: DeadLetterEntry) -> Result<(), Error> {
            Err(Error::trigger("dead letter", "the store is down"))
        }
    }

    async fn fails(body: String) -> Result<String, FunctionError> {
        match body.as_str() {
            "bad" => Err(FunctionError::bad_input("cannot parse")),
            "busy" => Err(FunctionError::unavailable("later")),
            "ok" => Ok("done".to_owned()),
            _ => Err(FunctionError::internal("flaky")),
        }
    }

    fn dispatcher(policy: InvocationPolicy) -> Dispatcher {
        Dispatcher::new(Registry::from([FunctionDefinition::from_handler(
            "f", fails,
        )
        .with_policy(policy)]))
    }

    fn delivery(body: &'static str, attempt: u32) -> Invocation {
        Invocation::new(body)
            .with_context(Context::new("f").with_attempt(attempt))
            .with_header("x-origin", "test")
    }

    fn retry() -> RetryPolicy {
        RetryPolicy::new(3)
            .with_jitter(0.0)
            .with_initial_backoff(Duration::from_millis(100))
    }

    #[tokio::test]
    async fn success_is_acked() {
        let dispatcher = dispatcher(InvocationPolicy::default());
        let done = deliver_once(
            &dispatcher,
            "f",
            delivery("ok", 1),
            DeadLetterRoute::default(),
        )
        .await;
        assert_eq!(done.settlement(), Settlement::Ack);
        assert!(done.should_ack());
        assert_eq!(done.response().unwrap().body(), "done");
    }

    #[tokio::test]
    async fn retryable_failure_is_nacked_with_the_policy_backoff() {
        let dead = Arc::new(InMemoryDeadLetter::new());
        let dispatcher = dispatcher(
            InvocationPolicy::default()
                .with_retry(retry())
                .with_dead_letter(dead.clone()),
        );
        let first = deliver_once(
            &dispatcher,
            "f",
            delivery("x", 1),
            DeadLetterRoute::default(),
        )
        .await;
        assert_eq!(
            first.settlement(),
            Settlement::Nack {
                delay: Duration::from_millis(100)
            }
        );
        let second = deliver_once(
            &dispatcher,
            "f",
            delivery("x", 2),
            DeadLetterRoute::default(),
        )
        .await;
        assert_eq!(
            second.settlement(),
            Settlement::Nack {
                delay: Duration::from_millis(200)
            }
        );
        assert_eq!(second.attempts(), 2);
        assert!(dead.is_empty());
        let last = deliver_once(
            &dispatcher,
            "f",
            delivery("x", 3),
            DeadLetterRoute::default(),
        )
        .await;
        assert_eq!(last.settlement(), Settlement::Terminate);
        assert!(last.is_dead_lettered());
        let letter = &dead.entries()[0];
        assert_eq!(letter.attempts, 3);
        assert_eq!(letter.request.body(), "x");
        assert_eq!(letter.request.headers()["x-origin"], "test");
        assert_eq!(letter.error.message(), "flaky");
    }

    #[tokio::test]
    async fn poison_goes_to_the_route_dead_letter_with_its_attributes() {
        let ours = Arc::new(InMemoryDeadLetter::new());
        let theirs = InMemoryDeadLetter::new();
        let dispatcher = dispatcher(
            InvocationPolicy::default()
                .with_retry(retry())
                .with_dead_letter(ours.clone()),
        );
        let attributes = [("subject", "orders.new"), ("sequence", "42")];
        let route = DeadLetterRoute::new(Some(&theirs), &attributes);
        let done = deliver_once(&dispatcher, "f", delivery("bad", 1), route).await;
        assert_eq!(done.settlement(), Settlement::Terminate);
        assert!(ours.is_empty(), "the source's dead letter comes first");
        let letter = &theirs.entries()[0];
        assert_eq!(letter.attributes["subject"], "orders.new");
        assert_eq!(letter.attributes["sequence"], "42");
        assert_eq!(letter.attempts, 1);
    }

    #[tokio::test]
    async fn a_failed_dead_letter_write_is_not_an_ack() {
        let dispatcher = dispatcher(InvocationPolicy::default().with_retry(retry()));
        let done = deliver_once(
            &dispatcher,
            "f",
            delivery("bad", 1),
            DeadLetterRoute::new(Some(&Broken), &[]),
        )
        .await;
        assert_eq!(
            done.settlement(),
            Settlement::Nack {
                delay: Duration::from_millis(100)
            }
        );
        assert!(!done.is_dead_lettered());
    }

    #[tokio::test]
    async fn without_a_dead_letter_the_source_keeps_it() {
        let dispatcher = dispatcher(InvocationPolicy::default().with_retry(retry()));
        let done = deliver_once(
            &dispatcher,
            "f",
            delivery("bad", 1),
            DeadLetterRoute::default(),
        )
        .await;
        assert_eq!(
            done.settlement(),
            Settlement::Nack {
                delay: retry().max_backoff
            }
        );
    }

    #[tokio::test]
    async fn an_unavailable_host_never_dead_letters() {
        let dead = Arc::new(InMemoryDeadLetter::new());
        let dispatcher = dispatcher(
            InvocationPolicy::default()
                .with_retry(retry())
                .with_dead_letter(dead.clone()),
        );
        let done = deliver_once(
            &dispatcher,
            "f",
            delivery("busy", 9),
            DeadLetterRoute::default(),
        )
        .await;
        assert!(matches!(done.settlement(), Settlement::Nack { .. }));
        let unknown = deliver_once(
            &dispatcher,
            "nobody",
            delivery("ok", 9),
            DeadLetterRoute::default(),
        )
        .await;
        assert!(matches!(unknown.settlement(), Settlement::Nack { .. }));
        assert!(dead.is_empty());
    }
}
