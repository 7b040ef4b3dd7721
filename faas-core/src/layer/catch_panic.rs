//! [`CatchPanicLayer`]: a panic in the function becomes a `Panicked` error and the
//! host keeps serving.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::Answered;
use crate::context::CallId;
use crate::error::FunctionError;
use crate::invocation::Invocation;
use crate::output::Response;

/// Catches a panic of the inner service, both while it makes its future and while
/// the future runs, and answers [`Panicked`](crate::ErrorKind::Panicked) (500)
/// with the panic's message.
///
/// The process's panic hook still runs (by default it prints the message); this
/// layer does not change it.
#[derive(Debug, Clone, Copy, Default)]
pub struct CatchPanicLayer {
    _private: (),
}

impl CatchPanicLayer {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S> Layer<S> for CatchPanicLayer {
    type Service = CatchPanic<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CatchPanic { inner }
    }
}

/// The service of [`CatchPanicLayer`].
#[derive(Debug, Clone)]
pub struct CatchPanic<S> {
    inner: S,
}

impl<S> Service<Invocation> for CatchPanic<S>
where
    S: Service<Invocation, Response = Response, Error = FunctionError>,
{
    type Response = Response;
    type Error = FunctionError;
    type Future = CatchPanicFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), FunctionError>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, invocation: Invocation) -> Self::Future {
        let context = invocation.context();
        let call = CallOf {
            function: context.shared_function_name().cloned(),
            call_id: context.call_id().clone(),
        };
        let inner = &mut self.inner;
        let state = match std::panic::catch_unwind(AssertUnwindSafe(|| inner.call(invocation))) {
            Ok(future) => State::Running { future, call },
            Err(payload) => State::Failed {
                error: Answered::new(call.panicked(payload)),
            },
        };
        CatchPanicFuture { state }
    }
}

/// Which call a panic is reported for.
#[derive(Debug)]
struct CallOf {
    function: Option<Arc<str>>,
    call_id: CallId,
}

impl CallOf {
    fn panicked(&self, payload: Box<dyn Any + Send>) -> FunctionError {
        panicked(
            self.function.as_deref().unwrap_or_default(),
            &self.call_id,
            payload,
        )
    }
}

pin_project! {
    /// The future of [`CatchPanic`].
    #[derive(Debug)]
    pub struct CatchPanicFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProjection]
    #[derive(Debug)]
    enum State<F> {
        Running { #[pin] future: F, call: CallOf },
        /// It panicked while making its future.
        Failed { error: Answered },
    }
}

impl<F> Future for CatchPanicFuture<F>
where
    F: Future<Output = Result<Response, FunctionError>>,
{
    type Output = Result<Response, FunctionError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProjection::Running { future, call } => {
                match std::panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
                    Ok(poll) => poll,
                    Err(payload) => Poll::Ready(Err(call.panicked(payload))),
                }
            }
            StateProjection::Failed { error } => error.take(),
        }
    }
}

/// The error of a call of `function` that panicked with `payload`; the panic is
/// logged.
pub(crate) fn panicked(
    function: &str,
    call_id: &crate::CallId,
    payload: Box<dyn Any + Send>,
) -> FunctionError {
    let message = panic_message(payload.as_ref());
    tracing::error!(function, %call_id, panic = %message, "function panicked");
    FunctionError::panicked(format!("function `{function}` panicked: {message}"))
}

/// The text of a panic payload (`panic!("...")` gives a `&str` or a `String`).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with a non-text payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use tower::ServiceExt;

    use super::*;
    use crate::{ErrorKind, Function, handler_fn};

    #[tokio::test]
    async fn panic_in_the_future_is_caught() {
        let f = handler_fn(|body: String| async move {
            if body == "boom" {
                panic!("kaboom {}", 42);
            }
            body
        });
        let service = CatchPanicLayer::new().layer(f.into_service());
        let err = service
            .clone()
            .oneshot(Invocation::new("boom"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Panicked);
        assert!(err.message().contains("kaboom 42"), "{}", err.message());
        let ok = service.oneshot(Invocation::new("fine")).await.unwrap();
        assert_eq!(ok.body(), "fine");
    }

    #[tokio::test]
    async fn panic_while_making_the_future_is_caught() {
        struct Eager;
        impl Service<Invocation> for Eager {
            type Response = Response;
            type Error = FunctionError;
            type Future = crate::layer::LayerFuture;
            fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), FunctionError>> {
                Poll::Ready(Ok(()))
            }
            fn call(&mut self, _: Invocation) -> crate::layer::LayerFuture {
                panic!("eager")
            }
        }
        let err = CatchPanicLayer::new()
            .layer(Eager)
            .oneshot(Invocation::new(""))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Panicked);
        assert!(err.message().contains("eager"));
    }

    #[tokio::test]
    async fn non_text_payload() {
        struct Odd;
        #[async_trait]
        impl Function for Odd {
            async fn call(&self, _: Invocation) -> Result<Response, FunctionError> {
                std::panic::panic_any(7_u8)
            }
        }
        let err = CatchPanicLayer::new()
            .layer(Odd.into_service())
            .oneshot(Invocation::new(""))
            .await
            .unwrap_err();
        assert!(err.message().contains("non-text"));
    }
}
