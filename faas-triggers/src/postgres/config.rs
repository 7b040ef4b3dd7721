//! [`PostgresTriggerConfig`]: which table a PostgreSQL trigger follows, and how.

use std::time::Duration;

use crate::Result;
use crate::event::{invalid, settings};

/// Rows claimed in one statement by default.
pub const DEFAULT_BATCH: usize = 64;

/// How long a claimed row stays hidden from other consumers by default
/// (renewed while its call runs); a consumer that dies leaves its rows to
/// the others after it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// How often the outbox is read without a notification by default (for
/// rows whose lease ran out or whose retry came due).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The row changes that become calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RowChange {
    /// `INSERT`: the new row.
    Insert,
    /// `UPDATE`: the row after the change.
    Update,
    /// `DELETE`: the row before it went.
    Delete,
}

impl RowChange {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            RowChange::Insert => "INSERT",
            RowChange::Update => "UPDATE",
            RowChange::Delete => "DELETE",
        }
    }
}

/// The settings of a [`PostgresTrigger`](super::PostgresTrigger).
///
/// | setting | default | what |
/// |---|---|---|
/// | `url` | (required) | the database, `postgres://user@host:port/db` (or `host=... user=...`) |
/// | `table` | (required) | the table whose rows become calls (`table` or `schema.table`); it must exist |
/// | [`subscriber`](Self::with_subscriber) | the function's name | names this trigger's outbox rows and database trigger; replicas of one function share it |
/// | [`changes`](Self::with_changes) | insert and update | the row changes that become calls |
/// | [`batch`](Self::with_batch) | 64 | rows claimed in one statement (never more than free in-flight slots) |
/// | [`lease`](Self::with_lease) | 30 s | how long a claimed row is hidden from other consumers; renewed while its call runs |
/// | [`poll_interval`](Self::with_poll_interval) | 1 s | how often the outbox is read without a notification |
/// | [`max_in_flight`](Self::with_max_in_flight) | the function's policy | calls running at once |
/// | [`dead_letter_table`](Self::with_dead_letter_table) | `faas_dead_letter` | where rows that failed for good go |
///
/// ```
/// use faas_triggers::postgres::{PostgresTriggerConfig, RowChange};
///
/// let config = PostgresTriggerConfig::new("postgres://app@127.0.0.1:5432/shop", "public.orders")
///     .with_changes(&[RowChange::Insert]);
/// config.validate().unwrap();
/// assert!(PostgresTriggerConfig::new("postgres://app@127.0.0.1/shop", "orders; drop")
///     .validate()
///     .unwrap_err()
///     .to_string()
///     .contains("postgres.table"));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use]
pub struct PostgresTriggerConfig {
    pub(crate) url: String,
    pub(crate) table: String,
    pub(crate) subscriber: Option<String>,
    pub(crate) changes: Vec<RowChange>,
    pub(crate) batch: usize,
    pub(crate) lease: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) max_in_flight: Option<usize>,
    pub(crate) dead_letter_table: String,
}

impl PostgresTriggerConfig {
    /// Follows `table` of the database at `url`.
    pub fn new(url: impl Into<String>, table: impl Into<String>) -> Self {
        PostgresTriggerConfig {
            url: url.into(),
            table: table.into(),
            subscriber: None,
            changes: vec![RowChange::Insert, RowChange::Update],
            batch: DEFAULT_BATCH,
            lease: DEFAULT_LEASE,
            poll_interval: DEFAULT_POLL_INTERVAL,
            max_in_flight: None,
            dead_letter_table: "faas_dead_letter".to_owned(),
        }
    }

    /// Names this trigger's outbox rows and database trigger.
    pub fn with_subscriber(mut self, subscriber: impl Into<String>) -> Self {
        self.subscriber = Some(subscriber.into());
        self
    }

    /// Sets the row changes that become calls.
    pub fn with_changes(mut self, changes: &[RowChange]) -> Self {
        self.changes = changes.to_vec();
        self
    }

    /// Claims at most `batch` rows per statement.
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }

    /// Sets how long a claimed row stays hidden from other consumers.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Sets how often the outbox is read without a notification.
    pub fn with_poll_interval(mut self, poll_interval: Duration) -> Self {
        self.poll_interval = poll_interval;
        self
    }

    /// Runs at most `max` calls at once.
    pub fn with_max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = Some(max);
        self
    }

    /// Writes rows that failed for good to `table`.
    pub fn with_dead_letter_table(mut self, table: impl Into<String>) -> Self {
        self.dead_letter_table = table.into();
        self
    }

    /// The table followed.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The subscriber name for `function`.
    pub(crate) fn subscriber_for<'a>(&'a self, function: &'a str) -> &'a str {
        self.subscriber.as_deref().unwrap_or(function)
    }

    /// Checks every setting (the subscriber as named for `function`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) naming the
    /// setting (`postgres.url`, `postgres.table`, `postgres.subscriber`,
    /// `postgres.changes`, `postgres.batch`, `postgres.lease`,
    /// `postgres.poll_interval`, `postgres.dead_letter_table`,
    /// `postgres.max_in_flight`).
    pub fn validate_for(&self, function: &str) -> Result<()> {
        self.validate()?;
        let subscriber = self.subscriber_for(function);
        if !is_identifier(subscriber) || subscriber.len() > 40 {
            return Err(invalid(
                "postgres.subscriber",
                subscriber,
                "letters, digits and `_`, starting with a letter or `_`, at most 40 characters \
                 (it names a database trigger; set one with `with_subscriber`)",
            ));
        }
        Ok(())
    }

    /// Checks every setting but the subscriber.
    ///
    /// # Errors
    ///
    /// As [`validate_for`](Self::validate_for).
    pub fn validate(&self) -> Result<()> {
        if self.url.parse::<tokio_postgres::Config>().is_err() {
            return Err(invalid(
                "postgres.url",
                &self.url,
                "expected postgres://user@host:port/db or key=value pairs",
            ));
        }
        if !is_qualified(&self.table) {
            return Err(invalid(
                "postgres.table",
                &self.table,
                "a table name or schema.table of letters, digits and `_`",
            ));
        }
        if !is_qualified(&self.dead_letter_table) {
            return Err(invalid(
                "postgres.dead_letter_table",
                &self.dead_letter_table,
                "a table name or schema.table of letters, digits and `_`",
            ));
        }
        if self.changes.is_empty() {
            return Err(invalid(
                "postgres.changes",
                "[]",
                "at least one of insert, update, delete",
            ));
        }
        settings::check_batch("postgres", self.batch, "rows")?;
        settings::check_at_least("postgres", "lease", self.lease, Duration::from_secs(1))?;
        settings::check_at_least(
            "postgres",
            "poll_interval",
            self.poll_interval,
            Duration::from_millis(50),
        )?;
        settings::check_max_in_flight("postgres", self.max_in_flight)
    }
}

/// An unquoted SQL identifier: a letter or `_`, then letters, digits, `_`.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

fn is_qualified(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() <= 2 && parts.iter().all(|part| is_identifier(part))
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
        let base = || PostgresTriggerConfig::new("postgres://u@127.0.0.1/db", "public.orders");
        base().validate_for("f").unwrap();
        assert_eq!(
            key_of(PostgresTriggerConfig::new("postgres://u@h:notaport/db", "t").validate()),
            "postgres.url"
        );
        for table in ["", "a.b.c", "1abc", "orders;", "or ders"] {
            assert_eq!(
                key_of(PostgresTriggerConfig::new("postgres://u@h/db", table).validate()),
                "postgres.table"
            );
        }
        assert_eq!(key_of(base().validate_for("my-fn")), "postgres.subscriber");
        base()
            .with_subscriber("my_fn")
            .validate_for("my-fn")
            .unwrap();
        assert_eq!(
            key_of(base().with_changes(&[]).validate()),
            "postgres.changes"
        );
        assert_eq!(key_of(base().with_batch(0).validate()), "postgres.batch");
        assert_eq!(
            key_of(base().with_lease(Duration::ZERO).validate()),
            "postgres.lease"
        );
        assert_eq!(
            key_of(base().with_poll_interval(Duration::ZERO).validate()),
            "postgres.poll_interval"
        );
        assert_eq!(
            key_of(base().with_dead_letter_table("x y").validate()),
            "postgres.dead_letter_table"
        );
        assert_eq!(
            key_of(base().with_max_in_flight(0).validate()),
            "postgres.max_in_flight"
        );
    }
}
