//! [`State`] and [`Extension`]: values a host or a layer hands to every call,
//! so that a database pool or an HTTP client reaches a function without a
//! global.

use std::any::type_name;

use crate::error::FunctionError;
use crate::extract::{FromInvocation, OptionalFromInvocation};
use crate::invocation::Invocation;

/// The state given once to the host, cloned into each call.
///
/// Give it to the [`LocalExecutor`](crate::LocalExecutor) with
/// `LocalExecutorBuilder::state`, to the function runtime of `faas-triggers`
/// with its `state` method, or to a single call with
/// [`Invocation::with_state`] (a unit test). `S` is usually an `Arc` or a
/// type that is cheap to clone (a pool handle, an HTTP client). A call that
/// asks for a state of a type nobody gave fails with
/// [`Internal`](crate::ErrorKind::Internal) (500): that is a mistake of the
/// program, not of the caller.
///
/// ```
/// use std::sync::Arc;
/// use faas_core::extract::State;
/// use faas_core::{handler_fn, Function, Invocation};
///
/// #[derive(Clone)]
/// struct Prices(Arc<std::collections::HashMap<String, u32>>);
///
/// async fn price(State(prices): State<Prices>, item: String) -> String {
///     prices.0.get(&item).map_or("unknown".to_owned(), |p| p.to_string())
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let prices = Prices(Arc::new([("tea".to_owned(), 3)].into()));
/// let call = Invocation::new("tea").with_state(prices);
/// assert_eq!(handler_fn(price).call(call).await.unwrap().body(), "3");
/// # });
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct State<S>(pub S);

/// Where a host keeps its state in an invocation's extensions: apart from
/// the [`Extension`]s, so a state and an extension of the same type do not
/// mix.
#[derive(Debug, Clone)]
pub(crate) struct HostState<S>(pub(crate) S);

impl<S: Clone + Send + Sync + 'static> FromInvocation for State<S> {
    fn from_invocation(invocation: &Invocation) -> Result<Self, FunctionError> {
        Self::from_invocation_optional(invocation)?.ok_or_else(|| {
            FunctionError::internal(format!(
                "the function takes `State<{}>` but the host was given no state of that type: \
                 give it with `LocalExecutor::builder(..).state(..)`, the runtime's `.state(..)`, \
                 or `Invocation::with_state` in a test",
                type_name::<S>()
            ))
        })
    }
}

impl<S: Clone + Send + Sync + 'static> OptionalFromInvocation for State<S> {
    fn from_invocation_optional(invocation: &Invocation) -> Result<Option<Self>, FunctionError> {
        Ok(invocation
            .extensions()
            .get::<HostState<S>>()
            .map(|state| State(state.0.clone())))
    }
}

/// A value of the invocation's [extensions](Invocation::extensions), cloned:
/// put there by the host, a trigger, or a layer.
///
/// `Extension(value)` is also a [`tower::Layer`] that puts a clone of `value`
/// into every call it wraps, so a function gets a shared client by being
/// registered with `.layer(Extension(client))`. A call without a value of
/// type `T` fails with [`Internal`](crate::ErrorKind::Internal) (500); take
/// `Option<Extension<T>>` when it is optional.
///
/// ```
/// use faas_core::extract::Extension;
/// use faas_core::{FunctionDefinition, Invocation};
///
/// #[derive(Clone)]
/// struct Greeting(&'static str);
///
/// async fn greet(Extension(greeting): Extension<Greeting>, name: String) -> String {
///     format!("{}, {name}", greeting.0)
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let definition = FunctionDefinition::from_handler("greet", greet).layer(Extension(Greeting("hello")));
/// let response = definition.function().call(Invocation::new("ada")).await.unwrap();
/// assert_eq!(response.body(), "hello, ada");
/// # });
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Extension<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromInvocation for Extension<T> {
    fn from_invocation(invocation: &Invocation) -> Result<Self, FunctionError> {
        Self::from_invocation_optional(invocation)?.ok_or_else(|| {
            FunctionError::internal(format!(
                "the function takes `Extension<{}>` but the call carries none: \
                 add it with the `Extension` layer or `Invocation::with_extension`",
                type_name::<T>()
            ))
        })
    }
}

impl<T: Clone + Send + Sync + 'static> OptionalFromInvocation for Extension<T> {
    fn from_invocation_optional(invocation: &Invocation) -> Result<Option<Self>, FunctionError> {
        Ok(invocation.extensions().get::<T>().cloned().map(Extension))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn state_and_extension_are_apart() {
        let inv = Invocation::new("").with_state(7u32).with_extension(9u32);
        assert_eq!(State::<u32>::from_invocation(&inv).unwrap().0, 7);
        assert_eq!(Extension::<u32>::from_invocation(&inv).unwrap().0, 9);
    }

    #[test]
    fn missing_is_internal_or_none() {
        let inv = Invocation::new("");
        let err = State::<u32>::from_invocation(&inv).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert!(err.message().contains("State<u32>"), "{}", err.message());
        let err = Extension::<String>::from_invocation(&inv).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert!(
            Option::<Extension<String>>::from_invocation(&inv)
                .unwrap()
                .is_none()
        );
        assert!(
            Option::<State<u32>>::from_invocation(&inv)
                .unwrap()
                .is_none()
        );
    }
}
