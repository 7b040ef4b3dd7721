//! From a function's answer (or an error) to the HTTP response.

use bytes::Bytes;
use faas_core::{CloudEvent, Response};
use http::header::{self, HeaderMap, HeaderValue};
use http_body_util::Full;

use super::decode::{Rejection, ReplyMode};
use super::headers::X_CALL_ID;

/// The response type the server writes.
pub(crate) type Reply = hyper::Response<Full<Bytes>>;

/// Finishes a function's response for the wire: the `x-call-id` header, and
/// a binary-mode CloudEvent rewritten in structured mode when `reply` asks.
///
/// ```
/// use faas_core::CloudEvent;
/// use faas_triggers::http::{ReplyMode, encode_response};
/// use http::HeaderValue;
///
/// let event = CloudEvent::new("1", "/orders", "order.paid").with_data("text/plain", "ok");
/// let response = encode_response(
///     event.encode_binary(),
///     HeaderValue::from_static("call-7"),
///     ReplyMode::Structured,
/// );
/// assert_eq!(response.headers()["content-type"], "application/cloudevents+json");
/// assert_eq!(response.headers()["x-call-id"], "call-7");
/// assert!(!response.headers().contains_key("ce-id"));
/// ```
pub fn encode_response(response: Response, call_id: HeaderValue, reply: ReplyMode) -> Response {
    let mut response = match reply {
        ReplyMode::Structured if response.headers().contains_key("ce-specversion") => {
            to_structured(response)
        }
        _ => response,
    };
    response.headers_mut().insert(X_CALL_ID, call_id);
    response
}

/// The answer for a request refused before it reached a function.
pub(crate) fn rejection_response(rejection: Rejection, call_id: &faas_core::CallId) -> Response {
    let mut response = rejection.error.to_response(call_id);
    if let Some(allow) = rejection.allow {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
}

/// Hands a response to hyper.
#[inline]
pub(crate) fn into_reply(response: Response) -> Reply {
    let (parts, body) = response.into_parts();
    Reply::from_parts(parts, Full::new(body))
}

fn to_structured(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(event) = CloudEvent::from_binary(&parts.headers, &body) else {
        return Response::from_parts(parts, body);
    };
    let (encoded_parts, encoded_body) = event.encode_structured().into_parts();
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        if name.as_str().starts_with("ce-")
            || name == header::CONTENT_TYPE
            || name == header::CONTENT_LENGTH
        {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    for (name, value) in encoded_parts.headers {
        if let Some(name) = name {
            headers.insert(name, value);
        }
    }
    parts.headers = headers;
    Response::from_parts(parts, encoded_body)
}
