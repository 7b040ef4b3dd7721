//! A JetStream message as an event, and its settlement.

use std::time::{Duration, SystemTime};

use async_nats::jetstream::{self, AckKind};
use async_trait::async_trait;
use faas_core::trigger::Settle;
use faas_core::{CloudEvent, Error, Invocation};
use http::{HeaderName, HeaderValue};

use crate::event::{event_invocation, with_payload};

/// The CloudEvents type of a NATS message.
pub const EVENT_TYPE: &str = "rs.faas.nats.message";

/// A received message, settled with the JetStream acknowledgements.
pub(crate) struct NatsMessage(pub(crate) jetstream::Message);

#[async_trait]
impl Settle for NatsMessage {
    async fn ack(&self) -> Result<(), Error> {
        self.0
            .ack()
            .await
            .map_err(|error| Error::trigger("nats", error))
    }

    async fn nack(&self, delay: Duration) -> Result<(), Error> {
        let delay = (!delay.is_zero()).then_some(delay);
        self.0
            .ack_with(AckKind::Nak(delay))
            .await
            .map_err(|error| Error::trigger("nats", error))
    }

    async fn terminate(&self) -> Result<(), Error> {
        self.0
            .ack_with(AckKind::Term)
            .await
            .map_err(|error| Error::trigger("nats", error))
    }

    async fn in_progress(&self) -> Result<(), Error> {
        self.0
            .ack_with(AckKind::Progress)
            .await
            .map_err(|error| Error::trigger("nats", error))
    }
}

/// Where a message came from, for its event and its dead letter.
pub(crate) struct Origin {
    pub(crate) stream: String,
    pub(crate) sequence: u64,
    pub(crate) delivered: u32,
    pub(crate) published: Option<SystemTime>,
}

impl Origin {
    /// The message's place in its stream (`None` for a message that did not
    /// come from a JetStream consumer).
    pub(crate) fn of(message: &jetstream::Message) -> Option<Origin> {
        let info = message.info().ok()?;
        Some(Origin {
            stream: info.stream.to_owned(),
            sequence: info.stream_sequence,
            delivered: u32::try_from(info.delivered.max(1)).unwrap_or(u32::MAX),
            published: Some(SystemTime::from(info.published)),
        })
    }

    /// The event id: the stream and the sequence, the same at every
    /// redelivery.
    pub(crate) fn event_id(&self) -> String {
        format!("{}:{}", self.stream, self.sequence)
    }
}

/// The invocation of `function` for `message`: a CloudEvent (id
/// `STREAM:SEQUENCE`, source `/nats/streams/STREAM`, subject the message's
/// subject, time its publication) with the payload as data, the message's
/// headers beside it, and the delivery count as the attempt.
pub(crate) fn invocation_of(
    message: &jetstream::Message,
    origin: &Origin,
    function: &str,
) -> Invocation {
    let headers = message.headers.as_ref();
    let content_type = headers
        .and_then(|headers| headers.get("Content-Type"))
        .map(|value| value.as_str().to_owned());
    let event = CloudEvent::new(
        origin.event_id(),
        format!("/nats/streams/{}", origin.stream),
        EVENT_TYPE,
    )
    .with_subject(message.subject.as_str());
    let mut event = with_payload(event, content_type.as_deref(), message.payload.clone());
    if let Some(published) = origin.published {
        event = event.with_system_time(published);
    }
    let mut invocation = event_invocation(event, function, origin.delivered);
    if let Some(headers) = headers {
        for (name, values) in headers.iter() {
            let name = name.to_string().to_ascii_lowercase();
            if name == "content-type" || name.starts_with("ce-") {
                continue;
            }
            let Ok(name) = HeaderName::try_from(name) else {
                continue;
            };
            for value in values {
                if let Ok(value) = HeaderValue::from_str(value.as_str()) {
                    invocation.headers_mut().append(name.clone(), value);
                }
            }
        }
    }
    invocation
}
