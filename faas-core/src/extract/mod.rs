//! How a handler's arguments are read from an [`Invocation`]:
//! [`FromInvocation`] (at once), [`AsyncFromInvocation`] (an extractor that
//! waits), [`OptionalFromInvocation`] (what `Option<T>` means), and the
//! extractors that read more than the body: [`State`], [`Extension`],
//! [`Path`] and [`Query`].

mod path;
mod query;
mod state;

use std::future::Future;

use bytes::Bytes;
use http::{HeaderMap, Method, Uri};

pub use path::{Path, PathParams};
pub use query::Query;
pub(crate) use state::HostState;
pub use state::{Extension, State};

use crate::context::Context;
use crate::error::FunctionError;
use crate::invocation::Invocation;

/// A value a handler can take as an argument, read from the invocation.
///
/// Implemented for:
///
/// | type | reads | fails with |
/// |---|---|---|
/// | [`Json<T>`](crate::Json) | the body as JSON | 415 on a non-JSON content type, 400 on bad JSON |
/// | [`Bytes`] | the body as is | never |
/// | [`String`] | the body as UTF-8 | 400 on invalid UTF-8 |
/// | [`http::Request<Bytes>`] | a copy of the whole request | never |
/// | [`HeaderMap`], [`Method`], [`Uri`] | that part of the request | never |
/// | [`Context`] | the call's context | never |
/// | [`CloudEvent`](crate::CloudEvent) | a CloudEvent, binary or structured mode | 400 |
/// | [`Invocation`] | a copy of the invocation | never |
/// | [`State<S>`] | the state given to the host, cloned | 500 when the host was given none of type `S` |
/// | [`Extension<T>`] | a value of the invocation's extensions, cloned | 500 when there is none of type `T` |
/// | [`Path<T>`] | the parameters of the matched route template (`/orders/{id}`) | 400 when one does not parse, 404 when the call matched no template |
/// | [`Query<T>`] | the URI's query string | 400 |
/// | `Option<T>` | `None` only when the part is absent (see [`OptionalFromInvocation`]) | as `T` when the part is there but wrong |
/// | `Result<T, FunctionError>` | `T`'s result, for the handler to inspect | never |
///
/// Implement it for your own types to read, say, an authenticated user from a
/// header; an extractor that has to wait (a lookup in a database, a call to an
/// identity service) implements [`AsyncFromInvocation`] instead.
///
/// ```
/// use faas_core::{FromInvocation, FunctionError, Invocation};
///
/// struct Tenant(String);
///
/// impl FromInvocation for Tenant {
///     fn from_invocation(inv: &Invocation) -> Result<Self, FunctionError> {
///         inv.headers()
///             .get("x-tenant")
///             .and_then(|v| v.to_str().ok())
///             .map(|v| Tenant(v.to_owned()))
///             .ok_or_else(|| FunctionError::bad_input("the x-tenant header is required"))
///     }
/// }
///
/// let inv = Invocation::new("").with_header("x-tenant", "acme");
/// assert_eq!(Tenant::from_invocation(&inv).unwrap().0, "acme");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be read from an invocation, so it cannot be a function argument",
    label = "not an extractor",
    note = "function arguments must implement `FromInvocation` or `AsyncFromInvocation`: `Json<T>` (T: Deserialize), `Bytes`, `String`, `http::Request<Bytes>`, `http::HeaderMap`, `http::Method`, `http::Uri`, `Context`, `CloudEvent`, `Invocation`, `State<S>`, `Extension<T>`, `Path<T>`, `Query<T>`, `Option<T>` or `Result<T, FunctionError>` of one of these",
    note = "to read a JSON body into your own type, take `Json<{Self}>` and derive `serde::Deserialize` for it"
)]
pub trait FromInvocation: Sized {
    /// Reads the value, or says why the invocation does not hold one.
    fn from_invocation(invocation: &Invocation) -> Result<Self, FunctionError>;
}

/// An extractor that may wait: what a handler's arguments implement.
///
/// Every [`FromInvocation`] is one (it answers at once). Implement this trait
/// directly for an extractor that has to wait, e.g. for a session store or an
/// identity service; write the method as an `async fn`. The future must be
/// `Send` and may borrow the invocation.
///
/// ```
/// use faas_core::extract::AsyncFromInvocation;
/// use faas_core::{handler_fn, Function, FunctionError, Invocation};
///
/// /// The user a bearer token belongs to, looked up in a (slow) store.
/// struct User(String);
///
/// impl AsyncFromInvocation for User {
///     async fn from_invocation_async(invocation: &Invocation) -> Result<Self, FunctionError> {
///         let token = invocation
///             .headers()
///             .get("authorization")
///             .and_then(|v| v.to_str().ok())
///             .and_then(|v| v.strip_prefix("Bearer "))
///             .ok_or_else(|| FunctionError::bad_input("an `authorization: Bearer` header is required"))?
///             .to_owned();
///         tokio::task::yield_now().await; // the lookup
///         Ok(User(format!("user-of-{token}")))
///     }
/// }
///
/// async fn whoami(User(user): User) -> String { user }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let call = Invocation::new("").with_header("authorization", "Bearer t1");
/// let response = handler_fn(whoami).call(call).await.unwrap();
/// assert_eq!(response.body(), "user-of-t1");
/// # });
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be read from an invocation, so it cannot be a function argument",
    label = "not an extractor",
    note = "function arguments must implement `FromInvocation` or `AsyncFromInvocation`: `Json<T>` (T: Deserialize), `Bytes`, `String`, `http::Request<Bytes>`, `http::HeaderMap`, `http::Method`, `http::Uri`, `Context`, `CloudEvent`, `Invocation`, `State<S>`, `Extension<T>`, `Path<T>`, `Query<T>`, `Option<T>` or `Result<T, FunctionError>` of one of these",
    note = "to read a JSON body into your own type, take `Json<{Self}>` and derive `serde::Deserialize` for it"
)]
pub trait AsyncFromInvocation: Sized + Send {
    /// Reads the value, waiting if it must, or says why the invocation does
    /// not hold one.
    fn from_invocation_async(
        invocation: &Invocation,
    ) -> impl Future<Output = Result<Self, FunctionError>> + Send;

    /// The value read at once, when this extractor never waits; `None` for
    /// one that may (the default). Every [`FromInvocation`] answers here, so
    /// that a handler whose arguments all do reads them before its future is
    /// made, and that future does not carry the invocation.
    #[doc(hidden)]
    fn from_invocation_now(invocation: &Invocation) -> Option<Result<Self, FunctionError>> {
        let _ = invocation;
        None
    }
}

impl<T: FromInvocation + Send> AsyncFromInvocation for T {
    fn from_invocation_async(
        invocation: &Invocation,
    ) -> impl Future<Output = Result<Self, FunctionError>> + Send {
        std::future::ready(T::from_invocation(invocation))
    }

    fn from_invocation_now(invocation: &Invocation) -> Option<Result<Self, FunctionError>> {
        Some(T::from_invocation(invocation))
    }
}

/// What `Option<T>` of an extractor reads: `None` when the part `T` reads is
/// absent, an error when it is there but wrong.
///
/// A body that does not parse is not absent: `Option<Json<T>>` fails with the
/// same 400 or 415 as `Json<T>`, and is `None` only for an empty body (as
/// axum's `OptionalFromRequest`). Implemented by [`Json<T>`](crate::Json)
/// (empty body), [`String`] (empty body), [`CloudEvent`](crate::CloudEvent)
/// (no `ce-` attributes), [`Path<T>`] (no route parameters), [`Query<T>`] (no
/// query string), [`Extension<T>`] and [`State<S>`] (none given).
///
/// ```
/// use faas_core::{ErrorKind, FromInvocation, Invocation, Json};
///
/// let absent = Option::<Json<u32>>::from_invocation(&Invocation::new("")).unwrap();
/// assert!(absent.is_none());
/// let wrong = Option::<Json<u32>>::from_invocation(&Invocation::new("seven")).unwrap_err();
/// assert_eq!(wrong.kind(), ErrorKind::BadInput);
/// ```
#[diagnostic::on_unimplemented(
    message = "`Option<{Self}>` is not an extractor: `{Self}` does not say when its part is absent",
    label = "not an optional extractor",
    note = "implement `OptionalFromInvocation` for `{Self}`, or take `Result<{Self}, FunctionError>` to inspect its error"
)]
pub trait OptionalFromInvocation: Sized {
    /// `Ok(None)` when the part is absent, `Ok(Some(_))` when it is there and
    /// reads, the error when it is there and does not.
    fn from_invocation_optional(invocation: &Invocation) -> Result<Option<Self>, FunctionError>;
}

impl FromInvocation for Bytes {
    fn from_invocation(invocation: &Invocation) -> Result<Self, FunctionError> {
        Ok(invocation.body().clone())
    }
}

impl FromInvocation for String {
    fn from_invocation(invocation: &Invocation) -> Result<Self, FunctionError> {
        std::str::from_utf8(invocation.body())
            .map(str::to_owned)
            .map_err(|error| {
                FunctionError::bad_input(format!("the body is not valid UTF-8 text: {error}"))
                    .with_source(error)
            })
    }
}

impl FromInvocation for http::Request<Bytes> {
    fn from_invocation(invocation: &Invocation) -> Result<Self, FunctionError> {
        Ok(invocation.to_request())
    }
}

impl FromInvocation for HeaderMap {
    fn from_invocation(invocation: &Invocation) -> Result<Self, FunctionError> {
        Ok(invocation.headers().clone())
    }
}

impl FromInvocation for Method {
    fn from_invocation(invocation: &Invocation) -> Result<Self, FunctionError> {
        Ok(invocation.method().clone())
    }
}

impl FromInvocation for Uri {
    fn from_invocation(invocation: &Invocation) -> Result<Self, FunctionError> {
        Ok(invocation.uri().clone())
    }
}

impl FromInvocation for Context {
    fn from_invocation(invocation: &Invocation) -> Result<Self, FunctionError> {
        Ok(invocation.context().clone())
    }
}

impl FromInvocation for Invocation {
    fn from_invocation(invocation: &Invocation) -> Result<Self, FunctionError> {
        Ok(invocation.clone())
    }
}

impl<T: OptionalFromInvocation> FromInvocation for Option<T> {
    fn from_invocation(invocation: &Invocation) -> Result<Self, FunctionError> {
        T::from_invocation_optional(invocation)
    }
}

impl OptionalFromInvocation for String {
    fn from_invocation_optional(invocation: &Invocation) -> Result<Option<Self>, FunctionError> {
        if invocation.body().is_empty() {
            Ok(None)
        } else {
            String::from_invocation(invocation).map(Some)
        }
    }
}

impl<T: FromInvocation> FromInvocation for Result<T, FunctionError> {
    fn from_invocation(invocation: &Invocation) -> Result<Self, FunctionError> {
        Ok(T::from_invocation(invocation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, Json};

    #[test]
    fn bytes_and_string() {
        let inv = Invocation::new("héllo");
        assert_eq!(Bytes::from_invocation(&inv).unwrap(), "héllo");
        assert_eq!(String::from_invocation(&inv).unwrap(), "héllo");
    }

    #[test]
    fn non_utf8_is_bad_input() {
        let inv = Invocation::new(vec![0x66, 0xff, 0xfe]);
        let err = String::from_invocation(&inv).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput);
        assert!(err.message().contains("UTF-8"));
        // The raw bytes are still there for a handler that wants them.
        assert_eq!(Bytes::from_invocation(&inv).unwrap().len(), 3);
    }

    #[test]
    fn request_parts() {
        let inv = Invocation::new("b")
            .with_method(Method::PATCH)
            .with_uri("/x?y=1".parse().unwrap())
            .with_header("x-a", "1");
        let request = http::Request::<Bytes>::from_invocation(&inv).unwrap();
        assert_eq!(request.method(), Method::PATCH);
        assert_eq!(request.uri().query(), Some("y=1"));
        assert_eq!(request.body(), "b");
        assert_eq!(HeaderMap::from_invocation(&inv).unwrap()["x-a"], "1");
        assert_eq!(Method::from_invocation(&inv).unwrap(), Method::PATCH);
        assert_eq!(Uri::from_invocation(&inv).unwrap().path(), "/x");
    }

    #[test]
    fn context_is_the_invocations() {
        let inv = Invocation::new("").with_context(Context::new("f").with_attempt(3));
        let ctx = Context::from_invocation(&inv).unwrap();
        assert_eq!(ctx.function_name(), "f");
        assert_eq!(ctx.attempt(), 3);
        assert_eq!(ctx.call_id(), inv.context().call_id());
    }

    #[test]
    fn option_is_none_only_when_absent() {
        let wrong = Invocation::new("not json");
        let err = Option::<Json<u32>>::from_invocation(&wrong).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput);
        let other_type = Invocation::new("5").with_header("content-type", "text/plain");
        let err = Option::<Json<u32>>::from_invocation(&other_type).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnsupportedMediaType);
        let absent = Option::<Json<u32>>::from_invocation(&Invocation::new("")).unwrap();
        assert!(absent.is_none());
        let some = Option::<Json<u32>>::from_invocation(&Invocation::new("5")).unwrap();
        assert_eq!(some.unwrap().0, 5);

        assert!(
            Option::<String>::from_invocation(&Invocation::new(""))
                .unwrap()
                .is_none()
        );
        let not_utf8 = Invocation::new(vec![0xff]);
        assert!(Option::<String>::from_invocation(&not_utf8).is_err());
    }

    #[test]
    fn result_never_fails() {
        let inv = Invocation::new("not json");
        let result = Result::<Json<u32>, FunctionError>::from_invocation(&inv).unwrap();
        assert_eq!(result.unwrap_err().kind(), ErrorKind::BadInput);
    }
}
