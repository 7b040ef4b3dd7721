//! tower all the way through: a function wrapped in layers before it is
//! registered, a hand-written `tower::Service` registered as a function, and
//! a layer the executor puts around every call.
//!
//! ```sh
//! cargo run --example layered
//! curl -s http://127.0.0.1:8080/function/report -H 'x-api-key: let-me-in' -d 'q3'
//! # report on q3 for eu-west
//! curl -si http://127.0.0.1:8080/function/report -d 'q3'     # 401, JSON error body
//! curl -s http://127.0.0.1:8080/function/counter              # 1, then 2, ...
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use faas_core::layer::TimeoutLayer;
use faas_core::{
    Extension, FunctionDefinition, FunctionError, IntoOutput, Invocation, LocalExecutor, Registry,
    Response,
};
use faas_triggers::http::{HttpTrigger, HttpTriggerConfig};
use futures::future::{BoxFuture, Ready, ready};
use http::StatusCode;
use tower::{Layer, Service};

/// The region this host serves, given to every call by the executor.
#[derive(Clone, Copy)]
struct Region(&'static str);

/// Writes a report; it knows nothing of keys or deadlines.
async fn report(Extension(region): Extension<Region>, quarter: String) -> String {
    format!("report on {quarter} for {}", region.0)
}

/// Refuses a call without the right `x-api-key` header: a layer of our own.
#[derive(Clone)]
struct RequireApiKeyLayer {
    key: Arc<str>,
}

impl<S> Layer<S> for RequireApiKeyLayer {
    type Service = RequireApiKey<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireApiKey {
            inner,
            key: Arc::clone(&self.key),
        }
    }
}

/// The service of [`RequireApiKeyLayer`].
#[derive(Clone)]
struct RequireApiKey<S> {
    inner: S,
    key: Arc<str>,
}

impl<S> Service<Invocation> for RequireApiKey<S>
where
    S: Service<Invocation, Response = Response, Error = FunctionError>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = FunctionError;
    type Future = BoxFuture<'static, Result<Response, FunctionError>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), FunctionError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, invocation: Invocation) -> Self::Future {
        let given = invocation.headers().get("x-api-key").map(|v| v.as_bytes());
        if given == Some(self.key.as_bytes()) {
            Box::pin(self.inner.call(invocation))
        } else {
            Box::pin(ready(Err(FunctionError::user_with_status(
                StatusCode::UNAUTHORIZED,
                "a valid x-api-key header is required",
            ))))
        }
    }
}

/// Counts its calls: a hand-written tower service, registered as it is.
#[derive(Clone, Default)]
struct Counter {
    calls: Arc<AtomicU64>,
}

impl Service<Invocation> for Counter {
    type Response = Response;
    type Error = FunctionError;
    type Future = Ready<Result<Response, FunctionError>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), FunctionError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _invocation: Invocation) -> Self::Future {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        ready(n.to_string().into_output())
    }
}

/// The functions, with their own layers; the executor adds the region.
fn registry() -> faas_core::Result<Registry> {
    Registry::try_from_iter([
        FunctionDefinition::from_handler("report", report)
            .layer(TimeoutLayer::new(Some(Duration::from_secs(2))))
            .layer(RequireApiKeyLayer {
                key: "let-me-in".into(),
            }),
        FunctionDefinition::from_service("counter", Counter::default()),
    ])
}

fn executor(registry: Registry) -> faas_core::executor::LocalExecutorBuilder {
    LocalExecutor::builder(registry).layer(Extension(Region("eu-west")))
}

#[tokio::main]
async fn main() -> ExitCode {
    let served = async {
        let addr = faas_examples::listen_addr()?;
        let http = HttpTrigger::bind(HttpTriggerConfig::default().with_addr(addr)).await?;
        executor(registry()?)
            .trigger(http)
            .build()
            .shutdown_on_signal()
            .run()
            .await?;
        Ok::<_, faas_examples::Error>(())
    };
    match served.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", faas_examples::report(&error));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn layers_wrap_the_function_and_every_call() {
        let executor = executor(registry().unwrap()).build();
        let with_key = Invocation::new("q3").with_header("x-api-key", "let-me-in");
        let response = executor.invoke("report", with_key).await.unwrap();
        assert_eq!(response.body(), "report on q3 for eu-west");

        let error = executor
            .invoke("report", Invocation::new("q3"))
            .await
            .unwrap_err();
        assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn a_service_is_a_function() {
        let executor = executor(registry().unwrap()).build();
        for n in 1..=3 {
            let response = executor
                .invoke("counter", Invocation::new(""))
                .await
                .unwrap();
            assert_eq!(response.body(), &n.to_string());
        }
        // Counted in the registry like any other function.
        assert_eq!(
            executor
                .registry()
                .get("counter")
                .unwrap()
                .invocation_count(),
            3
        );
    }
}
