//! [`RedisStreamTriggerConfig`]: which stream a Redis trigger reads, and how.

use std::time::Duration;

use crate::Result;
use crate::event::{invalid, settings};

/// Entries asked for in one read by default.
pub const DEFAULT_BATCH: usize = 64;

/// How long an entry may stay unacknowledged by default before any
/// consumer of the group may claim it (its consumer is taken for dead).
pub const DEFAULT_CLAIM_IDLE: Duration = Duration::from_secs(30);

/// How long a consumer may go without reading, with nothing pending, by
/// default before it is removed from the group as dead.
pub const DEFAULT_DEAD_CONSUMER_IDLE: Duration = Duration::from_secs(600);

/// How long one read blocks by default.
pub const DEFAULT_BLOCK: Duration = Duration::from_secs(1);

/// The field holding an entry's payload by default.
pub const DEFAULT_PAYLOAD_FIELD: &str = "data";

/// Where a new group starts reading.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartFrom {
    /// The whole stream, the entries already in it included (`0`).
    Beginning,
    /// Only entries added after the group was made (`$`).
    NewEntries,
}

/// The settings of a [`RedisStreamTrigger`](super::RedisStreamTrigger).
///
/// | setting | default | what |
/// |---|---|---|
/// | `url` | (required) | the server, `redis://host:port/db` |
/// | `stream` | (required) | the stream's key; made (empty) if missing |
/// | `group` | (required) | the consumer group, made at start if missing, shared by every replica |
/// | [`consumer`](Self::with_consumer) | `$HOSTNAME`, else a random name | this replica's name in the group |
/// | [`batch`](Self::with_batch) | 64 | entries asked for in one read (never more than free in-flight slots) |
/// | [`block`](Self::with_block) | 1 s | how long a read waits for new entries |
/// | [`claim_idle`](Self::with_claim_idle) | 30 s | an entry unacknowledged this long is reclaimed (`XAUTOCLAIM`): its consumer is taken for dead; a running call keeps its entries fresh |
/// | [`dead_consumer_idle`](Self::with_dead_consumer_idle) | 10 min | a consumer of the group that has not read for this long and holds no entry (its entries were reclaimed) is removed from the group (`XGROUP DELCONSUMER`) |
/// | [`max_in_flight`](Self::with_max_in_flight) | the function's policy | calls running at once |
/// | [`payload_field`](Self::with_payload_field) | `data` | the field that holds the payload; without it the entry's fields become a JSON object |
/// | [`dead_letter_stream`](Self::with_dead_letter_stream) | none (the function's dead letter) | where an entry that failed for good is added |
/// | [`start_from`](Self::with_start_from) | [`StartFrom::Beginning`] | where a new group starts |
///
/// ```
/// use faas_triggers::redis::RedisStreamTriggerConfig;
///
/// let config = RedisStreamTriggerConfig::new("redis://127.0.0.1:6379/", "orders", "billing")
///     .with_consumer("billing-0")
///     .with_dead_letter_stream("orders:dead");
/// config.validate().unwrap();
/// assert!(RedisStreamTriggerConfig::new("http://x", "orders", "billing")
///     .validate()
///     .unwrap_err()
///     .to_string()
///     .contains("redis.url"));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use]
pub struct RedisStreamTriggerConfig {
    pub(crate) url: String,
    pub(crate) stream: String,
    pub(crate) group: String,
    pub(crate) consumer: String,
    pub(crate) batch: usize,
    pub(crate) block: Duration,
    pub(crate) claim_idle: Duration,
    pub(crate) dead_consumer_idle: Duration,
    pub(crate) max_in_flight: Option<usize>,
    pub(crate) payload_field: String,
    pub(crate) dead_letter_stream: Option<String>,
    pub(crate) start_from: StartFrom,
}

impl RedisStreamTriggerConfig {
    /// Reads stream `stream` of the server at `url` as a member of `group`.
    pub fn new(
        url: impl Into<String>,
        stream: impl Into<String>,
        group: impl Into<String>,
    ) -> Self {
        let consumer = std::env::var("HOSTNAME")
            .ok()
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| format!("faas-{}", uuid::Uuid::new_v4().simple()));
        RedisStreamTriggerConfig {
            url: url.into(),
            stream: stream.into(),
            group: group.into(),
            consumer,
            batch: DEFAULT_BATCH,
            block: DEFAULT_BLOCK,
            claim_idle: DEFAULT_CLAIM_IDLE,
            dead_consumer_idle: DEFAULT_DEAD_CONSUMER_IDLE,
            max_in_flight: None,
            payload_field: DEFAULT_PAYLOAD_FIELD.to_owned(),
            dead_letter_stream: None,
            start_from: StartFrom::Beginning,
        }
    }

    /// Names this replica in the group.
    pub fn with_consumer(mut self, consumer: impl Into<String>) -> Self {
        self.consumer = consumer.into();
        self
    }

    /// Asks for at most `batch` entries per read.
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }

    /// Sets how long a read waits for new entries.
    pub fn with_block(mut self, block: Duration) -> Self {
        self.block = block;
        self
    }

    /// Sets how long an entry may stay unacknowledged before it is reclaimed.
    pub fn with_claim_idle(mut self, claim_idle: Duration) -> Self {
        self.claim_idle = claim_idle;
        self
    }

    /// Sets how long another consumer of the group may go without reading,
    /// with nothing pending, before it is removed from the group as dead.
    /// A consumer removed by mistake loses nothing: it holds no entry, and
    /// its next read adds it again.
    pub fn with_dead_consumer_idle(mut self, idle: Duration) -> Self {
        self.dead_consumer_idle = idle;
        self
    }

    /// Runs at most `max` calls at once.
    pub fn with_max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = Some(max);
        self
    }

    /// Reads the payload from `field`.
    pub fn with_payload_field(mut self, field: impl Into<String>) -> Self {
        self.payload_field = field.into();
        self
    }

    /// Adds entries that failed for good to the stream `stream`.
    pub fn with_dead_letter_stream(mut self, stream: impl Into<String>) -> Self {
        self.dead_letter_stream = Some(stream.into());
        self
    }

    /// Sets where a new group starts reading.
    pub fn with_start_from(mut self, start_from: StartFrom) -> Self {
        self.start_from = start_from;
        self
    }

    /// The stream's key.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// This replica's name in the group.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Checks every setting.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) naming the
    /// setting (`redis.url`, `redis.stream`, `redis.group`,
    /// `redis.consumer`, `redis.batch`, `redis.block`, `redis.claim_idle`,
    /// `redis.dead_consumer_idle`,
    /// `redis.payload_field`, `redis.dead_letter_stream`,
    /// `redis.max_in_flight`).
    pub fn validate(&self) -> Result<()> {
        if let Err(error) = redis::Client::open(self.url.as_str()) {
            return Err(invalid(
                "redis.url",
                &self.url,
                format!("expected redis://host:port/db: {error}"),
            ));
        }
        for (setting, value) in [
            ("stream", &self.stream),
            ("group", &self.group),
            ("consumer", &self.consumer),
            ("payload_field", &self.payload_field),
        ] {
            settings::check_name("redis", setting, value)?;
        }
        if let Some(dead) = self.dead_letter_stream.as_ref().filter(|dead| {
            dead.is_empty() || dead.chars().any(char::is_whitespace) || **dead == self.stream
        }) {
            return Err(invalid(
                "redis.dead_letter_stream",
                dead,
                "a key without whitespace, other than the stream read",
            ));
        }
        settings::check_batch("redis", self.batch, "entries")?;
        if self.block < Duration::from_millis(10) || self.block > Duration::from_secs(60) {
            return Err(invalid(
                "redis.block",
                &format!("{:?}", self.block),
                "between 10 ms and 60 s",
            ));
        }
        settings::check_at_least(
            "redis",
            "claim_idle",
            self.claim_idle,
            Duration::from_millis(500),
        )?;
        // A live consumer is idle for up to one blocking read.
        if self.dead_consumer_idle <= self.block {
            return Err(invalid(
                "redis.dead_consumer_idle",
                &format!("{:?}", self.dead_consumer_idle),
                format!("longer than a read blocks ({:?})", self.block),
            ));
        }
        settings::check_max_in_flight("redis", self.max_in_flight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn key_of(result: Result<()>) -> String {
        match result.unwrap_err() {
            Error::InvalidConfig { key, .. } => key,
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn each_bad_setting_is_named() {
        let base = || RedisStreamTriggerConfig::new("redis://127.0.0.1:6379/", "s", "g");
        base().validate().unwrap();
        assert_eq!(
            key_of(RedisStreamTriggerConfig::new("nope://", "s", "g").validate()),
            "redis.url"
        );
        assert_eq!(
            key_of(RedisStreamTriggerConfig::new("redis://h/", "", "g").validate()),
            "redis.stream"
        );
        assert_eq!(
            key_of(RedisStreamTriggerConfig::new("redis://h/", "s", "a b").validate()),
            "redis.group"
        );
        assert_eq!(
            key_of(base().with_consumer("").validate()),
            "redis.consumer"
        );
        assert_eq!(key_of(base().with_batch(0).validate()), "redis.batch");
        assert_eq!(
            key_of(base().with_block(Duration::ZERO).validate()),
            "redis.block"
        );
        assert_eq!(
            key_of(base().with_claim_idle(Duration::from_millis(1)).validate()),
            "redis.claim_idle"
        );
        assert_eq!(
            key_of(
                base()
                    .with_dead_consumer_idle(Duration::from_millis(500))
                    .validate()
            ),
            "redis.dead_consumer_idle"
        );
        assert_eq!(
            key_of(base().with_dead_letter_stream("s").validate()),
            "redis.dead_letter_stream"
        );
        assert_eq!(
            key_of(base().with_max_in_flight(0).validate()),
            "redis.max_in_flight"
        );
    }
}
