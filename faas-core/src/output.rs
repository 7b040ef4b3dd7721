//! [`IntoOutput`]: how a handler's return value becomes a [`Response`].

use std::borrow::Cow;

use std::fmt::Display;

use bytes::Bytes;
use http::header::HeaderName;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::error::FunctionError;

/// The answer of a function: an HTTP response with a byte body.
pub type Response = http::Response<Bytes>;

/// A value a handler can return.
///
/// Implemented for:
///
/// | type | response |
/// |---|---|
/// | [`Json<T>`](crate::Json) | 200, `application/json` |
/// | [`String`], `&'static str`, `Cow<'static, str>` | 200, `text/plain; charset=utf-8` |
/// | [`Bytes`], `Vec<u8>`, `&'static [u8]` | 200, `application/octet-stream` |
/// | `()` | 204, empty |
/// | [`StatusCode`] | that status, empty |
/// | `(StatusCode, T)` | `T`'s response with that status |
/// | `(P, T)`, `(P1, P2, T)` | `T`'s response with the headers of the [parts](IntoOutputParts) `P` (a [`HeaderMap`], `[(K, V); N]`) |
/// | `(StatusCode, P, T)`, `(StatusCode, P1, P2, T)` | the same, with that status |
/// | [`http::Response<Bytes>`] | as is |
/// | [`CloudEvent`](crate::CloudEvent) | 200, binary mode (`ce-*` headers) |
/// | `Result<T, E>` where `E: Into<FunctionError>` | `T`'s response, or the error |
///
/// ```
/// use faas_core::{IntoOutput, Json};
/// use http::StatusCode;
///
/// let response = (StatusCode::CREATED, Json(serde_json::json!({"id": 1}))).into_output().unwrap();
/// assert_eq!(response.status(), StatusCode::CREATED);
/// assert_eq!(response.headers()["content-type"], "application/json");
/// assert_eq!(().into_output().unwrap().status(), StatusCode::NO_CONTENT);
///
/// // Headers beside the body: a `HeaderMap` or an array of pairs.
/// let created = (StatusCode::CREATED, [("location", "/orders/7")], "made").into_output().unwrap();
/// assert_eq!(created.headers()["location"], "/orders/7");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned from a function",
    label = "not a function output",
    note = "a function returns a type that implements `IntoOutput`: `Json<T>` (T: Serialize), `String`, `&'static str`, `Bytes`, `Vec<u8>`, `()`, `http::StatusCode`, `(StatusCode, T)`, `(StatusCode, HeaderMap, T)`, `([(K, V); N], T)`, `http::Response<Bytes>`, `CloudEvent`, or `Result<T, E>` of one of these where `E: Into<FunctionError>`",
    note = "to return your own type as JSON, wrap it: `Json(value)`, and derive `serde::Serialize` for it"
)]
pub trait IntoOutput {
    /// Turns the value into a response, or into the error the call fails with.
    fn into_output(self) -> Result<Response, FunctionError>;
}

/// A 200 response with `body` and a copy of `content_type` (copying a value
/// made from a static string copies a pointer).
pub(crate) fn with_content_type(body: Bytes, content_type: &HeaderValue) -> Response {
    let mut response = http::Response::new(body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type.clone());
    response
}

// Statics rather than `HeaderValue::from_static` at each call, which checks
// every byte each time.
static TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
static OCTETS: HeaderValue = HeaderValue::from_static("application/octet-stream");

impl IntoOutput for Response {
    fn into_output(self) -> Result<Response, FunctionError> {
        Ok(self)
    }
}

impl IntoOutput for Bytes {
    fn into_output(self) -> Result<Response, FunctionError> {
        Ok(with_content_type(self, &OCTETS))
    }
}

impl IntoOutput for Vec<u8> {
    fn into_output(self) -> Result<Response, FunctionError> {
        Ok(with_content_type(Bytes::from(self), &OCTETS))
    }
}

impl IntoOutput for &'static [u8] {
    fn into_output(self) -> Result<Response, FunctionError> {
        Ok(with_content_type(Bytes::from_static(self), &OCTETS))
    }
}

impl IntoOutput for String {
    fn into_output(self) -> Result<Response, FunctionError> {
        Ok(with_content_type(Bytes::from(self), &TEXT))
    }
}

impl IntoOutput for &'static str {
    fn into_output(self) -> Result<Response, FunctionError> {
        Ok(with_content_type(
            Bytes::from_static(self.as_bytes()),
            &TEXT,
        ))
    }
}

impl IntoOutput for Cow<'static, str> {
    fn into_output(self) -> Result<Response, FunctionError> {
        match self {
            Cow::Borrowed(text) => text.into_output(),
            Cow::Owned(text) => text.into_output(),
        }
    }
}

impl IntoOutput for () {
    fn into_output(self) -> Result<Response, FunctionError> {
        StatusCode::NO_CONTENT.into_output()
    }
}

impl IntoOutput for StatusCode {
    fn into_output(self) -> Result<Response, FunctionError> {
        let mut response = http::Response::new(Bytes::new());
        *response.status_mut() = self;
        Ok(response)
    }
}

impl<T: IntoOutput> IntoOutput for (StatusCode, T) {
    fn into_output(self) -> Result<Response, FunctionError> {
        let (status, value) = self;
        let mut response = value.into_output()?;
        *response.status_mut() = status;
        Ok(response)
    }
}

/// What an output sets on its response besides the body and the status:
/// headers. Beside a body in a tuple: `(parts, body)`, `(status, parts, body)`.
///
/// Implemented for [`HeaderMap`] (its headers replace those of the same name)
/// and `[(K, V); N]` of header names and values (each inserted, replacing one of
/// the same name). A name or value that is not valid fails the call with
/// [`Internal`](crate::ErrorKind::Internal): the function wrote it.
///
/// ```
/// use faas_core::{IntoOutput, Json};
/// use http::{HeaderMap, StatusCode};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("cache-control", "max-age=60".parse().unwrap());
/// let response = (StatusCode::OK, headers, Json(1)).into_output().unwrap();
/// assert_eq!(response.headers()["cache-control"], "max-age=60");
/// assert_eq!(response.headers()["content-type"], "application/json");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot set parts of a response",
    label = "not response parts",
    note = "beside a body, a function can return a `HeaderMap` or an array of `(name, value)` header pairs: `(StatusCode, [(\"location\", url)], body)`"
)]
pub trait IntoOutputParts {
    /// Sets the parts on `response`.
    fn into_output_parts(self, response: &mut Response) -> Result<(), FunctionError>;
}

impl IntoOutputParts for HeaderMap {
    fn into_output_parts(self, response: &mut Response) -> Result<(), FunctionError> {
        response.headers_mut().extend(self);
        Ok(())
    }
}

impl<K, V, const N: usize> IntoOutputParts for [(K, V); N]
where
    K: TryInto<HeaderName>,
    K::Error: Display,
    V: TryInto<HeaderValue>,
    V::Error: Display,
{
    fn into_output_parts(self, response: &mut Response) -> Result<(), FunctionError> {
        for (name, value) in self {
            let name = name.try_into().map_err(|error| {
                FunctionError::internal(format!("the function set an invalid header name: {error}"))
            })?;
            let value = value.try_into().map_err(|error| {
                FunctionError::internal(format!(
                    "the function set an invalid value for header `{name}`: {error}"
                ))
            })?;
            response.headers_mut().insert(name, value);
        }
        Ok(())
    }
}

impl<P: IntoOutputParts, T: IntoOutput> IntoOutput for (P, T) {
    fn into_output(self) -> Result<Response, FunctionError> {
        let (parts, value) = self;
        let mut response = value.into_output()?;
        parts.into_output_parts(&mut response)?;
        Ok(response)
    }
}

impl<P1: IntoOutputParts, P2: IntoOutputParts, T: IntoOutput> IntoOutput for (P1, P2, T) {
    fn into_output(self) -> Result<Response, FunctionError> {
        let (first, second, value) = self;
        let mut response = value.into_output()?;
        first.into_output_parts(&mut response)?;
        second.into_output_parts(&mut response)?;
        Ok(response)
    }
}

impl<P: IntoOutputParts, T: IntoOutput> IntoOutput for (StatusCode, P, T) {
    fn into_output(self) -> Result<Response, FunctionError> {
        let (status, parts, value) = self;
        let mut response = (parts, value).into_output()?;
        *response.status_mut() = status;
        Ok(response)
    }
}

impl<P1: IntoOutputParts, P2: IntoOutputParts, T: IntoOutput> IntoOutput
    for (StatusCode, P1, P2, T)
{
    fn into_output(self) -> Result<Response, FunctionError> {
        let (status, first, second, value) = self;
        let mut response = (first, second, value).into_output()?;
        *response.status_mut() = status;
        Ok(response)
    }
}

impl<T, E> IntoOutput for Result<T, E>
where
    T: IntoOutput,
    E: Into<FunctionError>,
{
    fn into_output(self) -> Result<Response, FunctionError> {
        self.map_err(Into::into)?.into_output()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn text_and_bytes() {
        let r = String::from("hi").into_output().unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
        assert_eq!(r.body(), "hi");
        let r = "static".into_output().unwrap();
        assert_eq!(r.body(), "static");
        let r = Cow::<'static, str>::Owned("cow".into())
            .into_output()
            .unwrap();
        assert_eq!(r.body(), "cow");
        let r = vec![1u8, 2].into_output().unwrap();
        assert_eq!(r.headers()["content-type"], "application/octet-stream");
        assert_eq!(r.body().as_ref(), &[1, 2]);
        let r = Bytes::from_static(b"x").into_output().unwrap();
        assert_eq!(r.body(), "x");
        let r = (&b"raw"[..]).into_output().unwrap();
        assert_eq!(r.body(), "raw");
    }

    #[test]
    fn unit_and_status() {
        let r = ().into_output().unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert!(r.body().is_empty());
        let r = StatusCode::ACCEPTED.into_output().unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let r = (StatusCode::CREATED, "made").into_output().unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(r.body(), "made");
    }

    #[test]
    fn response_passes_through() {
        let response = http::Response::builder()
            .status(StatusCode::IM_A_TEAPOT)
            .header("x-k", "v")
            .body(Bytes::from_static(b"tea"))
            .unwrap();
        let r = response.into_output().unwrap();
        assert_eq!(r.status(), StatusCode::IM_A_TEAPOT);
        assert_eq!(r.headers()["x-k"], "v");
    }

    #[test]
    fn headers_beside_the_body() {
        let mut map = HeaderMap::new();
        map.insert("x-a", HeaderValue::from_static("1"));
        let r = (map.clone(), "body").into_output().unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["x-a"], "1");
        assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");

        let r = (
            StatusCode::ACCEPTED,
            map,
            [("content-type", "text/csv"), ("x-b", "2")],
            "a,b",
        )
            .into_output()
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert_eq!(r.headers()["x-a"], "1");
        assert_eq!(r.headers()["x-b"], "2");
        assert_eq!(r.headers()["content-type"], "text/csv");

        let err = ([("bad name", "v")], ()).into_output().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
        let err = (StatusCode::OK, [("x-c", "line\nbreak")], ())
            .into_output()
            .unwrap_err();
        assert!(err.message().contains("x-c"), "{}", err.message());
    }

    #[test]
    fn results() {
        let ok: Result<&'static str, FunctionError> = Ok("fine");
        assert_eq!(ok.into_output().unwrap().body(), "fine");
        let err: Result<&'static str, &'static str> = Err("broken");
        let err = err.into_output().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::User);
        assert_eq!(err.message(), "broken");
        let io: Result<(), std::io::Error> = Err(std::io::Error::other("disk"));
        assert_eq!(io.into_output().unwrap_err().kind(), ErrorKind::Internal);
    }
}
