//! [`FromInvocation`]: how a handler's arguments are read from an [`Invocation`].

use bytes::Bytes;
use http::{HeaderMap, Method, Uri};

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
/// | `Option<T>` | `Some` when `T` succeeds, `None` otherwise | never |
/// | `Result<T, FunctionError>` | `T`'s result, for the handler to inspect | never |
///
/// Implement it for your own types to read, say, an authenticated user from a header.
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
    note = "function arguments must implement `FromInvocation`: `Json<T>` (T: Deserialize), `Bytes`, `String`, `http::Request<Bytes>`, `http::HeaderMap`, `http::Method`, `http::Uri`, `Context`, `CloudEvent`, `Invocation`, `Option<T>` or `Result<T, FunctionError>` of one of these",
    note = "to read a JSON body into your own type, take `Json<{Self}>` and derive `serde::Deserialize` for it"
)]
pub trait FromInvocation: Sized {
    /// Reads the value, or says why the invocation does not hold one.
    fn from_invocation(invocation: &Invocation) -> Result<Self, FunctionError>;
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

impl<T: FromInvocation> FromInvocation for Option<T> {
    fn from_invocation(invocation: &Invocation) -> Result<Self, FunctionError> {
        Ok(T::from_invocation(invocation).ok())
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
    fn option_and_result_never_fail() {
        let inv = Invocation::new("not json");
        let none = Option::<Json<u32>>::from_invocation(&inv).unwrap();
        assert!(none.is_none());
        let result = Result::<Json<u32>, FunctionError>::from_invocation(&inv).unwrap();
        assert_eq!(result.unwrap_err().kind(), ErrorKind::BadInput);
        let some = Option::<Json<u32>>::from_invocation(&Invocation::new("5")).unwrap();
        assert_eq!(some.unwrap().0, 5);
    }
}
