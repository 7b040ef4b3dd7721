//! The headers the HTTP trigger reads and writes, and how their values are parsed.

use std::time::Duration;

use faas_core::CallId;
use http::header::{self, HeaderMap};
use http::{HeaderName, HeaderValue};

/// The call id of a request, read from the caller when valid and always
/// written on the response (`x-call-id`).
pub const X_CALL_ID: HeaderName = HeaderName::from_static("x-call-id");

/// The deadline the caller asks for (`x-timeout`), capped by the function's
/// policy: `1500ms`, `2s`, `1m 30s`, or a plain number of seconds (`2.5`).
pub const X_TIMEOUT: HeaderName = HeaderName::from_static("x-timeout");

/// Which delivery of an event this call is (`x-attempt`, a positive
/// integer): an event source calling through the gateway sends its
/// broker's delivery count, which becomes the call's
/// [`Context::attempt`](faas_core::Context::attempt). Without it a call is
/// attempt 1.
pub const X_ATTEMPT: HeaderName = HeaderName::from_static("x-attempt");

/// Where an asynchronous call's result is POSTed (`x-callback-url`, an
/// absolute `http://` URL).
pub const X_CALLBACK_URL: HeaderName = HeaderName::from_static("x-callback-url");

/// On a callback: the status the function answered with (`x-function-status`).
pub const X_FUNCTION_STATUS: HeaderName = HeaderName::from_static("x-function-status");

/// On a callback: the name of the function that was called (`x-function-name`).
pub const X_FUNCTION_NAME: HeaderName = HeaderName::from_static("x-function-name");

/// On a callback: how many attempts the delivery took (`x-function-attempts`).
pub const X_FUNCTION_ATTEMPTS: HeaderName = HeaderName::from_static("x-function-attempts");

/// On a sub-path call (`/function/{name}/rest`): the prefix that was removed
/// before the function saw the path (`x-forwarded-prefix`).
pub const X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");

/// The W3C trace context header (`traceparent`).
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

pub use faas_core::cloudevent::STRUCTURED_CONTENT_TYPE;

/// Parses an `x-timeout` value: a humantime duration (`1500ms`, `2s`,
/// `1m 30s`) or a plain, non-negative number of seconds (`2`, `2.5`).
///
/// Returns `None` for anything else, zero included (a zero deadline cannot
/// be met).
///
/// ```
/// use std::time::Duration;
/// use faas_triggers::http::parse_timeout;
///
/// assert_eq!(parse_timeout("250ms"), Some(Duration::from_millis(250)));
/// assert_eq!(parse_timeout("1.5"), Some(Duration::from_millis(1500)));
/// assert_eq!(parse_timeout("soon"), None);
/// ```
pub fn parse_timeout(value: &str) -> Option<Duration> {
    let value = value.trim();
    let duration = if value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let seconds: f64 = value.parse().ok()?;
        Duration::try_from_secs_f64(seconds).ok()?
    } else {
        humantime::parse_duration(value).ok()?
    };
    (!duration.is_zero()).then_some(duration)
}

/// Parses an `x-attempt` value: a positive decimal integer.
fn parse_attempt(value: &str) -> Option<u32> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().filter(|attempt| *attempt > 0)
}

/// Whether `value` is a well-formed W3C `traceparent`
/// (`version-traceid-parentid-flags`, lower-case hex, ids not all zero).
///
/// ```
/// use faas_triggers::http::is_valid_traceparent;
///
/// assert!(is_valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
/// assert!(!is_valid_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
/// assert!(!is_valid_traceparent("hello"));
/// ```
pub fn is_valid_traceparent(value: &str) -> bool {
    let bytes = value.as_bytes();
    // version(2) - trace id(32) - parent id(16) - flags(2); later versions may append fields.
    if bytes.len() < 55 || (bytes.len() > 55 && bytes[55] != b'-') {
        return false;
    }
    let hex = |range: std::ops::Range<usize>| {
        bytes[range]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    };
    let non_zero = |range: std::ops::Range<usize>| bytes[range].iter().any(|b| *b != b'0');
    bytes[2] == b'-'
        && bytes[35] == b'-'
        && bytes[52] == b'-'
        && hex(0..2)
        && &bytes[0..2] != b"ff"
        && (bytes.len() == 55 || &bytes[0..2] != b"00")
        && hex(3..35)
        && non_zero(3..35)
        && hex(36..52)
        && non_zero(36..52)
        && hex(53..55)
}

/// What a request's headers say to the trigger, read in one pass over them
/// rather than one hashed lookup per header. Values that can be malformed
/// are kept as read: the decoder refuses them only once the request is
/// routed, so a wrong path is still a 404 first.
#[derive(Debug)]
pub(crate) struct RequestHeaders {
    /// The call's id: the caller's valid `x-call-id`, else a fresh one.
    pub(crate) call_id: CallId,
    /// `call_id` as the response's `x-call-id` (the caller's own value when
    /// it sent one).
    pub(crate) call_id_header: HeaderValue,
    /// `x-timeout`, parsed; `Err` when it is malformed.
    pub(crate) timeout: Result<Option<Duration>, ()>,
    /// `x-attempt`, parsed; `Err` when it is not a positive integer.
    pub(crate) attempt: Result<Option<u32>, ()>,
    /// A well-formed `traceparent`.
    pub(crate) trace_parent: Option<String>,
    /// `x-callback-url` as sent.
    pub(crate) callback: Option<HeaderValue>,
    /// The media type of `content-type`, without parameters.
    pub(crate) content_type: ContentType,
    /// Whether `accept` names structured-mode CloudEvents.
    pub(crate) accepts_structured: bool,
}

/// The media types of a request body the decoder tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentType {
    /// `application/cloudevents+json`.
    StructuredEvent,
    /// `application/cloudevents-batch+json`.
    EventBatch,
    /// Anything else, or none.
    Other,
}

/// The content type of a batch of structured-mode CloudEvents.
const BATCH_CONTENT_TYPE: &str = "application/cloudevents-batch+json";

impl ContentType {
    /// The media type of a `content-type` value, parameters and the spaces
    /// around it ignored, compared without regard to case.
    ///
    /// Read from the value's bytes: every request is asked, and splitting it
    /// as text cost more than the rest of the header pass (about 200
    /// instructions a request, counted with callgrind; see BENCHMARKS.md).
    /// A value with bytes that are not visible ASCII names neither type.
    fn of(value: &HeaderValue) -> Self {
        let bytes = value.as_bytes();
        let essence = match bytes.iter().position(|&b| b == b';') {
            Some(end) => &bytes[..end],
            None => bytes,
        }
        .trim_ascii();
        if essence.eq_ignore_ascii_case(STRUCTURED_CONTENT_TYPE.as_bytes()) {
            ContentType::StructuredEvent
        } else if essence.eq_ignore_ascii_case(BATCH_CONTENT_TYPE.as_bytes()) {
            ContentType::EventBatch
        } else {
            ContentType::Other
        }
    }
}

impl RequestHeaders {
    /// Reads `headers`.
    pub(crate) fn read(headers: &HeaderMap) -> Self {
        let mut call_id = None;
        let mut timeout = None;
        let mut attempt = None;
        let mut trace_parent = None;
        let mut callback = None;
        let mut content_type = None;
        let mut accepts_structured = false;
        for (name, value) in headers {
            // Standard names compare as numbers; the others by their bytes.
            if name == header::CONTENT_TYPE {
                content_type.get_or_insert(value);
            } else if name == header::ACCEPT {
                accepts_structured |= names_structured(value);
            } else if name == X_CALL_ID {
                call_id.get_or_insert(value);
            } else if name == X_TIMEOUT {
                timeout.get_or_insert(value);
            } else if name == TRACEPARENT {
                trace_parent.get_or_insert(value);
            } else if name == X_ATTEMPT {
                attempt.get_or_insert(value);
            } else if name == X_CALLBACK_URL {
                callback.get_or_insert(value);
            }
        }
        let caller_id = call_id.and_then(|value| {
            let id = text(value)?.parse::<CallId>().ok()?;
            Some((id, value.clone()))
        });
        let (call_id, call_id_header) = caller_id.unwrap_or_else(|| {
            let id = CallId::new();
            let value = id.to_header_value();
            (id, value)
        });
        RequestHeaders {
            call_id,
            call_id_header,
            timeout: match timeout {
                None => Ok(None),
                Some(value) => text(value).and_then(parse_timeout).map(Some).ok_or(()),
            },
            attempt: match attempt {
                None => Ok(None),
                Some(value) => text(value).and_then(parse_attempt).map(Some).ok_or(()),
            },
            trace_parent: trace_parent
                .and_then(text)
                .filter(|value| is_valid_traceparent(value))
                .map(str::to_owned),
            callback: callback.cloned(),
            content_type: content_type.map_or(ContentType::Other, ContentType::of),
            accepts_structured,
        }
    }
}

/// Whether an `accept` value names structured-mode CloudEvents.
fn names_structured(value: &HeaderValue) -> bool {
    value.to_str().is_ok_and(|value| {
        value.split(',').any(|item| {
            item.split(';')
                .next()
                .is_some_and(|media| media.trim().eq_ignore_ascii_case(STRUCTURED_CONTENT_TYPE))
        })
    })
}

/// The text of a header value, when it is visible ASCII.
pub(crate) fn text(value: &HeaderValue) -> Option<&str> {
    value.to_str().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_timeout(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_timeout("1m 30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_timeout("0"), None);
        assert_eq!(parse_timeout("0s"), None);
        assert_eq!(parse_timeout("-1"), None);
        assert_eq!(parse_timeout(""), None);
        assert_eq!(parse_timeout("1e400"), None);
        assert_eq!(parse_timeout("99999999999999999999999"), None);
        assert_eq!(parse_timeout("."), None);
    }

    #[test]
    fn attempts() {
        assert_eq!(parse_attempt("1"), Some(1));
        assert_eq!(parse_attempt(" 12 "), Some(12));
        assert_eq!(parse_attempt("0"), None);
        assert_eq!(parse_attempt("-1"), None);
        assert_eq!(parse_attempt("+2"), None);
        assert_eq!(parse_attempt("two"), None);
        assert_eq!(parse_attempt(""), None);
        assert_eq!(parse_attempt("99999999999"), None);
    }

    #[test]
    fn content_types() {
        let of = |value: &'static str| ContentType::of(&HeaderValue::from_static(value));
        assert_eq!(of(STRUCTURED_CONTENT_TYPE), ContentType::StructuredEvent);
        assert_eq!(
            of(" Application/CloudEvents+JSON ; charset=utf-8"),
            ContentType::StructuredEvent
        );
        assert_eq!(of(BATCH_CONTENT_TYPE), ContentType::EventBatch);
        assert_eq!(
            of("application/cloudevents-batch+json;x=1"),
            ContentType::EventBatch
        );
        assert_eq!(of("application/json"), ContentType::Other);
        assert_eq!(of("application/cloudevents+jsonx"), ContentType::Other);
        assert_eq!(of(""), ContentType::Other);
        assert_eq!(of(";application/cloudevents+json"), ContentType::Other);
    }

    #[test]
    fn traceparents() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(is_valid_traceparent(good));
        assert!(!is_valid_traceparent(&good.to_uppercase()));
        assert!(!is_valid_traceparent(&format!("{good}-extra")));
        assert!(is_valid_traceparent(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"
        ));
        assert!(!is_valid_traceparent(
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        assert!(!is_valid_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"
        ));
        assert!(!is_valid_traceparent(""));
    }
}
