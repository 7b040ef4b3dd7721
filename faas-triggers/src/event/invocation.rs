//! A received message as the invocation a function sees.

use bytes::Bytes;
use faas_core::{CallId, CloudEvent, Context, Invocation};

/// `application/json` when `payload` is a JSON document, else
/// `application/octet-stream`: what a message without a content type holds.
pub(crate) fn content_type_of(payload: &[u8]) -> &'static str {
    let looks_like_json = payload
        .iter()
        .find(|byte| !byte.is_ascii_whitespace())
        .is_some_and(|first| matches!(first, b'{' | b'[' | b'"'));
    if looks_like_json && serde_json::from_slice::<serde::de::IgnoredAny>(payload).is_ok() {
        "application/json"
    } else {
        "application/octet-stream"
    }
}

/// The invocation of `function` for `event` (binary mode: `ce-*` headers,
/// the data as the body), delivery number `attempt`; its call id is the
/// event's id, so every redelivery of one message is one call in the logs.
pub(crate) fn event_invocation(event: CloudEvent, function: &str, attempt: u32) -> Invocation {
    let call_id = CallId::from(event.id.as_str());
    Invocation::from_event(event).with_context(
        Context::new(function.to_owned())
            .with_call_id(call_id)
            .with_attempt(attempt),
    )
}

/// The event's data: the payload with its content type.
pub(crate) fn with_payload(
    event: CloudEvent,
    content_type: Option<&str>,
    payload: Bytes,
) -> CloudEvent {
    let content_type = content_type.unwrap_or_else(|| content_type_of(&payload));
    event.with_data(content_type.to_owned(), payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_recognised() {
        assert_eq!(content_type_of(br#" {"a": 1}"#), "application/json");
        assert_eq!(content_type_of(b"[1,2]"), "application/json");
        assert_eq!(content_type_of(b"{not json"), "application/octet-stream");
        assert_eq!(content_type_of(b"hello"), "application/octet-stream");
        assert_eq!(content_type_of(b""), "application/octet-stream");
    }

    #[test]
    fn the_event_id_is_the_call_id() {
        let event = with_payload(
            CloudEvent::new("ORDERS:42", "/nats/ORDERS", "rs.faas.nats.message"),
            None,
            Bytes::from_static(br#"{"n":1}"#),
        );
        let invocation = event_invocation(event, "f", 3);
        assert_eq!(invocation.context().call_id().as_str(), "ORDERS:42");
        assert_eq!(invocation.context().attempt(), 3);
        assert_eq!(invocation.headers()["ce-id"], "ORDERS:42");
        assert_eq!(invocation.headers()["content-type"], "application/json");
    }
}
