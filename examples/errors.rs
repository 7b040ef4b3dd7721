//! Errors: what a function can fail with, and how every host answers.
//!
//! ```sh
//! cargo run --example errors
//! ```
//!
//! Calls a few functions through the local executor (no server needed) and
//! prints each answer as a host writes it: the status of the error's kind and
//! the JSON body `{"error":{"kind","message","call_id"}}`.
//!
//! - `FunctionError` constructors pick the kind: `bad_input` (400),
//!   `not_found` (404), `unavailable` (503), `user_with_status` (yours), ...
//! - A user error type (`OrderError`) converts into a `FunctionError` with
//!   `From`, so handlers return `Result<_, OrderError>` and use `?`.
//! - A panic becomes a `panicked` 500; the host keeps serving.
//! - A policy: `timeout` cancels a slow call (504); `max_attempts` re-delivers an
//!   event with backoff; a dead letter keeps what failed for good.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use faas_core::{
    Context, FunctionDefinition, FunctionError, InMemoryDeadLetter, Invocation, InvocationPolicy,
    Json, LocalExecutor, Registry, RetryPolicy, function, functions,
};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

#[derive(Deserialize)]
struct PayOrder {
    id: u32,
}

#[derive(Serialize)]
struct Receipt {
    id: u32,
    paid: bool,
}

/// The function's own error type: what can go wrong in the domain.
#[derive(Debug, thiserror::Error)]
enum OrderError {
    #[error("no order {0}")]
    NotFound(u32),
    #[error("order {0} is already paid")]
    AlreadyPaid(u32),
}

/// How the domain's errors are answered: a missing order is a 404, paying
/// twice is a 409 Conflict; the original error stays as the source.
impl From<OrderError> for FunctionError {
    fn from(error: OrderError) -> Self {
        let answer = match &error {
            OrderError::NotFound(_) => FunctionError::not_found(error.to_string()),
            OrderError::AlreadyPaid(_) => {
                FunctionError::user_with_status(StatusCode::CONFLICT, error.to_string())
            }
        };
        answer.with_source(error)
    }
}

/// Pays an order. Order 1 is open, order 2 is paid, no other exists.
#[function(trigger = http(path = "/pay", methods = ["POST"]))]
async fn pay(Json(order): Json<PayOrder>) -> Result<Json<Receipt>, OrderError> {
    match order.id {
        1 => Ok(Json(Receipt { id: 1, paid: true })),
        2 => Err(OrderError::AlreadyPaid(2)),
        id => Err(OrderError::NotFound(id)),
    }
}

/// A bug: indexing past the end panics. The host catches it.
#[function]
async fn explode(body: String) -> String {
    let words: Vec<&str> = body.split_whitespace().collect();
    words[10].to_owned()
}

/// Waits on a dependency that does not answer; the deadline cancels it.
#[function(timeout = "200ms")]
async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    "too late"
}

/// Fails its first two attempts (a dependency is restarting), then succeeds:
/// `max_attempts = 3` gives it three attempts in all when it is delivered as an event.
#[function(max_attempts = 3)]
async fn flaky(ctx: Context) -> Result<String, FunctionError> {
    if ctx.attempt() < 3 {
        return Err(FunctionError::unavailable(
            "the inventory service is restarting",
        ));
    }
    Ok(format!("reserved on attempt {}", ctx.attempt()))
}

/// Always fails with a retryable error.
async fn broken() -> Result<(), FunctionError> {
    Err(FunctionError::internal("the disk is full"))
}

/// The functions, and `broken` with a policy written by hand: two attempts
/// 10 ms apart, then the dead letter.
fn registry(dead_letter: Arc<InMemoryDeadLetter>) -> faas_core::Result<Registry> {
    let registry = Registry::try_from_iter(functions![pay, explode, slow, flaky])?;
    let policy = InvocationPolicy::default()
        .with_retry(
            RetryPolicy::default()
                .with_max_attempts(2)
                .with_initial_backoff(Duration::from_millis(10)),
        )
        .with_dead_letter(dead_letter);
    registry.register(FunctionDefinition::from_handler("broken", broken).with_policy(policy))?;
    Ok(registry)
}

fn json(body: &str) -> Invocation {
    Invocation::new(body.to_owned()).with_header("content-type", "application/json")
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    let dead_letter = Arc::new(InMemoryDeadLetter::new());
    let registry = match registry(Arc::clone(&dead_letter)) {
        Ok(registry) => registry,
        Err(error) => {
            eprintln!("{}", faas_examples::report(&error));
            return ExitCode::FAILURE;
        }
    };
    let executor = LocalExecutor::new(registry);
    let dispatcher = executor.dispatcher();

    // One call each, answered as an HTTP host answers: status and body.
    let calls = [
        ("pay", json(r#"{"id":1}"#), "success"),
        (
            "pay",
            json(r#"{"id":"one"}"#),
            "malformed input: bad_input, 400",
        ),
        (
            "pay",
            json(r#"{"id":7}"#),
            "OrderError::NotFound: not_found, 404",
        ),
        (
            "pay",
            json(r#"{"id":2}"#),
            "OrderError::AlreadyPaid: user, 409",
        ),
        (
            "explode",
            Invocation::new("two words"),
            "a panic: panicked, 500 (the panic hook printed it above)",
        ),
        ("pay", json(r#"{"id":1}"#), "the host still serves"),
        (
            "slow",
            Invocation::new(""),
            "past its 200ms deadline: timeout, 504",
        ),
        (
            "nothing",
            Invocation::new(""),
            "no such function: not_found, 404",
        ),
    ];
    for (function, invocation, what) in calls {
        let response = dispatcher.dispatch_to_response(function, invocation).await;
        let body = String::from_utf8_lossy(response.body());
        println!(
            "{function:>8} -> {} {body}\n         ({what})",
            response.status()
        );
    }

    // Events are delivered with the policy's retries and backoff.
    let delivery = dispatcher.deliver("flaky", Invocation::new("")).await;
    println!(
        "   flaky -> delivered: {}, after {} attempts",
        delivery.is_success(),
        delivery.attempts()
    );
    let delivery = dispatcher.deliver("broken", Invocation::new("")).await;
    println!(
        "  broken -> delivered: {}, after {} attempts, dead-lettered: {}",
        delivery.is_success(),
        delivery.attempts(),
        delivery.is_dead_lettered()
    );
    for letter in dead_letter.entries() {
        println!(
            "          dead letter: {} {} {}",
            letter.function, letter.call_id, letter.error
        );
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use faas_core::ErrorKind;

    use super::*;

    fn executor() -> (LocalExecutor, Arc<InMemoryDeadLetter>) {
        let dead_letter = Arc::new(InMemoryDeadLetter::new());
        let registry = registry(Arc::clone(&dead_letter)).unwrap();
        (LocalExecutor::new(registry), dead_letter)
    }

    #[tokio::test]
    async fn user_errors_keep_their_status_and_source() {
        let (executor, _) = executor();
        let error = executor
            .invoke("pay", json(r#"{"id":7}"#))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::NotFound);
        assert_eq!(error.message(), "no order 7");

        let error = executor
            .invoke("pay", json(r#"{"id":2}"#))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::User);
        assert_eq!(error.status(), StatusCode::CONFLICT);
        let source = std::error::Error::source(&error).expect("the OrderError is kept");
        assert_eq!(source.to_string(), "order 2 is already paid");
    }

    #[tokio::test]
    async fn the_answer_is_the_json_error_body() {
        let (executor, _) = executor();
        let invocation = json(r#"{"id":"one"}"#);
        let call_id = invocation.context().call_id().clone();
        let response = executor
            .dispatcher()
            .dispatch_to_response("pay", invocation)
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["error"]["kind"], "bad_input");
        assert_eq!(body["error"]["call_id"], call_id.as_str());
    }

    #[tokio::test]
    async fn a_panic_does_not_take_the_host_down() {
        let (executor, _) = executor();
        let error = executor
            .invoke("explode", Invocation::new("two words"))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Panicked);
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let response = executor.invoke("pay", json(r#"{"id":1}"#)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn the_deadline_cancels_a_slow_call() {
        let (executor, _) = executor();
        let error = executor
            .invoke("slow", Invocation::new(""))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Timeout);
        assert_eq!(error.status(), StatusCode::GATEWAY_TIMEOUT);
    }

    #[tokio::test]
    async fn retries_deliver_a_flaky_event() {
        let (executor, _) = executor();
        let delivery = executor
            .dispatcher()
            .deliver("flaky", Invocation::new(""))
            .await;
        assert!(delivery.is_success(), "{:?}", delivery.error());
        assert_eq!(delivery.attempts(), 3);
        assert_eq!(delivery.response().unwrap().body(), "reserved on attempt 3");
    }

    #[tokio::test]
    async fn what_fails_for_good_goes_to_the_dead_letter() {
        let (executor, dead_letter) = executor();
        let delivery = executor
            .dispatcher()
            .deliver("broken", Invocation::new(""))
            .await;
        assert!(!delivery.is_success());
        assert!(delivery.is_dead_lettered());
        assert!(delivery.should_ack());
        let letters = dead_letter.entries();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].function, "broken");
        assert_eq!(letters[0].attempts, 2);
        assert_eq!(letters[0].error.kind(), ErrorKind::Internal);
    }

    #[tokio::test]
    async fn a_synchronous_call_is_not_retried() {
        let (executor, _) = executor();
        let error = executor
            .invoke("flaky", Invocation::new(""))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unavailable);
    }
}
