//! [`Json`]: a JSON body, read as an argument and written as a return value.

use std::ops::{Deref, DerefMut};

use bytes::Bytes;
use http::{HeaderValue, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::FunctionError;
use crate::extract::{FromInvocation, OptionalFromInvocation};
use crate::invocation::Invocation;
use crate::output::{IntoOutput, Response, with_content_type};

/// A JSON body.
///
/// As an argument it reads the request body as `T`. The request's content type must
/// be `application/json`, a `+json` type (e.g. `application/cloudevents+json`), or
/// absent; another type is [`UnsupportedMediaType`](crate::ErrorKind::UnsupportedMediaType)
/// (415), and a body that is not valid JSON for `T` is [`BadInput`](crate::ErrorKind::BadInput)
/// (400) with serde's message (line, column, what was expected).
///
/// As a return value it writes `T` as JSON with `content-type: application/json`.
///
/// ```
/// use faas_core::{FromInvocation, Invocation, Json, ErrorKind};
///
/// #[derive(Debug, serde::Deserialize)]
/// struct Order { id: u32 }
///
/// let inv = Invocation::new(r#"{"id": 7}"#).with_header("content-type", "application/json");
/// let Json(order) = Json::<Order>::from_invocation(&inv).unwrap();
/// assert_eq!(order.id, 7);
///
/// let bad = Invocation::new(r#"{"id": "seven"}"#);
/// let err = Json::<Order>::from_invocation(&bad).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::BadInput);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    /// The value inside.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> From<T> for Json<T> {
    fn from(value: T) -> Self {
        Json(value)
    }
}

/// Whether `content_type` names JSON: `application/json` or any `+json` type,
/// parameters (`; charset=utf-8`) ignored.
pub(crate) fn is_json_content_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<T: DeserializeOwned> FromInvocation for Json<T> {
    fn from_invocation(invocation: &Invocation) -> Result<Self, FunctionError> {
        if let Some(value) = invocation.headers().get(header::CONTENT_TYPE) {
            let content_type = value.to_str().map_err(|_| {
                FunctionError::unsupported_media_type(
                    "the content-type header is not readable text",
                )
            })?;
            if !is_json_content_type(content_type) {
                return Err(FunctionError::unsupported_media_type(format!(
                    "expected a JSON body (content-type application/json), got content-type `{content_type}`"
                )));
            }
        }
        let body = invocation.body();
        if body.is_empty() {
            return Err(FunctionError::bad_input(
                "expected a JSON body, got an empty body",
            ));
        }
        serde_json::from_slice(body).map(Json).map_err(|error| {
            FunctionError::bad_input(format!(
                "the body is not valid JSON for this function: {error}"
            ))
            .with_source(error)
        })
    }
}

/// `None` for an empty body; a body that is there must be JSON of `T`.
impl<T: DeserializeOwned> OptionalFromInvocation for Json<T> {
    fn from_invocation_optional(invocation: &Invocation) -> Result<Option<Self>, FunctionError> {
        if invocation.body().is_empty() {
            Ok(None)
        } else {
            Json::from_invocation(invocation).map(Some)
        }
    }
}

static JSON: HeaderValue = HeaderValue::from_static("application/json");

impl<T: Serialize> IntoOutput for Json<T> {
    fn into_output(self) -> Result<Response, FunctionError> {
        let body = serde_json::to_vec(&self.0).map_err(|error| {
            FunctionError::internal(format!("could not write the output as JSON: {error}"))
                .with_source(error)
        })?;
        Ok(with_content_type(Bytes::from(body), &JSON))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::ErrorKind;

    #[derive(Debug, serde::Deserialize, serde::Serialize, PartialEq)]
    struct Point {
        x: i32,
        y: i32,
    }

    #[test]
    fn reads_json_with_or_without_content_type() {
        for content_type in [
            None,
            Some("application/json"),
            Some("application/json; charset=utf-8"),
            Some("application/cloudevents+json"),
        ] {
            let mut inv = Invocation::new(r#"{"x":1,"y":2}"#);
            if let Some(ct) = content_type {
                inv = inv.with_header("content-type", ct);
            }
            let Json(point) = Json::<Point>::from_invocation(&inv).unwrap();
            assert_eq!(point, Point { x: 1, y: 2 });
        }
    }

    #[test]
    fn wrong_content_type_is_415() {
        let inv = Invocation::new(r#"{"x":1,"y":2}"#).with_header("content-type", "text/plain");
        let err = Json::<Point>::from_invocation(&inv).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnsupportedMediaType);
        assert_eq!(err.status(), 415);
        assert!(err.message().contains("text/plain"), "{}", err.message());
    }

    #[test]
    fn malformed_json_is_bad_input() {
        let inv = Invocation::new(r#"{"x":1,"#);
        let err = Json::<Point>::from_invocation(&inv).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput);
        assert!(err.message().contains("line 1"), "{}", err.message());

        let wrong_shape = Invocation::new(r#"{"x":"one","y":2}"#);
        let err = Json::<Point>::from_invocation(&wrong_shape).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput);

        let empty = Invocation::new("");
        let err = Json::<Point>::from_invocation(&empty).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput);
        assert!(err.message().contains("empty"));
    }

    #[test]
    fn writes_json() {
        let mut map = BTreeMap::new();
        map.insert("a", 1);
        let response = Json(map).into_output().unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.body(), r#"{"a":1}"#);
    }

    #[test]
    fn json_content_types() {
        assert!(is_json_content_type("application/json"));
        assert!(is_json_content_type("Application/JSON ; charset=utf-8"));
        assert!(is_json_content_type("application/problem+json"));
        assert!(!is_json_content_type("text/json-ish"));
        assert!(!is_json_content_type("application/xml"));
    }
}
