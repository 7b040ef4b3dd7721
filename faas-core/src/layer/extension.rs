//! [`AddExtension`] and [`StateLayer`]: put a value into every call, where
//! [`Extension`] or [`State`](crate::State) reads it.

use std::task::{Context as TaskContext, Poll};

use tower::{Layer, Service};

use crate::error::FunctionError;
use crate::extract::{Extension, HostState};
use crate::invocation::Invocation;
use crate::output::Response;

/// `Extension(value)` as a layer: every call it wraps carries a clone of
/// `value` in its extensions.
impl<S, T: Clone + Send + Sync + 'static> Layer<S> for Extension<T> {
    type Service = AddExtension<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        AddExtension {
            inner,
            value: self.0.clone(),
        }
    }
}

/// The service of the [`Extension`] layer: adds a clone of its value to
/// each invocation, then calls the inner service.
#[derive(Debug, Clone)]
pub struct AddExtension<S, T> {
    inner: S,
    value: T,
}

impl<S, T> Service<Invocation> for AddExtension<S, T>
where
    S: Service<Invocation, Response = Response, Error = FunctionError>,
    T: Clone + Send + Sync + 'static,
{
    type Response = Response;
    type Error = FunctionError;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), FunctionError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: Invocation) -> Self::Future {
        invocation.extensions_mut().insert(self.value.clone());
        self.inner.call(invocation)
    }
}

/// Gives every call it wraps the host's state, read by [`State<S>`](crate::State).
///
/// The executor's and the runtime's `state(..)` add this layer; use it
/// directly to give one function its own state.
///
/// ```
/// use faas_core::layer::StateLayer;
/// use faas_core::{FunctionDefinition, Invocation, State};
///
/// async fn limit(State(max): State<u32>) -> String { max.to_string() }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let definition = FunctionDefinition::from_handler("limit", limit).layer(StateLayer::new(10u32));
/// let response = definition.function().call(Invocation::new("")).await.unwrap();
/// assert_eq!(response.body(), "10");
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct StateLayer<T> {
    state: T,
}

impl<T: Clone + Send + Sync + 'static> StateLayer<T> {
    /// Gives every call a clone of `state`.
    pub fn new(state: T) -> Self {
        StateLayer { state }
    }
}

impl<S, T: Clone + Send + Sync + 'static> Layer<S> for StateLayer<T> {
    type Service = AddState<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        AddState {
            inner,
            state: self.state.clone(),
        }
    }
}

/// The service of [`StateLayer`].
#[derive(Debug, Clone)]
pub struct AddState<S, T> {
    inner: S,
    state: T,
}

impl<S, T> Service<Invocation> for AddState<S, T>
where
    S: Service<Invocation, Response = Response, Error = FunctionError>,
    T: Clone + Send + Sync + 'static,
{
    type Response = Response;
    type Error = FunctionError;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), FunctionError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: Invocation) -> Self::Future {
        invocation
            .extensions_mut()
            .insert(HostState(self.state.clone()));
        self.inner.call(invocation)
    }
}

#[cfg(test)]
mod tests {
    use tower::ServiceExt;

    use super::*;
    use crate::{Function, State, handler_fn};

    #[tokio::test]
    async fn extension_and_state_reach_the_handler() {
        let f = handler_fn(
            |Extension(a): Extension<u8>, State(b): State<u8>| async move { format!("{a}{b}") },
        );
        let service = tower::ServiceBuilder::new()
            .layer(Extension(1u8))
            .layer(StateLayer::new(2u8))
            .service(f.into_service());
        let response = service.oneshot(Invocation::new("")).await.unwrap();
        assert_eq!(response.body(), "12");
    }
}
