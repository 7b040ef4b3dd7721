//! The headers the HTTP trigger reads and writes, and how their values are parsed.

use std::time::Duration;

use http::{HeaderName, HeaderValue};

/// The call id of a request, read from the caller when valid and always
/// written on the response (`x-call-id`).
pub const X_CALL_ID: HeaderName = HeaderName::from_static("x-call-id");

/// The deadline the caller asks for (`x-timeout`), capped by the function's
/// policy: `1500ms`, `2s`, `1m 30s`, or a plain number of seconds (`2.5`).
pub const X_TIMEOUT: HeaderName = HeaderName::from_static("x-timeout");

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
