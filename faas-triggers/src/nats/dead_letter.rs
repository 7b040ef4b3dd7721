//! [`NatsDeadLetter`]: failed messages published to a subject, stored by
//! the stream that captures it.

use async_nats::HeaderMap;
use async_nats::jetstream;
use async_trait::async_trait;
use faas_core::{DeadLetter, DeadLetterEntry, Error};

/// Publishes each letter to a subject through JetStream and waits for the
/// stream's acknowledgement, so a letter counts as stored only once a
/// stream holds it (no stream capturing the subject is an error, and the
/// message is then not given up).
///
/// The letter's payload is the original payload; its headers are the
/// original headers plus `Faas-Function`, `Faas-Call-Id`, `Faas-Error`,
/// `Faas-Error-Kind`, `Faas-Attempts`, `Faas-Failed-At` (RFC 3339) and one
/// `Faas-Origin-<name>` per attribute (`subject`, `stream`, `sequence`).
#[derive(Clone, Debug)]
pub struct NatsDeadLetter {
    jetstream: jetstream::Context,
    subject: String,
}

impl NatsDeadLetter {
    /// Letters to `subject` through `jetstream`.
    pub fn new(jetstream: jetstream::Context, subject: impl Into<String>) -> Self {
        NatsDeadLetter {
            jetstream,
            subject: subject.into(),
        }
    }

    /// The subject letters go to.
    pub fn subject(&self) -> &str {
        &self.subject
    }
}

#[async_trait]
impl DeadLetter for NatsDeadLetter {
    async fn dead_letter(&self, letter: DeadLetterEntry) -> Result<(), Error> {
        let (parts, payload) = letter.request.into_parts();
        let mut headers = HeaderMap::new();
        for (name, value) in &parts.headers {
            if let Ok(value) = value.to_str() {
                headers.append(name.as_str(), value);
            }
        }
        headers.insert("Faas-Function", letter.function.as_str());
        headers.insert("Faas-Call-Id", letter.call_id.as_str());
        headers.insert("Faas-Error", one_line(&letter.error.to_string()).as_str());
        headers.insert("Faas-Error-Kind", letter.error.kind().as_str());
        headers.insert("Faas-Attempts", letter.attempts.to_string().as_str());
        headers.insert(
            "Faas-Failed-At",
            humantime::format_rfc3339_millis(letter.failed_at)
                .to_string()
                .as_str(),
        );
        for (name, value) in &letter.attributes {
            headers.insert(format!("Faas-Origin-{name}").as_str(), value.as_str());
        }
        let ack = self
            .jetstream
            .publish_with_headers(self.subject.clone(), headers, payload)
            .await
            .map_err(|error| Error::trigger("nats dead letter", error))?;
        ack.await
            .map_err(|error| Error::trigger("nats dead letter", error))?;
        Ok(())
    }
}

/// Header values hold one line.
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}
