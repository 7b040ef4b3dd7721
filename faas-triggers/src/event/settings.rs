//! The checks the event sources' configurations share: how many messages
//! one read asks for, how many calls run at once, and the shortest
//! durations the sources accept. Each error names the setting as
//! `SOURCE.SETTING` (`redis.batch`, `postgres.lease`).

use std::time::Duration;

use super::invalid;
use crate::Result;

/// The largest batch a source asks for in one read.
const MAX_BATCH: usize = 10_000;

/// `SOURCE.batch` is between 1 and 10,000 `items` (entries, rows, messages).
pub(crate) fn check_batch(source: &str, batch: usize, items: &str) -> Result<()> {
    if (1..=MAX_BATCH).contains(&batch) {
        return Ok(());
    }
    Err(invalid(
        &format!("{source}.batch"),
        &batch.to_string(),
        format!("between 1 and {MAX_BATCH} {items}"),
    ))
}

/// `SOURCE.max_in_flight`, when set, is at least 1.
pub(crate) fn check_max_in_flight(source: &str, max_in_flight: Option<usize>) -> Result<()> {
    if max_in_flight == Some(0) {
        return Err(invalid(
            &format!("{source}.max_in_flight"),
            "0",
            "at least 1",
        ));
    }
    Ok(())
}

/// `SOURCE.SETTING` lasts at least `min`.
pub(crate) fn check_at_least(
    source: &str,
    setting: &str,
    value: Duration,
    min: Duration,
) -> Result<()> {
    if value >= min {
        return Ok(());
    }
    Err(invalid(
        &format!("{source}.{setting}"),
        &format!("{value:?}"),
        format!("at least {}", humantime::format_duration(min)),
    ))
}

/// `SOURCE.SETTING` is a name without whitespace.
#[cfg(any(feature = "redis", test))]
pub(crate) fn check_name(source: &str, setting: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.chars().any(char::is_whitespace) {
        return Err(invalid(
            &format!("{source}.{setting}"),
            value,
            "a name without whitespace",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(result: Result<()>) -> String {
        match result.unwrap_err() {
            crate::Error::InvalidConfig { key, .. } => key,
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn each_check_names_the_setting() {
        check_batch("redis", 64, "entries").unwrap();
        assert_eq!(key_of(check_batch("redis", 0, "entries")), "redis.batch");
        assert_eq!(
            key_of(check_batch("nats", 10_001, "messages")),
            "nats.batch"
        );
        check_max_in_flight("nats", None).unwrap();
        check_max_in_flight("nats", Some(1)).unwrap();
        assert_eq!(
            key_of(check_max_in_flight("postgres", Some(0))),
            "postgres.max_in_flight"
        );
        check_at_least(
            "postgres",
            "lease",
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            key_of(check_at_least(
                "postgres",
                "lease",
                Duration::from_millis(999),
                Duration::from_secs(1)
            )),
            "postgres.lease"
        );
        check_name("redis", "group", "billing").unwrap();
        assert_eq!(key_of(check_name("redis", "group", "a b")), "redis.group");
        assert_eq!(key_of(check_name("redis", "group", "")), "redis.group");
    }
}
