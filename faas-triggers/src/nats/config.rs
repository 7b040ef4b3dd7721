//! [`NatsTriggerConfig`]: where a NATS trigger reads, and how.

use std::time::Duration;

#[cfg(test)]
use crate::Error;
use crate::Result;
pub(crate) use crate::event::invalid;
use crate::event::settings;

/// Messages asked for in one pull by default.
pub const DEFAULT_BATCH: usize = 64;

/// How long the broker waits for unacknowledged messages by default before
/// it delivers them again (the consumer's `ack_wait`).
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);

/// How long one pull waits for messages by default.
pub const DEFAULT_FETCH_WAIT: Duration = Duration::from_secs(1);

/// The settings of a [`NatsTrigger`](super::NatsTrigger).
///
/// | setting | default | what |
/// |---|---|---|
/// | `url` | (required) | the server, `nats://host:port` |
/// | `stream` | (required) | the JetStream stream to read; it must exist |
/// | `consumer` | (required) | the durable pull consumer's name, created or updated at start and shared by every replica |
/// | [`filter_subject`](Self::with_filter_subject) | the whole stream | the subjects to read, wildcards allowed |
/// | [`batch`](Self::with_batch) | 64 | messages asked for in one pull (never more than free in-flight slots) |
/// | [`ack_wait`](Self::with_ack_wait) | 30 s | the broker's redelivery deadline; a running call extends it every half of it |
/// | [`max_in_flight`](Self::with_max_in_flight) | the function's policy | calls running at once |
/// | [`dead_letter_subject`](Self::with_dead_letter_subject) | none (the function's dead letter) | where a message that failed for good is published (a stream must capture it) |
///
/// ```
/// use std::time::Duration;
/// use faas_triggers::nats::NatsTriggerConfig;
///
/// let config = NatsTriggerConfig::new("nats://127.0.0.1:4222", "ORDERS", "billing")
///     .with_filter_subject("orders.created.>")
///     .with_batch(128)
///     .with_ack_wait(Duration::from_secs(10))
///     .with_dead_letter_subject("orders.dead");
/// config.validate().unwrap();
/// assert!(NatsTriggerConfig::new("nats://127.0.0.1:4222", "ORDERS", "billing")
///     .with_filter_subject("orders..created")
///     .validate()
///     .unwrap_err()
///     .to_string()
///     .contains("nats.filter_subject"));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use]
pub struct NatsTriggerConfig {
    pub(crate) url: String,
    pub(crate) stream: String,
    pub(crate) consumer: String,
    pub(crate) filter_subject: Option<String>,
    pub(crate) batch: usize,
    pub(crate) ack_wait: Duration,
    pub(crate) fetch_wait: Duration,
    pub(crate) max_in_flight: Option<usize>,
    pub(crate) dead_letter_subject: Option<String>,
}

impl NatsTriggerConfig {
    /// Reads stream `stream` of the server at `url` through the durable
    /// consumer `consumer`.
    pub fn new(
        url: impl Into<String>,
        stream: impl Into<String>,
        consumer: impl Into<String>,
    ) -> Self {
        NatsTriggerConfig {
            url: url.into(),
            stream: stream.into(),
            consumer: consumer.into(),
            filter_subject: None,
            batch: DEFAULT_BATCH,
            ack_wait: DEFAULT_ACK_WAIT,
            fetch_wait: DEFAULT_FETCH_WAIT,
            max_in_flight: None,
            dead_letter_subject: None,
        }
    }

    /// Reads only the subjects matching `subject` (`*` and a final `>`
    /// allowed).
    pub fn with_filter_subject(mut self, subject: impl Into<String>) -> Self {
        self.filter_subject = Some(subject.into());
        self
    }

    /// Asks for at most `batch` messages per pull.
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }

    /// Sets the broker's redelivery deadline.
    pub fn with_ack_wait(mut self, ack_wait: Duration) -> Self {
        self.ack_wait = ack_wait;
        self
    }

    /// Sets how long one pull waits for messages.
    pub fn with_fetch_wait(mut self, fetch_wait: Duration) -> Self {
        self.fetch_wait = fetch_wait;
        self
    }

    /// Runs at most `max` calls at once (else the function policy's
    /// in-flight limit).
    pub fn with_max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = Some(max);
        self
    }

    /// Publishes messages that failed for good to `subject`, with the error
    /// in `Faas-*` headers.
    pub fn with_dead_letter_subject(mut self, subject: impl Into<String>) -> Self {
        self.dead_letter_subject = Some(subject.into());
        self
    }

    /// The server URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The stream.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The durable consumer's name.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Checks every setting.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) naming the setting (`nats.url`,
    /// `nats.stream`, `nats.consumer`, `nats.filter_subject`,
    /// `nats.dead_letter_subject`, `nats.batch`, `nats.ack_wait`,
    /// `nats.max_in_flight`).
    pub fn validate(&self) -> Result<()> {
        if self.url.parse::<async_nats::ServerAddr>().is_err() {
            return Err(invalid("nats.url", &self.url, "expected nats://host:port"));
        }
        check_name("nats.stream", &self.stream)?;
        check_name("nats.consumer", &self.consumer)?;
        if let Some(subject) = &self.filter_subject {
            check_subject("nats.filter_subject", subject, true)?;
        }
        if let Some(subject) = &self.dead_letter_subject {
            check_subject("nats.dead_letter_subject", subject, false)?;
        }
        settings::check_batch("nats", self.batch, "messages")?;
        settings::check_at_least("nats", "ack_wait", self.ack_wait, Duration::from_secs(1))?;
        settings::check_max_in_flight("nats", self.max_in_flight)
    }
}

/// A stream or consumer name: not empty, no whitespace, `.`, `*`, `>`, `/`, `\`.
fn check_name(key: &str, name: &str) -> Result<()> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
    {
        return Err(invalid(
            key,
            name,
            "a name without whitespace, `.`, `*`, `>`, `/` or `\\`",
        ));
    }
    Ok(())
}

/// A subject: dot-separated non-empty tokens without whitespace; with
/// `wildcards`, a token may be `*`, and the last one `>`.
pub(crate) fn check_subject(key: &str, subject: &str, wildcards: bool) -> Result<()> {
    let tokens: Vec<&str> = subject.split('.').collect();
    for (index, token) in tokens.iter().enumerate() {
        let last = index + 1 == tokens.len();
        let bad = token.is_empty()
            || token.chars().any(char::is_whitespace)
            || (token.contains('*') && (*token != "*" || !wildcards))
            || (token.contains('>') && (*token != ">" || !wildcards || !last));
        if bad {
            let reason = if wildcards {
                "dot-separated tokens, no whitespace; `*` as a whole token, `>` only as the last"
            } else {
                "dot-separated tokens without whitespace or wildcards"
            };
            return Err(invalid(key, subject, reason));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> NatsTriggerConfig {
        NatsTriggerConfig::new("nats://127.0.0.1:4222", "ORDERS", "billing")
    }

    fn key_of(result: Result<()>) -> String {
        match result.unwrap_err() {
            Error::InvalidConfig { key, .. } => key,
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn good_settings_pass() {
        base().validate().unwrap();
        base().with_filter_subject("a.*.c.>").validate().unwrap();
        base().with_filter_subject(">").validate().unwrap();
        base()
            .with_dead_letter_subject("a.dead")
            .validate()
            .unwrap();
    }

    #[test]
    fn each_bad_setting_is_named() {
        assert_eq!(
            key_of(NatsTriggerConfig::new("http://[x", "S", "c").validate()),
            "nats.url"
        );
        assert_eq!(
            key_of(NatsTriggerConfig::new("nats://h:1", "a.b", "c").validate()),
            "nats.stream"
        );
        assert_eq!(
            key_of(NatsTriggerConfig::new("nats://h:1", "S", "").validate()),
            "nats.consumer"
        );
        for subject in ["a..b", "a.>.b", "a b", "a*", ".a", "a."] {
            assert_eq!(
                key_of(base().with_filter_subject(subject).validate()),
                "nats.filter_subject",
                "{subject}"
            );
        }
        assert_eq!(
            key_of(base().with_dead_letter_subject("dead.*").validate()),
            "nats.dead_letter_subject"
        );
        assert_eq!(key_of(base().with_batch(0).validate()), "nats.batch");
        assert_eq!(
            key_of(base().with_ack_wait(Duration::from_millis(10)).validate()),
            "nats.ack_wait"
        );
        assert_eq!(
            key_of(base().with_max_in_flight(0).validate()),
            "nats.max_in_flight"
        );
    }
}
