//! [`Handler`]: a plain `async fn` whose arguments are extractors and whose return
//! is an output; [`handler_fn`] turns one into a [`Function`].

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;

use futures::future::BoxFuture;

use crate::error::FunctionError;
use crate::extract::AsyncFromInvocation;
use crate::function::Function;
use crate::invocation::Invocation;
use crate::output::{IntoOutput, Response};

/// An async function usable as a faas function.
///
/// Implemented for every `Fn(A1, ..., An) -> Fut` with 0 to 8 arguments where each
/// `Ai` implements [`FromInvocation`](crate::FromInvocation) (or
/// [`AsyncFromInvocation`], for an extractor that waits), `Fut` is a `Send`
/// future, and its output implements [`IntoOutput`]. `Args` is the tuple of argument types; it only
/// tells the implementations apart.
///
/// The arguments are read in order; the first that fails ends the call with its
/// error, before the function runs.
///
/// ```
/// use faas_core::{handler_fn, Context, Function, Invocation, Json};
///
/// async fn add(Json((a, b)): Json<(i64, i64)>, _ctx: Context) -> Json<i64> {
///     Json(a + b)
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let f = handler_fn(add);
/// let response = f.call(Invocation::new("[2, 3]")).await.unwrap();
/// assert_eq!(response.body(), "5");
/// # });
/// ```
///
/// An argument that is not an extractor is refused at compile time, with a
/// message that lists the extractors:
///
/// ```compile_fail
/// use faas_core::handler_fn;
///
/// struct Order;
/// async fn place(order: Order) {}
///
/// let f = handler_fn(place); // error: `fn(Order) -> ... {place}` is not a faas handler
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a faas handler",
    label = "not a handler",
    note = "a handler is an `async fn` (or a closure returning a `Send` future) that takes 0 to 8 arguments implementing `FromInvocation` (`Json<T>`, `Bytes`, `String`, `http::Request<Bytes>`, `http::HeaderMap`, `Context`, `CloudEvent`, `State<S>`, `Extension<T>`, `Path<T>`, `Query<T>`, `Option<T>`, ...) and returns a type implementing `IntoOutput` (`Json<T>`, `String`, `Bytes`, `()`, `http::Response<Bytes>`, `Result<T, E>` with `E: Into<FunctionError>`, ...)",
    note = "the future must be `Send`: do not hold an `Rc`, a `RefCell` borrow or a `std::sync::MutexGuard` across an `.await`"
)]
pub trait Handler<Args>: Clone + Send + Sync + 'static {
    /// Reads the arguments from `invocation` and calls the function.
    fn call(&self, invocation: Invocation) -> HandlerFuture;
}

/// The future of a [`Handler`] call: its arguments are read, then the
/// function runs; an argument that cannot be read ends it with its error.
pub type HandlerFuture = BoxFuture<'static, Result<Response, FunctionError>>;

macro_rules! impl_handler {
    ($($arg:ident),*) => {
        impl<F, Fut, R, $($arg,)*> Handler<($($arg,)*)> for F
        where
            F: Fn($($arg),*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoOutput,
            $($arg: AsyncFromInvocation + 'static,)*
        {
            #[allow(non_snake_case, unused_variables, unused_labels, unreachable_code, clippy::redundant_clone)]
            fn call(&self, invocation: Invocation) -> HandlerFuture {
                // Every argument that reads at once is read now: when all do,
                // the boxed future holds only the function's own, not the
                // invocation.
                'at_once: {
                    $(
                        let $arg = match $arg::from_invocation_now(&invocation) {
                            Some(Ok(value)) => value,
                            Some(Err(error)) => return Box::pin(std::future::ready(Err(error))),
                            None => break 'at_once,
                        };
                    )*
                    drop(invocation);
                    let call = self($($arg),*);
                    return Box::pin(async move { call.await.into_output() });
                }
                // An extractor waits: read the arguments in order inside the future.
                let handler = self.clone();
                Box::pin(async move {
                    $(
                        let $arg = $arg::from_invocation_async(&invocation).await?;
                    )*
                    // The arguments are read: the function's future does not
                    // keep the request alive.
                    drop(invocation);
                    handler($($arg),*).await.into_output()
                })
            }
        }
    };
}

impl_handler!();
impl_handler!(A1);
impl_handler!(A1, A2);
impl_handler!(A1, A2, A3);
impl_handler!(A1, A2, A3, A4);
impl_handler!(A1, A2, A3, A4, A5);
impl_handler!(A1, A2, A3, A4, A5, A6);
impl_handler!(A1, A2, A3, A4, A5, A6, A7);
impl_handler!(A1, A2, A3, A4, A5, A6, A7, A8);

/// A [`Handler`] as a [`Function`].
pub struct HandlerFunction<H, Args> {
    handler: H,
    _args: PhantomData<fn() -> Args>,
}

impl<H: Clone, Args> Clone for HandlerFunction<H, Args> {
    fn clone(&self) -> Self {
        HandlerFunction {
            handler: self.handler.clone(),
            _args: PhantomData,
        }
    }
}

impl<H, Args> fmt::Debug for HandlerFunction<H, Args> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerFunction")
            .field("handler", &std::any::type_name::<H>())
            .finish()
    }
}

impl<H, Args> HandlerFunction<H, Args> {
    /// The handler inside.
    pub fn handler(&self) -> &H {
        &self.handler
    }
}

/// Turns an async fn into a [`Function`].
///
/// ```
/// use faas_core::{handler_fn, Function, Invocation};
///
/// async fn shout(text: String) -> String { text.to_uppercase() }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let response = handler_fn(shout).call(Invocation::new("hey")).await.unwrap();
/// assert_eq!(response.body(), "HEY");
/// # });
/// ```
pub fn handler_fn<H, Args>(handler: H) -> HandlerFunction<H, Args>
where
    H: Handler<Args>,
{
    HandlerFunction {
        handler,
        _args: PhantomData,
    }
}

// Written out rather than with `#[async_trait]`: the handler's future is
// already boxed, and boxing it again would cost a second allocation.
impl<H, Args> Function for HandlerFunction<H, Args>
where
    H: Handler<Args>,
    Args: 'static,
{
    fn call<'life0, 'async_trait>(
        &'life0 self,
        invocation: Invocation,
    ) -> BoxFuture<'async_trait, Result<Response, FunctionError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.handler.call(invocation)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http::{HeaderMap, Method, StatusCode, Uri};

    use super::*;
    use crate::{CloudEvent, Context, ErrorKind, Json};

    async fn call<H: Handler<Args>, Args: 'static>(
        h: H,
        inv: Invocation,
    ) -> Result<Response, FunctionError> {
        handler_fn(h).call(inv).await
    }

    #[tokio::test]
    async fn arities_zero_to_eight() {
        assert_eq!(
            call(|| async { "zero" }, Invocation::new(""))
                .await
                .unwrap()
                .body(),
            "zero"
        );
        assert_eq!(
            call(|s: String| async move { s }, Invocation::new("one"))
                .await
                .unwrap()
                .body(),
            "one"
        );
        let eight = |a: String,
                     b: Bytes,
                     c: Context,
                     d: HeaderMap,
                     e: Method,
                     f: Uri,
                     g: Option<Json<u8>>,
                     h: Invocation| async move {
            assert_eq!(a, "7");
            assert_eq!(b, "7");
            assert_eq!(c.attempt(), 1);
            assert!(d.is_empty());
            assert_eq!(e, Method::POST);
            assert_eq!(f, "/");
            assert_eq!(g.map(|j| j.0), Some(7));
            assert_eq!(h.body(), "7");
            StatusCode::ACCEPTED
        };
        assert_eq!(
            call(eight, Invocation::new("7")).await.unwrap().status(),
            StatusCode::ACCEPTED
        );
    }

    #[tokio::test]
    async fn extractor_error_stops_before_the_body() {
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = ran.clone();
        let h = move |_: Json<u32>| {
            let seen = seen.clone();
            async move {
                seen.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        };
        let err = call(h, Invocation::new("{bad")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput);
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test]
    async fn user_errors_pass_through() {
        async fn fails(_: Bytes) -> Result<(), FunctionError> {
            Err(FunctionError::user_with_status(
                StatusCode::CONFLICT,
                "taken",
            ))
        }
        let err = call(fails, Invocation::new("")).await.unwrap_err();
        assert_eq!(err.status(), StatusCode::CONFLICT);
    }

    #[tokio::test]
    async fn cloudevents_in_and_out() {
        async fn relay(event: CloudEvent) -> CloudEvent {
            CloudEvent::new(format!("{}-reply", event.id), "/relay", "dev.faas.reply")
        }
        let inv = Invocation::from_event(CloudEvent::new("9", "/s", "t"));
        let response = call(relay, inv).await.unwrap();
        assert_eq!(response.headers()["ce-id"], "9-reply");
    }

    /// An extractor that waits, beside ones that read at once.
    struct Slow(u32);

    impl AsyncFromInvocation for Slow {
        async fn from_invocation_async(invocation: &Invocation) -> Result<Self, FunctionError> {
            tokio::task::yield_now().await;
            let text = std::str::from_utf8(invocation.body()).unwrap_or_default();
            text.parse()
                .map(Slow)
                .map_err(|_| FunctionError::bad_input("not a number"))
        }
    }

    #[tokio::test]
    async fn waiting_extractors_mix_with_immediate_ones() {
        let h = |text: String, Slow(n): Slow, ctx: Context| async move {
            format!("{text}:{n}:{}", ctx.attempt())
        };
        let response = call(h, Invocation::new("42")).await.unwrap();
        assert_eq!(response.body(), "42:42:1");
        let err = call(h, Invocation::new("x")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput);
        // An immediate extractor that fails before the waiting one ends the call too.
        let j = |_: Json<u8>, Slow(_): Slow| async {};
        let err = call(j, Invocation::new("{")).await.unwrap_err();
        assert!(err.message().contains("JSON"), "{}", err.message());
    }

    #[test]
    fn handler_function_is_debug() {
        let f = handler_fn(|| async {});
        assert!(format!("{f:?}").contains("HandlerFunction"));
    }
}
